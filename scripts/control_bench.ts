/**
 * Control-plane benchmark: sustained signed request creation on SQLite and on PostgreSQL,
 * against a bare Hono handler doing the same insert into the same database, in the same run.
 *
 * The governed path is the real endpoint (`POST /v1/t/acme/signed/request.create`): envelope
 * signature, audience, tenant, time window and nonce checks (nonce stored in the database),
 * rate limit, fold check, target-host binding, policy evaluation, the request insert, the
 * evidence record and the signed response. Evidence is chained into the tenant's ledger in
 * the request's own transaction on SQLite and by the background sequencer on PostgreSQL; a
 * governed round's clock stops only once every record of the round is chained. The bare path
 * parses the same JSON and inserts the same row. Both run in-process through `app.request()`
 * with CONCURRENCY requests in flight, on the same store with production durability (SQLite
 * WAL + synchronous=FULL; PostgreSQL with fsync and synchronous_commit on). Envelopes are
 * signed before timing (the client's cost is not the server's).
 *
 * Each line prints the ratio governed/bare and the overhead (governed − bare) / bare. On
 * SQLite the signed endpoint commits the calls waiting for the writer together (group commit:
 * one COMMIT and one fsync for all, each call answered only after it), while the bare handler
 * commits each insert on its own; a second line measures the governed path with each call
 * committed alone (`groupCommit: false`), in the same rounds.
 *
 * Usage: deno run -A scripts/control_bench.ts [--quick] [--concurrency N] [--pg-no-fsync]
 *        [--pg-stats] [--backend sqlite|postgres] [--side governed|bare] [--cpu] [--json]
 *   --backend: measure one backend only (for a CPU profile of it)
 *   --side: run one side only (governed, with SQLite's each-call-alone variant, or bare), so
 *   a profile or a sampler sees that side alone; no ratio is printed then
 *   --cpu: over the timed rounds of each side, how busy this process's main thread was (share
 *   of one core) and how busy the machine was (share of all its cores), from /proc; also
 *   prints the PostgreSQL URL, for a sampler of pg_stat_activity
 *   --pg-stats: load pg_stat_statements and print the server's execution time per statement
 *   (calls, total ms, µs per call) over the PostgreSQL rounds, and count socket writes
 *
 * @module
 */
import net from "node:net";
import { Hono } from "npm:hono@^4.13.19";
import { generateKeyPair, signEnvelope } from "@infraveil/trust";
import {
  type ControlStore,
  createControlApp,
  enrollIdentity,
  flushEvidence,
  initTenant,
  openPostgresStore,
  openSqliteStore,
  type RequestRow,
} from "@infraveil/control";
import { postgresBinDir, startPostgres } from "../control/_pg_harness_test_util.ts";
import { TEST_POLICY } from "../control/_testing.ts";

const quick = Deno.args.includes("--quick");
const N = quick ? 200 : 1000;
const ROUNDS = quick ? 3 : 5;
const flag = (name: string) => {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : undefined;
};
const CONCURRENCY = Number(flag("--concurrency") ?? 8);
const DURABLE = !Deno.args.includes("--pg-no-fsync");
const PG_STATS = Deno.args.includes("--pg-stats");
const ONLY = flag("--backend");
if (ONLY !== undefined && ONLY !== "sqlite" && ONLY !== "postgres") {
  console.error(`--backend takes sqlite or postgres, got "${ONLY}"`);
  Deno.exit(2);
}
const SIDE = flag("--side");
if (SIDE !== undefined && SIDE !== "governed" && SIDE !== "bare") {
  console.error(`--side takes governed or bare, got "${SIDE}"`);
  Deno.exit(2);
}
const CPU = Deno.args.includes("--cpu");

/** Clock ticks: this thread's CPU time, and the machine's total and busy time, from /proc. */
function cpuTicks(): { thread: number; total: number; busy: number } {
  // Fields after the command name (which may hold spaces): utime and stime are 14th and 15th.
  const self = Deno.readTextFileSync("/proc/thread-self/stat");
  const f = self.slice(self.lastIndexOf(")") + 2).split(" ");
  const thread = Number(f[11]) + Number(f[12]);
  const cpu = Deno.readTextFileSync("/proc/stat").split("\n")[0].trim().split(/\s+/).slice(1)
    .map(Number);
  const total = cpu.reduce((a, b) => a + b, 0);
  const idle = cpu[3] + cpu[4]; // idle + iowait
  return { thread, total, busy: total - idle };
}
const CORES = navigator.hardwareConcurrency;

// With --pg-stats, socket writes are counted (npm:postgres writes through node:net).
let socketWrites = 0;
if (PG_STATS) {
  const write = net.Socket.prototype.write;
  net.Socket.prototype.write = function (this: net.Socket, ...args: unknown[]) {
    socketWrites++;
    return (write as (...a: unknown[]) => boolean).apply(this, args);
  } as typeof write;
}

async function setup(store: ControlStore) {
  const keys = generateKeyPair();
  const mcp = generateKeyPair();
  await initTenant(store, { tenant: "acme", adminEmail: "a@acme.test", policyText: TEST_POLICY });
  await store.tx(async (t) => {
    await enrollIdentity(t, "acme", {
      name: "claude",
      kind: "mcp",
      publicKey: mcp.publicKey,
      operator: "a@acme.test",
      actor: "bench",
      now: Date.now(),
      via: "bench",
    });
    // The target host: requests may only name enrolled agents of their environment.
    await enrollIdentity(t, "acme", {
      name: "web-1",
      kind: "agent",
      publicKey: generateKeyPair().publicKey,
      operator: null,
      environment: "production",
      service: "api",
      actor: "bench",
      now: Date.now(),
      via: "bench",
    });
    const tenant = (await t.getTenant("acme"))!;
    await t.setTenantSettings("acme", { ...tenant.settings, rate_limit_per_minute: 1e9 });
  });
  const app = createControlApp({ store, keys });
  // The same endpoint with every signed call committed on its own (no group commit; SQLite).
  const appAlone = createControlApp({ store, keys, groupCommit: false });
  const bare = new Hono();
  let seq = 0;
  bare.post("/bare", async (c) => {
    const body = await c.req.json();
    const now = Date.now();
    const id = `req_bare_${++seq}_${crypto.randomUUID()}`;
    const row: RequestRow = {
      id,
      kind: "action",
      action: body,
      actionHash: `sha256:${id}`,
      requester: "claude",
      requesterKind: "mcp",
      operator: "a@acme.test",
      environment: body.environment,
      service: body.service,
      targets: body.targets,
      status: "pending",
      decision: {},
      approvalsRequired: 2,
      policyHash: null,
      breakGlass: null,
      createdAt: now,
      updatedAt: now,
      expiresAt: now + 86_400_000,
    };
    await store.tx((t) => t.insertRequest("acme", row));
    return c.json({ request_id: id, status: "pending" });
  });
  let n = 0;
  const envelope = () => {
    const iat = Math.floor(Date.now() / 1000);
    return JSON.stringify(signEnvelope({
      type: "request.create",
      tenant: "acme",
      aud: "infraveil-control",
      iat,
      exp: iat + 300,
      nonce: crypto.randomUUID(),
      iss: "claude",
      action: "deploy",
      environment: "production",
      service: "api",
      targets: ["web-1"],
      files: ["src/app.ts"],
      params: { i: ++n },
    }, mcp));
  };
  const plain = () =>
    JSON.stringify({
      action: "deploy",
      environment: "production",
      service: "api",
      targets: ["web-1"],
      files: ["src/app.ts"],
      params: { i: ++n },
    });
  return { app, appAlone, bare, envelope, plain };
}

async function drive(
  count: number,
  send: (i: number) => Promise<Response>,
  finish: () => Promise<unknown>,
): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < count) {
      const i = next++;
      const res = await send(i);
      if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
      await res.body?.cancel();
    }
  }));
  await finish();
  return (performance.now() - t0) / count; // ms per request
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function bench(name: string, store: ControlStore): Promise<Record<string, number>> {
  const { app, appAlone, bare, envelope, plain } = await setup(store);
  // SQLite only: group commit is what the governed path does by default, so it is measured
  // both ways, in the same rounds.
  const grouped = store.backend === "sqlite";
  type Kind = "governed" | "alone" | "bare";
  const writes: Record<Kind, number> = { governed: 0, alone: 0, bare: 0 };
  const ticks: Record<Kind, { thread: number; total: number; busy: number }> = {
    governed: { thread: 0, total: 0, busy: 0 },
    alone: { thread: 0, total: 0, busy: 0 },
    bare: { thread: 0, total: 0, busy: 0 },
  };
  const run = async (kind: Kind, count: number) => {
    const before = socketWrites;
    try {
      return await runKind(kind, count);
    } finally {
      writes[kind] += socketWrites - before;
    }
  };
  const timed = async (kind: Kind, count: number) => {
    const t0 = CPU ? cpuTicks() : null;
    const ms = await run(kind, count);
    if (t0) {
      const t1 = cpuTicks();
      ticks[kind].thread += t1.thread - t0.thread;
      ticks[kind].total += t1.total - t0.total;
      ticks[kind].busy += t1.busy - t0.busy;
    }
    return ms;
  };
  const runKind = async (kind: Kind, count: number) => {
    const bodies = Array.from({ length: count }, kind === "bare" ? plain : envelope);
    const target = kind === "alone" ? appAlone : app;
    return await drive(
      count,
      (i) =>
        Promise.resolve(
          kind === "bare"
            ? bare.request("/bare", { method: "POST", body: bodies[i] })
            : target.request("/v1/t/acme/signed/request.create", {
              method: "POST",
              body: bodies[i],
            }),
        ),
      // The clock stops once every evidence record of the round is chained into the log.
      async () => {
        if (kind !== "bare") await flushEvidence(store, "acme");
      },
    );
  };
  const governed = SIDE !== "bare";
  const bareSide = SIDE !== "governed";
  if (governed) await run("governed", 100);
  if (governed && grouped) await run("alone", 100);
  if (bareSide) await run("bare", 100);
  const g: number[] = [];
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    if (bareSide) b.push(await timed("bare", N));
    if (governed) g.push(await timed("governed", N));
    if (governed && grouped) a.push(await timed("alone", N));
  }
  if (CPU) {
    for (const kind of ["governed", "alone", "bare"] as const) {
      const t = ticks[kind];
      if (t.total === 0) continue;
      // /proc/stat's total counts every core: one core's worth is total / CORES.
      console.log(
        `${name} ${kind.padEnd(8)} main thread busy ${
          (100 * t.thread * CORES / t.total).toFixed(0)
        }% of a core, machine busy ${(100 * t.busy / t.total).toFixed(0)}% of ${CORES} cores`,
      );
    }
  }
  if (!governed || !bareSide) {
    const out: Record<string, number> = {};
    for (const [label, xs] of [["governed", g], ["alone", a], ["bare", b]] as const) {
      if (xs.length === 0) continue;
      const ms = out[`${label}_ms`] = median(xs);
      console.log(
        `${name} ${label.padEnd(8)} ${ms.toFixed(3)} ms/req (${(1000 / ms).toFixed(0)}/s)`,
      );
    }
    return out;
  }
  const gm = median(g);
  const bm = median(b);
  const out: Record<string, number> = {
    governed_ms: gm,
    bare_ms: bm,
    governed_per_s: 1000 / gm,
    bare_per_s: 1000 / bm,
    ratio: gm / bm,
    overhead: (gm - bm) / bm,
  };
  if (PG_STATS && store.backend === "postgres") {
    const per = (k: Kind) => (writes[k] / (ROUNDS * N + 100)).toFixed(2);
    console.log(`socket writes per request: governed ${per("governed")}, bare ${per("bare")}`);
  }
  const line = (label: string, ms: number) =>
    console.log(
      `${label.padEnd(10)} governed ${ms.toFixed(3)} ms/req (${(1000 / ms).toFixed(0)}/s)  ` +
        `bare ${bm.toFixed(3)} ms/req (${(1000 / bm).toFixed(0)}/s)  ratio ${
          (ms / bm).toFixed(2)
        }× (target ≤ 2×)  overhead ${((ms - bm) / bm).toFixed(2)}× bare`,
    );
  line(grouped ? `${name} (group commit)` : name, gm);
  if (grouped) {
    const am = median(a);
    Object.assign(out, { alone_ms: am, alone_ratio: am / bm });
    line(`${name} (each call committed alone)`, am);
  }
  return out;
}

/** Per-statement server time from pg_stat_statements, counted from when this is called. */
async function statementStats(url: string): Promise<{ print(): Promise<void> }> {
  const { default: postgres } = await import("npm:postgres@^3.4.9");
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  await sql.unsafe("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
  await sql.unsafe("SELECT pg_stat_statements_reset()");
  return {
    async print() {
      const rows = await sql.unsafe(
        `SELECT calls, total_exec_time AS ms, regexp_replace(query, '\\s+', ' ', 'g') AS q
         FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%'
         ORDER BY total_exec_time DESC LIMIT 12`,
      );
      console.log("server time per statement (pg_stat_statements): calls, total ms, µs/call");
      for (const r of rows) {
        const [calls, ms] = [Number(r.calls), Number(r.ms)];
        console.log(
          `${String(calls).padStart(7)} ${ms.toFixed(1).padStart(8)} ${
            (ms / calls * 1000).toFixed(1).padStart(7)
          }  ${String(r.q).slice(0, 100)}`,
        );
      }
      await sql.end({ timeout: 1 });
    },
  };
}

console.log(
  `control-plane request creation: ${N} requests × ${ROUNDS} rounds, ${CONCURRENCY} in flight, medians` +
    (DURABLE ? "" : " (PostgreSQL with fsync off)"),
);
const dir = await Deno.makeTempDir({ prefix: "infraveil-control-bench-" });
const results: Record<string, Record<string, number>> = {};
try {
  if (ONLY !== "postgres") {
    const sqlite = await openSqliteStore(`${dir}/control.db`);
    results.sqlite = await bench("sqlite", sqlite);
    await sqlite.close();
  }
  if (ONLY !== "sqlite" && postgresBinDir()) {
    const pg = await startPostgres({ durable: DURABLE, statements: PG_STATS });
    try {
      const url = await pg.createDatabase();
      if (CPU) console.log(`postgres   database ${url}`);
      const store = await openPostgresStore(url, { max: CONCURRENCY });
      const stats = PG_STATS ? await statementStats(url) : null;
      results.postgres = await bench("postgres", store);
      await stats?.print();
      await store.close();
    } finally {
      await pg.stop();
    }
  } else if (ONLY !== "sqlite") {
    console.log(
      "postgres   skipped: PostgreSQL binaries not found under /usr/lib/postgresql/*/bin",
    );
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}
if (Deno.args.includes("--json")) console.log(JSON.stringify(results));
