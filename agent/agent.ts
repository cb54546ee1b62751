/**
 * The running agent: the supervisor and its workers, the control-plane link (enrollment,
 * heartbeats, the active policy, anchors, traces and findings), the action runner and the
 * health endpoint, wired together.
 *
 * Offline behaviour: every control-plane call runs in its own loop that backs off
 * exponentially while the control plane is unreachable; the proxy and the ledger never wait
 * for it. What must be reported (action results, checkpoints, trace and finding batches)
 * waits in the persisted outbox and is delivered, in order, once the control plane answers
 * again. Approvals arrive only from the control plane and run only after verification, so an
 * unreachable control plane means nothing runs.
 *
 * @module
 */
import { signCheckpoint } from "@infraveil/ledger";
import { compilePolicy, parsePolicy } from "@infraveil/policy";
import type { Ed25519KeyPair } from "@infraveil/trust";
import {
  type ActionReport,
  type ActivePolicy,
  type ApprovalOutcome,
  handleApproval,
} from "./action_runner.ts";
import type { AgentConfig } from "./agent_config.ts";
import type { ControlLink } from "./control_link.ts";
import { AgentError } from "./error.ts";
import type { LedgerHead } from "./ledger_worker.ts";
import { backoffDelay, openOutbox, type Outbox, type OutboxItem } from "./outbox.ts";
import { findingToWire, spanToWire, type WireFinding, type WireSpan } from "./shipping.ts";
import { jsonFile, openDeployments, openUsedApprovals } from "./state.ts";
import {
  createSupervisor,
  type Supervisor,
  type WorkerStatus,
  type WorkerUrls,
} from "./supervisor.ts";

/** Options of {@link startAgent}. */
export interface AgentOptions {
  /** The agent config. */
  config: AgentConfig;
  /** The running version (the bundle's manifest version). */
  version: string;
  /** The verified release, recorded at start. */
  release?: { manifestSha256: string; releaseKid: string; tenantKid: string };
  /** The pinned control-plane key. */
  controlKey: { kid: string; publicKey: Uint8Array };
  /** This host's identity key (signs checkpoints; the link signs calls with it). */
  hostKey: Ed25519KeyPair;
  /** The one-time enrollment token, when not yet enrolled. */
  enrollmentToken?: string | null;
  /** The control plane. */
  link: ControlLink;
  /** The worker modules. */
  workerUrls: WorkerUrls;
  /** Diagnostics (default console.error). */
  log?: (line: string) => void;
  /** Clock, ms. */
  now?: () => number;
}

/** The health endpoint's report. */
export interface HealthReport {
  /** `ok` when every worker runs; else `degraded`. */
  status: "ok" | "degraded";
  /** This host. */
  host: string;
  /** The running version. */
  version: string;
  /** Each worker. */
  workers: Record<string, WorkerStatus>;
  /** The control-plane link. */
  control: {
    enrolled: boolean;
    online: boolean;
    last_contact: string | null;
    offline_since: string | null;
    last_error: string | null;
  };
  /** The policy this host enforces. */
  policy_hash: string | null;
  /** The ledger head last seen. */
  ledger_anchor: string | null;
  /** Outbox depth and drops. */
  outbox: { pending: number; dropped: number };
}

/** A running agent. */
export interface RunningAgent {
  /** The supervisor (workers, ledger). */
  readonly supervisor: Supervisor;
  /** The outbox. */
  readonly outbox: Outbox;
  /** The health endpoint's URL. */
  readonly healthUrl: string;
  /** The current health report. */
  health(): HealthReport;
  /** Outcomes of the approvals handled so far, oldest first. */
  outcomes(): readonly ApprovalOutcome[];
  /** Resolves when the agent stops. */
  readonly finished: Promise<void>;
  /** Stops everything (idempotent). */
  stop(): Promise<void>;
}

interface StoredPolicy {
  hash: string;
  text: string;
  fetched_at: string;
}

interface Enrollment {
  host: string;
  tenant: string;
  kid: string;
  enrolled_at: string;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Starts the agent: workers first (the ledger before anything is recorded), then the health
 * endpoint, then the control-plane loops.
 *
 * @param options config, keys, link, worker modules
 * @returns the running agent
 * @throws {AgentError} when the workers cannot start, or the state is damaged
 */
export async function startAgent(options: AgentOptions): Promise<RunningAgent> {
  const { config, version, link, hostKey, now = Date.now } = options;
  const log = options.log ?? ((l: string) => console.error(l));
  await Deno.mkdir(config.stateDir, { recursive: true, mode: 0o700 });

  // Checked against this host's ledger: a deleted or older used_approvals.json cannot make an
  // approval usable again (docs/agent.md, "State files and their limits").
  const used = await openUsedApprovals(config.stateDir, {
    now,
    ledgerFile: `${config.ledger.dir}/${config.ledger.file}`,
    maxApprovalLifetimeSeconds: config.control.maxApprovalLifetimeSeconds,
  });
  const deployments = await openDeployments(config.stateDir);
  const outbox = await openOutbox(config.stateDir, {
    maxBatches: config.shipping.maxQueuedBatches,
    now,
  });
  // Approvals are claimed when fetched: they are kept here until handled, so a crash between
  // fetching and handling loses none (a restart handles them first).
  const inbox = await openOutbox(config.stateDir, { maxBatches: 0, name: "inbox", now });
  const policyFile = jsonFile<StoredPolicy>(
    `${config.stateDir}/policy.json`,
    (v) =>
      typeof (v as StoredPolicy).hash === "string" && typeof (v as StoredPolicy).text === "string"
        ? null
        : "expected {hash, text}",
  );
  const anchorFile = jsonFile<{ size: number; root: string; note: string }>(
    `${config.stateDir}/anchor.json`,
    (v) =>
      Number.isSafeInteger((v as { size: unknown }).size) ? null : "expected {size, root, note}",
  );
  const enrollmentFile = jsonFile<Enrollment>(
    `${config.stateDir}/enrollment.json`,
    (v) => typeof (v as Enrollment).kid === "string" ? null : "expected {host, tenant, kid}",
  );

  let spans: WireSpan[] = [];
  let findings: WireFinding[] = [];
  const supervisor = createSupervisor({
    config,
    workerUrls: options.workerUrls,
    log,
    now,
    onSpans: (s) => {
      spans.push(...s.map((x) => spanToWire(x, config.service)));
      if (spans.length >= config.shipping.batchSize) flushShipping();
    },
    onFindings: (f) => {
      findings.push(...f.map((x) => findingToWire(x, config.service)));
      if (findings.length >= config.shipping.batchSize) flushShipping();
    },
  });
  await supervisor.start();
  const record = supervisor.record;
  await record("agent.start", {
    host: config.host,
    version,
    manifest_sha256: options.release?.manifestSha256 ?? null,
    release_kid: options.release?.releaseKid ?? null,
    tenant_kid: options.release?.tenantKid ?? null,
    host_kid: hostKey.kid,
    control_kid: options.controlKey.kid,
  });

  // The active policy: this host's own copy, checked against its hash when loaded.
  let policy: ActivePolicy | null = null;
  const compile = (text: string): ActivePolicy => {
    const compiled = compilePolicy(parsePolicy(text, { file: "active.policy" }));
    return { hash: compiled.hash, compiled };
  };
  const stored = await policyFile.read();
  if (stored) {
    try {
      policy = compile(stored.text);
      if (policy.hash !== stored.hash) throw new Error(`hashes to ${policy.hash}`);
    } catch (e) {
      policy = null;
      await record("agent.policy.refused", { hash: stored.hash, reason: message(e) });
    }
  }

  let enrolled = (await enrollmentFile.read()) !== null;
  let online = false;
  let lastContact: number | null = null;
  let offlineSince: number | null = null;
  let lastError: string | null = null;
  let lastHead: LedgerHead | null = null;
  let stopping = false;
  const outcomes: ApprovalOutcome[] = [];

  const contact = (ok: boolean, error?: unknown) => {
    if (ok) {
      online = true;
      lastContact = now();
      offlineSince = null;
      lastError = null;
    } else {
      if (online || offlineSince === null) offlineSince = now();
      online = false;
      lastError = message(error);
    }
  };

  const refreshPolicy = async (announced?: string | null) => {
    const doc = await link.fetchPolicy();
    let next: ActivePolicy;
    try {
      next = compile(doc.text);
    } catch (e) {
      await record("agent.policy.refused", { hash: doc.hash, reason: message(e) });
      throw new AgentError("POLICY_MISMATCH", `The active policy does not compile: ${message(e)}`);
    }
    const expected = announced ?? doc.hash;
    if (next.hash !== doc.hash || next.hash !== expected) {
      await record("agent.policy.refused", {
        hash: doc.hash,
        announced: expected,
        computed: next.hash,
        reason: "hash mismatch",
      });
      throw new AgentError(
        "POLICY_MISMATCH",
        `The fetched policy hashes to ${next.hash}, not to the announced ${expected}`,
      );
    }
    if (policy?.hash === next.hash) return;
    await policyFile.write({ hash: next.hash, text: doc.text, fetched_at: iso(now())! });
    await record("agent.policy.activated", { hash: next.hash, previous: policy?.hash ?? null });
    policy = next;
  };

  const runnerDeps = {
    config,
    controlKey: options.controlKey,
    policy: () => policy,
    refreshPolicy: () => refreshPolicy(),
    used,
    deployments,
    record,
    exec: supervisor.exec,
    report: async (r: ActionReport) => {
      const head = await supervisor.head().catch(() => null);
      await outbox.enqueue("result", head ? { ...r, ledger_anchor: head.anchor } : r);
    },
    now,
  };

  function flushShipping(): Promise<void> {
    const jobs: Promise<void>[] = [];
    const size = config.shipping.batchSize;
    for (let i = 0; i < spans.length; i += size) {
      jobs.push(outbox.enqueue("traces", spans.slice(i, i + size)));
    }
    for (let i = 0; i < findings.length; i += size) {
      jobs.push(outbox.enqueue("findings", findings.slice(i, i + size)));
    }
    spans = [];
    findings = [];
    return Promise.all(jobs).then(() => {}, (e) => log(`warning: cannot queue: ${message(e)}`));
  }

  const send = async (item: OutboxItem) => {
    switch (item.kind) {
      case "result":
        await link.reportResult(item.body as ActionReport);
        await record("agent.report.delivered", {
          approval_id: (item.body as ActionReport).approval_id,
          status: (item.body as ActionReport).status,
        });
        return;
      case "traces":
        return await link.shipTraces(item.body as unknown[]);
      case "findings":
        return await link.shipFindings(item.body as unknown[]);
    }
  };

  // Each loop: run, then wait its interval; after a failure, wait with backoff instead.
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const running = new Set<Promise<void>>();
  const loop = (
    name: string,
    intervalMs: number,
    step: () => Promise<void>,
    needsEnrollment = true,
  ) => {
    let failures = 0;
    const tick = () => {
      if (stopping) return;
      const task = (async () => {
        if (needsEnrollment && !enrolled) return schedule(intervalMs);
        try {
          await step();
          failures = 0;
          schedule(intervalMs);
        } catch (e) {
          const delay = backoffDelay(failures++, config.control.retry);
          if (!(e instanceof AgentError && e.code === "CONTROL_UNAVAILABLE") || failures === 1) {
            log(`${name}: ${message(e)} (retrying in ${delay} ms)`);
          }
          schedule(delay);
        }
      })();
      running.add(task);
      task.finally(() => running.delete(task));
    };
    const schedule = (ms: number) => {
      if (stopping) return;
      const t = setTimeout(() => {
        timers.delete(t);
        tick();
      }, ms);
      timers.add(t);
    };
    tick();
  };
  // Calls to the control plane go through this, to track whether it answers.
  const call = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      const r = await fn();
      contact(true);
      return r;
    } catch (e) {
      if (e instanceof AgentError && e.code === "CONTROL_REJECTED") contact(true);
      else contact(false, e);
      throw e;
    }
  };

  if (!enrolled) {
    const token = options.enrollmentToken;
    if (!token) {
      log(
        `error: ${config.host} is not enrolled and no enrollment token is configured (control.enrollment_token_file); proxying and recording only`,
      );
    } else {
      let gaveUp = false;
      loop("enroll", config.control.heartbeatIntervalMs, async () => {
        if (enrolled || gaveUp) return;
        try {
          await call(() => link.enroll({ token, host: config.host, version }));
        } catch (e) {
          if (e instanceof AgentError && e.code === "CONTROL_REJECTED") {
            gaveUp = true;
            await record("agent.enroll.refused", { reason: message(e) });
            log(`error: enrollment refused: ${message(e)}. Issue a new enrollment token`);
            return;
          }
          throw e;
        }
        await enrollmentFile.write({
          host: config.host,
          tenant: config.tenant,
          kid: hostKey.kid,
          enrolled_at: iso(now())!,
        });
        await record("agent.enrolled", { host_kid: hostKey.kid });
        enrolled = true;
      }, false);
    }
  }

  loop("heartbeat", config.control.heartbeatIntervalMs, async () => {
    lastHead = await supervisor.head();
    const response = await call(() =>
      link.heartbeat({
        version,
        policy_hash: policy?.hash ?? null,
        health: healthSummary(),
        ledger_anchor: lastHead!.anchor,
      })
    );
    if (response.policy_hash !== null && response.policy_hash !== policy?.hash) {
      await call(() => refreshPolicy(response.policy_hash));
    }
  });

  loop("approvals", config.control.pollIntervalMs, async () => {
    if (inbox.pending().length === 0) {
      for (const envelope of await call(() => link.fetchApprovals())) {
        await inbox.enqueue("approval", envelope);
      }
    }
    await inbox.drain(async (item) => {
      outcomes.push(await handleApproval(item.body, runnerDeps));
    });
  });

  // Anchors: the newest head is signed when it is sent, with a consistency proof from the last
  // countersigned one, so an offline spell needs no queue: the next success catches up.
  loop("checkpoint", config.ledger.checkpointIntervalMs, async () => {
    const last = await anchorFile.read();
    const head = await supervisor.consistency(last?.size ?? 0);
    lastHead = head;
    if (last && head.size === last.size) return;
    const note = signCheckpoint(
      { origin: config.ledger.origin, size: head.size, root: hexToBytes(head.root) },
      { name: config.ledger.origin, key: hostKey },
    );
    const { countersigned } = await call(() => link.submitCheckpoint(note, head.proof));
    await anchorFile.write({ size: head.size, root: head.root, note: countersigned });
  });

  loop("shipping", config.shipping.flushIntervalMs, () => flushShipping(), false);

  loop("outbox", config.shipping.flushIntervalMs, async () => {
    if (outbox.pending().length === 0) return;
    const r = await outbox.drain(
      (item) => call(() => send(item)),
      async (item, e) => {
        await record("agent.report.rejected", {
          kind: item.kind,
          approval_id: (item.body as { approval_id?: string })?.approval_id ?? null,
          reason: e.message,
        });
      },
    );
    if (r.blocked) {
      throw new AgentError("CONTROL_UNAVAILABLE", lastError ?? "control plane unavailable");
    }
  });

  function healthSummary(): Record<string, unknown> {
    const workers = supervisor.status();
    return {
      workers: Object.fromEntries(
        Object.entries(workers).map(([k, v]) => [k, { state: v.state, crashes: v.crashes }]),
      ),
      outbox: outbox.pending().length,
      dropped_batches: outbox.dropped(),
    };
  }

  function health(): HealthReport {
    const workers = supervisor.status();
    const ok = Object.values(workers).every((w) => w.state === "running");
    return {
      status: ok ? "ok" : "degraded",
      host: config.host,
      version,
      workers,
      control: {
        enrolled,
        online,
        last_contact: iso(lastContact),
        offline_since: iso(offlineSince),
        last_error: lastError,
      },
      policy_hash: policy?.hash ?? null,
      ledger_anchor: lastHead?.anchor ?? null,
      outbox: { pending: outbox.pending().length, dropped: outbox.dropped() },
    };
  }

  const [hostname, port] = splitHostPort(config.health.listen);
  const abort = new AbortController();
  let finish!: () => void;
  const finished = new Promise<void>((r) => finish = r);
  const server = Deno.serve({
    hostname,
    port,
    signal: abort.signal,
    onListen() {},
  }, (req) => {
    const path = new URL(req.url).pathname;
    if (req.method !== "GET" || (path !== "/health" && path !== "/healthz")) {
      return new Response("not found\n", { status: 404 });
    }
    const report = health();
    return Response.json(report, { status: report.status === "ok" ? 200 : 503 });
  });

  const stop = async () => {
    if (stopping) return finished;
    stopping = true;
    for (const t of timers) clearTimeout(t);
    timers.clear();
    await Promise.allSettled([...running]);
    await flushShipping();
    abort.abort();
    await server.finished;
    await record("agent.stop", { host: config.host, version }).catch(() => {});
    await supervisor.stop();
    finish();
  };

  return {
    supervisor,
    outbox,
    healthUrl: `http://${config.health.listen}/health`,
    health,
    outcomes: () => outcomes,
    finished,
    stop,
  };
}

function splitHostPort(s: string): [string, number] {
  const i = s.lastIndexOf(":");
  return [s.slice(0, i).replace(/^\[|\]$/g, ""), Number(s.slice(i + 1))];
}

function hexToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
