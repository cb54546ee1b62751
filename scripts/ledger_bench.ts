/**
 * Ledger benchmarks, each against its peer measured in the same run:
 *
 * 1. `verify ledger` on a 1,000,000-line ledger (entries of 150–250 bytes) vs `sha256sum` over
 *    the same file: lines/s and bytes/s, medians of 3 runs each, with the workers the CLI uses
 *    by default (none below 4 cores) and with the other setting (cores - 1 workers, or none); peak RSS (VmHWM) of the verifying process
 *    for 100k and 1M lines (constant memory = streaming);
 * 2. durable appends with fsync per entry vs the disk's own synchronous 200-byte writes
 *    (`dd oflag=dsync`, both appending to a new file and overwriting one already written, as
 *    the writer overwrites the zeros it preallocates; after a `sync`, the three alternating, 5
 *    runs), and with group commit (5,000 appends issued while the previous 5,000 are being
 *    written and synced).
 *
 * Usage: deno run -A scripts/ledger_bench.ts [--quick] [--json]
 *   --quick: 200k lines, fewer appends (for a smoke run)
 *
 * @module
 */
import { encodeHex, utf8 } from "@infraveil/trust";
import { GENESIS_PREV, hashLeaf, openLedger, verifyLedgerFiles } from "@infraveil/ledger";

const QUICK = Deno.args.includes("--quick");
const JSON_OUT = Deno.args.includes("--json");

// Child mode: verify one file and report time, lines and peak memory.
if (Deno.args[0] === "--child-verify") {
  const t0 = performance.now();
  const report = await verifyLedgerFiles([Deno.args[1]], { workers: Number(Deno.args[2]) });
  const ms = performance.now() - t0;
  const status = await Deno.readTextFile("/proc/self/status").catch(() => "");
  const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
  const heapUsedKb = Math.round(Deno.memoryUsage().heapUsed / 1024);
  console.log(JSON.stringify({ ok: report.ok, size: report.size, ms, vmHwmKb: hwm, heapUsedKb }));
  Deno.exit(0);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const ACTIONS = ["action.execute", "proxy.request", "approval.verify", "policy.evaluate"];
const SERVICES = ["api", "billing", "auth-gateway", "search", "worker-queue"];

/** Writes a valid ledger of `n` realistic lines; returns its size in bytes. */
async function generate(path: string, n: number): Promise<number> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  let prev = GENESIS_PREV;
  let bytes = 0;
  let batch: string[] = [];
  const t0 = Date.parse("2026-01-01T00:00:00Z");
  for (let seq = 0; seq < n; seq++) {
    // Keys in canonical (sorted) order, plain values: JSON.stringify is then RFC 8785.
    const data = {
      ms: (seq * 37) % 5000,
      path: `/v1/${SERVICES[seq % 5]}/${(seq * 7919) % 100000}`,
      status: seq % 11 === 0 ? "denied" : "ok",
      ...(seq % 4 === 0 ? { user: `u${seq % 977}` } : {}),
    };
    const sorted = Object.fromEntries(Object.entries(data).sort(([a], [b]) => (a < b ? -1 : 1)));
    const line = JSON.stringify({
      actor: `agent:web-${seq % 4}`,
      data: sorted,
      prev,
      seq,
      ts: new Date(t0 + seq * 13).toISOString(),
      type: ACTIONS[seq % 4],
      v: 1,
    });
    prev = encodeHex(hashLeaf(utf8(line)));
    batch.push(line);
    bytes += line.length + 1;
    if (batch.length === 10000) {
      await file.write(utf8(batch.join("\n") + "\n"));
      batch = [];
    }
  }
  if (batch.length) await file.write(utf8(batch.join("\n") + "\n"));
  file.close();
  return bytes;
}

async function timeCommand(cmd: string, args: string[]): Promise<{ ms: number; stdout: string }> {
  const t0 = performance.now();
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "inherit" }).output();
  const ms = performance.now() - t0;
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")} failed`);
  return { ms, stdout: new TextDecoder().decode(out.stdout) };
}

/** Workers `infraveil verify ledger` starts by default: cores - 1 (at most 3) from 4 cores. */
const CORES = navigator.hardwareConcurrency ?? 1;
const CLI_WORKERS = CORES < 4 ? 0 : Math.min(3, CORES - 1);
/** The other setting measured too: workers when the CLI uses none, none when it uses some. */
const OTHER_WORKERS = CLI_WORKERS === 0 ? Math.max(1, CORES - 1) : 0;

async function childVerify(
  path: string,
  workers = CLI_WORKERS,
): Promise<{ ms: number; wallMs: number; vmHwmKb: number; heapUsedKb: number; size: number }> {
  const self = new URL(import.meta.url).pathname;
  const { ms: wallMs, stdout } = await timeCommand(Deno.execPath(), [
    "run",
    "-A",
    "--quiet",
    self,
    "--child-verify",
    path,
    String(workers),
  ]);
  const r = JSON.parse(stdout);
  if (!r.ok) throw new Error("the generated ledger did not verify");
  return { ms: r.ms, wallMs, vmHwmKb: r.vmHwmKb, heapUsedKb: r.heapUsedKb, size: r.size };
}

const dir = await Deno.makeTempDir({ prefix: "ledger-bench-" });
const results: Record<string, unknown> = {};
try {
  const n = QUICK ? 200_000 : 1_000_000;
  const big = `${dir}/big.jsonl`;
  const small = `${dir}/small.jsonl`;
  const bytes = await generate(big, n);
  await generate(small, n / 10);
  console.log(
    `generated ${n} lines, ${(bytes / 1e6).toFixed(1)} MB (${(bytes / n).toFixed(0)} bytes/line)`,
  );

  const verifyRuns = [];
  const seqRuns = [];
  const shaRuns = [];
  for (let i = 0; i < 3; i++) {
    verifyRuns.push(await childVerify(big));
    shaRuns.push((await timeCommand("sha256sum", [big])).ms);
    seqRuns.push(await childVerify(big, OTHER_WORKERS));
  }
  const seqMs = median(seqRuns.map((r) => r.ms));
  const vMs = median(verifyRuns.map((r) => r.ms));
  const vWall = median(verifyRuns.map((r) => r.wallMs));
  const sMs = median(shaRuns);
  const smallRun = await childVerify(small);
  const linesPerS = n / (vMs / 1000);
  const ourBps = bytes / (vMs / 1000);
  const shaBps = bytes / (sMs / 1000);
  results.verify = {
    lines: n,
    bytes,
    workers: CLI_WORKERS,
    otherWorkers: OTHER_WORKERS,
    otherWorkersMsMedian: seqMs,
    ratioToSha256sumOtherWorkers: sMs / seqMs,
    verifyMsMedian: vMs,
    verifyCliWallMsMedian: vWall,
    sha256sumMsMedian: sMs,
    linesPerSecond: Math.round(linesPerS),
    verifyMBps: ourBps / 1e6,
    sha256sumMBps: shaBps / 1e6,
    ratioToSha256sum: ourBps / shaBps,
    ratioToSha256sumWall: (bytes / (vWall / 1000)) / shaBps,
    vmHwmKb: { [n / 10]: smallRun.vmHwmKb, [n]: median(verifyRuns.map((r) => r.vmHwmKb)) },
    heapUsedAtEndKb: {
      [n / 10]: smallRun.heapUsedKb,
      [n]: median(verifyRuns.map((r) => r.heapUsedKb)),
    },
  };
  console.log(
    `verify ledger (workers: ${CLI_WORKERS}): ${Math.round(linesPerS)} lines/s, ${
      (ourBps / 1e6).toFixed(0)
    } MB/s (median ${vMs.toFixed(0)} ms; CLI wall ${vWall.toFixed(0)} ms)`,
  );
  console.log(`sha256sum:     ${(shaBps / 1e6).toFixed(0)} MB/s (median ${sMs.toFixed(0)} ms)`);
  console.log(
    `with workers: ${OTHER_WORKERS} instead: ${Math.round(n / (seqMs / 1000))} lines/s, ${
      (bytes / (seqMs / 1000) / 1e6).toFixed(0)
    } MB/s, ${(sMs / seqMs * 100).toFixed(1)}% of sha256sum`,
  );
  console.log(
    `ratio verify/sha256sum (bytes/s): ${
      (ourBps / shaBps * 100).toFixed(1)
    }%  [target ≥ 50%, ≥ 250k lines/s]`,
  );
  console.log(
    `peak RSS: ${smallRun.vmHwmKb} kB at ${n / 10} lines, ${
      median(verifyRuns.map((r) => r.vmHwmKb))
    } kB at ${n} lines; JS heap in use at the end: ${smallRun.heapUsedKb} kB vs ${
      median(verifyRuns.map((r) => r.heapUsedKb))
    } kB`,
  );

  // Appends: fsync per entry vs the disk's synchronous writes.
  const fsyncN = QUICK ? 500 : 3000;
  const entry = {
    type: "action.execute",
    data: { path: "/v1/api/items/1234", request: "req_abc", status: "ok" },
  };
  // The generated ledger (hundreds of MB) may still be being written back: flush it first, so
  // neither side pays for it, and alternate the two sides so any later disturbance hits both.
  await timeCommand("sync", []);
  const fsyncRuns = [];
  const ddRuns = [];
  const ddOverRuns = [];
  const dd = (of: string, ...more: string[]) =>
    timeCommand("dd", [
      "if=/dev/zero",
      `of=${of}`,
      "bs=200",
      `count=${fsyncN}`,
      "status=none",
      ...more,
    ]);
  for (let r = 0; r < 5; r++) {
    const path = `${dir}/fsync-${r}.jsonl`;
    const ledger = await openLedger(path, { mode: "fsync", actor: "agent:web-1" });
    const t0 = performance.now();
    for (let i = 0; i < fsyncN; i++) await ledger.append(entry);
    fsyncRuns.push(fsyncN / ((performance.now() - t0) / 1000));
    await ledger.close();
    const t1 = performance.now();
    await dd(`${dir}/dd-${r}`, "oflag=dsync");
    ddRuns.push(fsyncN / ((performance.now() - t1) / 1000));
    // The same file again, written and synced first: dd now overwrites.
    await timeCommand("sync", []);
    const t2 = performance.now();
    await dd(`${dir}/dd-${r}`, "oflag=dsync", "conv=notrunc");
    ddOverRuns.push(fsyncN / ((performance.now() - t2) / 1000));
  }
  const groupN = QUICK ? 50_000 : 300_000;
  const groupRuns = [];
  for (let r = 0; r < 3; r++) {
    const path = `${dir}/group-${r}.jsonl`;
    const ledger = await openLedger(path, { mode: "group", actor: "agent:web-1" });
    const t0 = performance.now();
    // Producers keep appending while the previous batch is being synced: two waves in flight.
    let inFlight: Promise<unknown> = Promise.resolve();
    for (let i = 0; i < groupN; i += 5_000) {
      const wave = Promise.all(Array.from({ length: 5_000 }, () => ledger.append(entry)));
      await inFlight;
      inFlight = wave;
    }
    await inFlight;
    groupRuns.push(groupN / ((performance.now() - t0) / 1000));
    await ledger.close();
  }
  results.appends = {
    fsyncPerEntryPerSecond: Math.round(median(fsyncRuns)),
    ddDsyncWritesPerSecond: Math.round(median(ddRuns)),
    ddDsyncOverwritesPerSecond: Math.round(median(ddOverRuns)),
    ratioToDd: median(fsyncRuns) / median(ddRuns),
    ratioToDdOverwrite: median(fsyncRuns) / median(ddOverRuns),
    groupCommitPerSecond: Math.round(median(groupRuns)),
  };
  const pct = (a: number[], b: number[]) => (median(a) / median(b) * 100).toFixed(0);
  console.log(
    `appends, fsync per entry: ${Math.round(median(fsyncRuns))}/s (runs ${
      fsyncRuns.map(Math.round).join(", ")
    }); disk's own dsync writes (dd oflag=dsync bs=200): appending ${
      Math.round(median(ddRuns))
    }/s (ratio ${pct(fsyncRuns, ddRuns)}%), overwriting ${
      Math.round(median(ddOverRuns))
    }/s (ratio ${pct(fsyncRuns, ddOverRuns)}%)  [target ≥ 5k/s]`,
  );
  console.log(`appends, group commit: ${Math.round(median(groupRuns))}/s  [target ≥ 100k/s]`);
  if (JSON_OUT) console.log(JSON.stringify(results, null, 2));
} finally {
  await Deno.remove(dir, { recursive: true });
}
