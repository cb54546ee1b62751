/**
 * The supervisor: starts the ledger, proxy and exec workers, each with its own Deno
 * permissions ({@link proxyPermissions}, {@link ledgerPermissions}, {@link execPermissions}),
 * checks after every start that each worker's sandbox holds (a worker whose forbidden
 * operations succeed is stopped for good), probes their liveness, and restarts a crashed or
 * unresponsive worker with exponential backoff. Every start, crash, restart and sandbox check
 * is a ledger entry; entries made while the ledger worker is down wait and are written when it
 * is back, in order, exactly once (a batch the old worker wrote before it died is recognised
 * by the ledger's size on reopen).
 *
 * What it must never do: give a worker a permission outside its set, or let a worker run whose
 * sandbox self-test failed.
 *
 * @module
 */
import type { AppendInput, JsonValue } from "@infraveil/ledger";
import type { Finding, ProxyConfigInput, Span } from "@infraveil/proxy";
import type { AgentConfig } from "./agent_config.ts";
import { AgentError } from "./error.ts";
import type { ExecRequest, ExecResult } from "./exec_worker.ts";
import type { LedgerHead } from "./ledger_worker.ts";
import {
  execPermissions,
  hostPortOf,
  ledgerPermissions,
  proxyPermissions,
  type WorkerPermissions,
} from "./permissions.ts";
import type { SandboxProbe, SandboxResult } from "./_sandbox_probe.ts";
import { WorkerChannel } from "./_worker_channel.ts";

/** The supervised workers. */
export type WorkerName = "ledger" | "proxy" | "exec";

/** Where each worker's module is: `file:` URLs of the sources, or `blob:` URLs of bundle files. */
export type WorkerUrls = Record<WorkerName, string | URL>;

/** A worker's state. */
export type WorkerState = "starting" | "running" | "backoff" | "stopped" | "failed";

/** What the health endpoint reports about a worker. */
export interface WorkerStatus {
  /** Current state. */
  state: WorkerState;
  /** Starts so far (the first included). */
  starts: number;
  /** Crashes so far. */
  crashes: number;
  /** The last crash's reason. */
  lastError: string | null;
  /** What the worker reported when it became ready (the proxy: its address). */
  info: Record<string, unknown> | null;
}

/** Options of {@link createSupervisor}. */
export interface SupervisorOptions {
  /** The agent config. */
  config: AgentConfig;
  /** The worker modules. */
  workerUrls: WorkerUrls;
  /** Span batches from the proxy. */
  onSpans?: (spans: Span[]) => void;
  /** Finding batches from the proxy. */
  onFindings?: (findings: Finding[]) => void;
  /** Diagnostics for the operator (default: console.error). */
  log?: (line: string) => void;
  /** Clock, ms (default Date.now). */
  now?: () => number;
}

/** The running supervisor. */
export interface Supervisor {
  /** Starts the ledger worker, then the proxy and exec workers; resolves when all run. */
  start(): Promise<void>;
  /**
   * Appends a ledger entry; resolves once it is on disk (waiting while the ledger worker
   * restarts).
   */
  record(type: string, data: JsonValue): Promise<{ seq: number }>;
  /** The ledger head. */
  head(): Promise<LedgerHead>;
  /** The ledger head and an RFC 9162 consistency proof (hex) from `size1` to it. */
  consistency(size1: number): Promise<LedgerHead & { proof: string[] }>;
  /** Runs a command through the exec worker. */
  exec(request: ExecRequest): Promise<ExecResult>;
  /** Runs the sandbox probe in a worker (the health check and tests use it). */
  probe(worker: WorkerName, probe: SandboxProbe): Promise<SandboxResult>;
  /** Every worker's status. */
  status(): Record<WorkerName, WorkerStatus>;
  /** The permissions a worker is started with. */
  permissions(worker: WorkerName): WorkerPermissions;
  /** Terminates a worker as a crash would (the restart path then runs); for drills and tests. */
  kill(worker: WorkerName): void;
  /** Stops every worker and waits for pending ledger entries. */
  stop(): Promise<void>;
}

interface PendingEntry {
  entry: AppendInput;
  resolve: (r: { seq: number }) => void;
  reject: (e: unknown) => void;
}

const RPC_TIMEOUT_MS = 10_000;
/** How long stop() waits for a restarting ledger worker to take the entries still pending. */
const STOP_WAIT_MS = 3_000;

/** One supervised worker: spawn, ready, probe, crash, back off, restart. */
class ManagedWorker {
  readonly name: WorkerName;
  state: WorkerState = "stopped";
  starts = 0;
  crashes = 0;
  lastError: string | null = null;
  info: Record<string, unknown> | null = null;
  channel: WorkerChannel | null = null;
  #worker: Worker | null = null;
  #generation = 0;
  #startedAt = 0;
  #consecutive = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #liveness: ReturnType<typeof setInterval> | undefined;
  #ready: { promise: Promise<void>; resolve: () => void } = makeReady();
  // Set when stop() begins: from then on nothing is a crash and nothing restarts.
  #stopped = false;

  constructor(
    readonly host: SupervisorHost,
    name: WorkerName,
    readonly url: string | URL,
    readonly permissions: WorkerPermissions,
    readonly init: (channel: WorkerChannel) => Promise<Record<string, unknown>>,
    readonly ping: (channel: WorkerChannel) => Promise<unknown>,
    readonly sandbox: SandboxProbe,
    readonly onUnasked: (msg: Record<string, unknown>) => void = () => {},
  ) {
    this.name = name;
  }

  /** Resolves when the worker next runs. */
  ready(): Promise<void> {
    return this.#ready.promise;
  }

  async spawn(): Promise<void> {
    if (this.host.stopping || this.#stopped) return;
    const generation = ++this.#generation;
    this.state = "starting";
    this.starts++;
    let worker: Worker;
    try {
      worker = new Worker(this.url, {
        type: "module",
        name: `infraveil-${this.name}`,
        deno: { permissions: this.permissions },
      } as WorkerOptions);
    } catch (e) {
      // Cannot even create it (e.g. the process lacks a permission the worker needs).
      this.state = "failed";
      this.lastError = String(e);
      this.host.fatal(this.name, `cannot create the ${this.name} worker: ${e}`);
      return;
    }
    this.#worker = worker;
    const channel = new WorkerChannel(worker, (m) => this.onUnasked(m));
    this.channel = channel;
    worker.addEventListener("error", (e: ErrorEvent) => {
      e.preventDefault();
      this.crashed(generation, `uncaught error: ${e.message}`);
    });
    worker.addEventListener("messageerror", () => {
      this.crashed(generation, "a message could not be deserialised");
    });
    try {
      this.info = await this.init(channel);
      if (generation !== this.#generation) return;
      const results = await this.probe(this.sandbox);
      const leaks = Object.entries(results).filter(([, v]) => v !== "NotCapable");
      // Entries are not awaited: a worker's restart must not wait for the ledger worker's.
      this.host.note("agent.worker.sandbox", {
        worker: this.name,
        generation,
        ok: leaks.length === 0,
        results,
      }).catch(() => {});
      if (leaks.length > 0) {
        this.state = "failed";
        this.lastError = `sandbox leaks: ${leaks.map(([k, v]) => `${k} ${v}`).join(", ")}`;
        this.#terminate();
        this.host.fatal(this.name, `the ${this.name} worker's sandbox leaks (${this.lastError})`);
        return;
      }
    } catch (e) {
      this.crashed(generation, `start failed: ${e instanceof Error ? e.message : e}`);
      return;
    }
    if (generation !== this.#generation || this.host.stopping || this.#stopped) return;
    this.state = "running";
    this.#startedAt = this.host.now();
    this.#liveness = setInterval(() => {
      this.ping(channel).catch((e) => {
        this.crashed(generation, `liveness probe failed: ${e instanceof Error ? e.message : e}`);
      });
    }, this.host.config.workers.livenessIntervalMs);
    this.host.note("agent.worker.start", {
      worker: this.name,
      generation,
      permissions: this.permissions as unknown as JsonValue,
      info: this.info as JsonValue,
    }).catch(() => {});
    this.#ready.resolve();
  }

  probe(probe: SandboxProbe): Promise<SandboxResult> {
    const channel = this.channel;
    if (!channel) {
      return Promise.reject(new AgentError("WORKER_FAILED", `${this.name} not running`));
    }
    if (this.name === "proxy") {
      const id = channel.nextId();
      return channel.send(
        { type: "probe", id, probe },
        (m) => m.type === "probe-result" && m.id === id,
        RPC_TIMEOUT_MS,
      ).then((m) => m.results as SandboxResult);
    }
    return channel.rpc("probe", { probe }, RPC_TIMEOUT_MS) as Promise<SandboxResult>;
  }

  #terminate(): void {
    clearInterval(this.#liveness);
    this.#liveness = undefined;
    this.channel?.close(new AgentError("WORKER_FAILED", `the ${this.name} worker stopped`));
    this.channel = null;
    this.#worker?.terminate();
    this.#worker = null;
  }

  crashed(generation: number, reason: string): void {
    if (generation !== this.#generation || this.host.stopping || this.#stopped) return;
    if (this.state === "backoff" || this.state === "failed") return;
    const uptime = this.state === "running" ? this.host.now() - this.#startedAt : 0;
    this.#terminate();
    this.crashes++;
    this.lastError = reason;
    this.#ready = makeReady();
    const { restart, resetAfterMs } = this.host.config.workers;
    if (uptime >= resetAfterMs) this.#consecutive = 0;
    const delay = Math.min(restart.maxMs, restart.initialMs * 2 ** this.#consecutive);
    this.#consecutive++;
    this.state = "backoff";
    this.host.log(`${this.name} worker crashed (${reason}); restarting in ${delay} ms`);
    // Not awaited: the entry waits for the ledger worker when it is the one that crashed.
    this.host.note("agent.worker.crash", {
      worker: this.name,
      generation,
      reason,
      uptime_ms: uptime,
    }).catch(() => {});
    this.#timer = setTimeout(() => {
      this.host.note("agent.worker.restart", {
        worker: this.name,
        generation: generation + 1,
        attempt: this.#consecutive,
        delay_ms: delay,
      }).catch(() => {});
      this.spawn();
    }, delay);
  }

  kill(): void {
    const generation = this.#generation;
    this.#worker?.terminate();
    this.crashed(generation, "terminated");
  }

  async stop(stop?: (channel: WorkerChannel) => Promise<unknown>): Promise<void> {
    // First of all, so that a liveness probe failing or a restart timer firing while the worker
    // shuts down is neither recorded as a crash nor starts a worker after stop().
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearInterval(this.#liveness);
    this.#liveness = undefined;
    if (this.channel && stop) await stop(this.channel).catch(() => {});
    this.#terminate();
    this.state = "stopped";
  }
}

function makeReady(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => resolve = r);
  return { promise, resolve };
}

interface SupervisorHost {
  config: AgentConfig;
  stopping: boolean;
  now: () => number;
  log: (line: string) => void;
  note: (type: string, data: JsonValue) => Promise<{ seq: number }>;
  fatal: (worker: WorkerName, why: string) => void;
}

/**
 * Creates the supervisor.
 *
 * @param options config, worker modules, callbacks
 * @returns the supervisor (call `start`)
 */
export function createSupervisor(options: SupervisorOptions): Supervisor {
  const { config, workerUrls, now = Date.now, log = (l) => console.error(l) } = options;
  const ledgerPath = `${config.ledger.dir}/${config.ledger.file}`;
  const controlAddress = hostPortOf(config.control.url);
  const pending: PendingEntry[] = [];
  let knownSize = -1; // entries known to be on disk
  // The ledger worker's channel once its `open` has answered and the entries it holds are
  // reconciled with `pending`; appends go nowhere else. A worker that is merely spawned would
  // run an append right after `open`, before the reconciliation, writing again what the old
  // worker wrote and then dropping as many later entries from `pending`.
  let ledgerOpen: WorkerChannel | null = null;
  let flushing = false;
  let flushed: Promise<void> = Promise.resolve();
  let stopped = false;

  const host: SupervisorHost = {
    config,
    stopping: false,
    now,
    log,
    note: (type, data) => record(type, data),
    fatal: (worker, why) => {
      log(`error: ${why}`);
      record("agent.worker.failed", { worker, reason: why }).catch(() => {});
    },
  };

  const ledger = new ManagedWorker(
    host,
    "ledger",
    workerUrls.ledger,
    ledgerPermissions(config),
    async (ch) => {
      const r = await ch.rpc("open", {
        path: ledgerPath,
        actor: `agent:${config.host}`,
        mode: config.ledger.mode,
      }, RPC_TIMEOUT_MS) as LedgerHead;
      // This supervisor is the ledger's only writer: entries beyond the size it knew are the
      // head of a batch that reached the disk before the old worker died. They are done.
      if (knownSize >= 0 && r.size > knownSize) {
        const written = pending.splice(0, Math.min(r.size - knownSize, pending.length));
        written.forEach((p, i) => p.resolve({ seq: knownSize + i }));
      }
      knownSize = r.size;
      // The ledger is usable from here on (the sandbox entry itself goes through it).
      ledgerOpen = ch;
      queueMicrotask(flush);
      return r as unknown as Record<string, unknown>;
    },
    (ch) => ch.rpc("ping", {}, config.workers.livenessTimeoutMs),
    {
      connect: controlAddress,
      listen: "127.0.0.1:0",
      read: config.stateDir,
      write: `${config.stateDir}/.sandbox-probe`,
      env: "HOME",
      run: "/bin/sh",
    },
  );

  const proxyConfig: ProxyConfigInput = { ...config.proxy, workers: 1 };
  const proxy = new ManagedWorker(
    host,
    "proxy",
    workerUrls.proxy,
    proxyPermissions(config),
    async (ch) => {
      const reply = await ch.send(
        { type: "start", config: proxyConfig, exportToParent: true },
        (m) => m.type === "listening" || m.type === "error",
        RPC_TIMEOUT_MS,
      );
      if (reply.type === "error") {
        throw new AgentError("WORKER_FAILED", `proxy: ${reply.code}: ${reply.message}`);
      }
      return { hostname: reply.hostname, port: reply.port };
    },
    (ch) => {
      const id = ch.nextId();
      return ch.send(
        { type: "query", id, what: "stats" },
        (m) => m.type === "result" && m.id === id,
        config.workers.livenessTimeoutMs,
      );
    },
    {
      read: ledgerPath,
      write: `${config.ledger.dir}/.sandbox-probe`,
      connect: controlAddress,
      env: "HOME",
      run: "/bin/sh",
    },
    (m) => {
      if (m.type === "spans") options.onSpans?.(m.spans as Span[]);
      else if (m.type === "findings") options.onFindings?.(m.findings as Finding[]);
    },
  );

  const hasActions = Object.keys(config.actions).length > 0;
  const exec = new ManagedWorker(
    host,
    "exec",
    workerUrls.exec,
    execPermissions(config),
    () => Promise.resolve({}),
    (ch) => ch.rpc("ping", {}, config.workers.livenessTimeoutMs),
    {
      read: ledgerPath,
      write: `${config.ledger.dir}/.sandbox-probe`,
      connect: controlAddress,
      env: "HOME",
    },
  );

  const workers: Record<WorkerName, ManagedWorker> = { ledger, proxy, exec };

  function record(type: string, data: JsonValue): Promise<{ seq: number }> {
    if (stopped) {
      return Promise.reject(new AgentError("WORKER_FAILED", "the supervisor has stopped"));
    }
    return new Promise((resolve, reject) => {
      pending.push({ entry: { type, data }, resolve, reject });
      queueMicrotask(flush);
    });
  }

  /** Writes `pending` while the ledger is open; resolves when this (or the running) pass ends. */
  function flush(): Promise<void> {
    if (flushing) return flushed;
    flushing = true; // cleared by drain() itself, at once if it has nothing to do
    flushed = drain();
    return flushed;
  }

  async function drain(): Promise<void> {
    try {
      while (pending.length > 0) {
        const channel = ledger.channel;
        if (!channel || channel !== ledgerOpen || ledger.state === "backoff") break;
        const batch = pending.slice(0, 256);
        let results: { seq: number }[];
        try {
          results = await channel.rpc(
            "append",
            { entries: batch.map((p) => p.entry) },
            RPC_TIMEOUT_MS,
          ) as { seq: number }[];
        } catch (e) {
          // The worker crashed or refused: keep the entries for its next start.
          log(`warning: ledger append failed, will retry: ${e instanceof Error ? e.message : e}`);
          break;
        }
        pending.splice(0, batch.length);
        knownSize = results.at(-1)!.seq + 1;
        batch.forEach((p, i) => p.resolve(results[i]));
      }
    } finally {
      flushing = false;
    }
  }

  return {
    async start() {
      await ledger.spawn();
      if (ledger.state === "failed") {
        throw new AgentError("SANDBOX_BROKEN", `ledger worker: ${ledger.lastError}`);
      }
      await ledger.ready();
      await Promise.all([proxy.spawn(), hasActions ? exec.spawn() : Promise.resolve()]);
      for (const w of [proxy, exec]) {
        if (w.state === "failed") {
          throw new AgentError("SANDBOX_BROKEN", `${w.name} worker: ${w.lastError}`);
        }
      }
    },
    record,
    async head() {
      await ledger.ready();
      await flush();
      return await ledger.channel!.rpc("head", {}, RPC_TIMEOUT_MS) as LedgerHead;
    },
    async consistency(size1) {
      await ledger.ready();
      await flush();
      return await ledger.channel!.rpc("consistency", { size1 }, RPC_TIMEOUT_MS) as
        & LedgerHead
        & { proof: string[] };
    },
    async exec(request) {
      if (!hasActions) throw new AgentError("ACTION_FAILED", "no actions are configured");
      await exec.ready();
      return await exec.channel!.rpc(
        "exec",
        request as unknown as Record<string, unknown>,
        request.timeoutMs + 5_000,
      ) as ExecResult;
    },
    probe(worker, probe) {
      return workers[worker].probe(probe);
    },
    status() {
      const out = {} as Record<WorkerName, WorkerStatus>;
      for (const w of Object.values(workers)) {
        if (w.name === "exec" && !hasActions) continue;
        out[w.name] = {
          state: w.state,
          starts: w.starts,
          crashes: w.crashes,
          lastError: w.lastError,
          info: w.info,
        };
      }
      return out;
    },
    permissions(worker) {
      return workers[worker].permissions;
    },
    kill(worker) {
      workers[worker].kill();
    },
    async stop() {
      await Promise.all([
        proxy.stop((ch) =>
          ch.send({ type: "stop" }, (m) => m.type === "stopped" || m.type === "error", 2_000)
        ),
        exec.stop(),
      ]);
      // Entries made while the ledger worker restarts are written once it is back (bounded).
      if (pending.length > 0 && (ledger.state === "backoff" || ledger.state === "starting")) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          ledger.ready(),
          new Promise<void>((r) => timer = setTimeout(r, STOP_WAIT_MS)),
        ]);
        clearTimeout(timer);
      }
      await flush();
      host.stopping = true;
      await ledger.stop((ch) => ch.rpc("close", {}, 5_000));
      stopped = true;
      for (const p of pending.splice(0)) {
        p.reject(
          new AgentError("WORKER_FAILED", "the supervisor stopped before the entry was written"),
        );
      }
    },
  };
}
