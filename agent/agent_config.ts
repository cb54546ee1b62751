/**
 * The agent config: a JSON file on the host that the launcher config names in `agent_config`.
 * It says who this host is, how to reach the control plane, what the proxy and ledger workers
 * get, and which actions this host may run (each a fixed command with arguments).
 *
 * Parsing is strict (unknown fields are refused, naming the field path); relative paths are
 * resolved against the config file's directory. Pure: reading the file is the entry's job.
 *
 * @module
 */
import { type ProxyConfigInput, resolveConfig } from "@infraveil/proxy";
import { AgentError } from "./error.ts";

/** A parameter an action's arguments may use as `{name}`. */
export interface ActionParam {
  /** Regular expression the whole value must match (anchored for you). */
  pattern: string;
  /** Whether the approved action must carry it (default true). */
  required: boolean;
}

/** One action this host may run. */
export interface ActionSpec {
  /** Absolute path of the program (also listed in `--allow-run`). */
  command: string;
  /** Arguments; `{name}` is replaced by a declared parameter or a built-in value. */
  args: string[];
  /** Parameters taken from the approved action's fields of the same name. */
  params: Record<string, ActionParam>;
  /** Working directory (default: the state directory). */
  cwd?: string;
  /** Environment of the command (nothing else is inherited). */
  env: Record<string, string>;
  /** Longest run before the command is killed, ms. */
  timeoutMs: number;
  /** Most bytes of stdout and of stderr kept (each). */
  maxOutputBytes: number;
}

/** Exponential backoff settings. */
export interface BackoffConfig {
  /** First delay, ms. */
  initialMs: number;
  /** Largest delay, ms. */
  maxMs: number;
}

/** A parsed agent config, paths resolved. */
export interface AgentConfig {
  /** This host's name, as the control plane and approvals' `targets` know it. */
  host: string;
  /** The tenant this host belongs to. */
  tenant: string;
  /**
   * The service this host runs: an approval naming another service is refused, and `{service}`
   * is always this value.
   */
  service?: string;
  /**
   * The environment this host runs in (required): an approval for another environment is
   * refused, and `{environment}` is always this value.
   */
  environment: string;
  /** The agent's own state: identity key, used approvals, outbox, active policy. */
  stateDir: string;
  /** Control plane connection. */
  control: {
    /** Base URL. */
    url: string;
    /** The pinned control-plane public key: key file path, base64 raw key or minisign string. */
    publicKey: string;
    /** The one-time enrollment token file (needed only until enrolled). */
    enrollmentTokenFile?: string;
    /** Heartbeat period, ms. */
    heartbeatIntervalMs: number;
    /** Approved-action poll period, ms. */
    pollIntervalMs: number;
    /** Per-request timeout, ms. */
    timeoutMs: number;
    /** Retry backoff while the control plane is unreachable. */
    retry: BackoffConfig;
    /** Longest accepted approval lifetime (`exp - iat`), seconds. */
    maxApprovalLifetimeSeconds: number;
    /** Allowed clock difference with the control plane, seconds. */
    clockSkewSeconds: number;
  };
  /** The proxy worker's config (`@infraveil/proxy`'s format; `listen` and `backend` required). */
  proxy: ProxyConfigInput;
  /** The ledger worker. */
  ledger: {
    /** The only directory the ledger worker may touch. */
    dir: string;
    /** File name inside `dir`. */
    file: string;
    /** `group` (default) or `fsync` durability. */
    mode: "fsync" | "group";
    /** Checkpoint origin (default `infraveil/ledger/<host>`). */
    origin: string;
    /** How often a checkpoint is sent as an anchor, ms. */
    checkpointIntervalMs: number;
  };
  /** The supervisor's health endpoint (loopback only). */
  health: { listen: string };
  /** Worker supervision. */
  workers: {
    /** Restart backoff. */
    restart: BackoffConfig;
    /** A worker that ran this long without crashing restarts from the initial delay again. */
    resetAfterMs: number;
    /** Liveness probe period, ms. */
    livenessIntervalMs: number;
    /** A worker that does not answer a probe within this is restarted, ms. */
    livenessTimeoutMs: number;
  };
  /** Shipping traces and findings. */
  shipping: {
    /** Items per batch. */
    batchSize: number;
    /** Longest wait before a partial batch is sent, ms. */
    flushIntervalMs: number;
    /** Most batches kept in the outbox while offline (oldest trace batches are dropped first). */
    maxQueuedBatches: number;
  };
  /** Actions this host may run, by action name (`restart`, `deploy`, `rollback`, …). */
  actions: Record<string, ActionSpec>;
}

/** Values every action's arguments may use besides its declared parameters. */
export const BUILTIN_PLACEHOLDERS: readonly string[] = [
  "host",
  "service",
  "environment",
  "current_version",
  "previous_version",
  "approval_id",
];

const TOP = [
  "host",
  "tenant",
  "service",
  "environment",
  "state_dir",
  "control",
  "proxy",
  "ledger",
  "health",
  "workers",
  "shipping",
  "actions",
];
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,255}$/;
const ACTION_RE = /^[a-z][a-z0-9_]{0,63}$/;

function resolvePath(baseDir: string, path: string): string {
  if (path.startsWith("/")) return path;
  return `${baseDir.replace(/\/+$/, "") || "."}/${path}`;
}

/**
 * Whether `host:port` names a loopback address.
 *
 * @param listen the address
 * @returns true for 127.0.0.0/8, ::1 and localhost
 */
export function isLoopbackAddress(listen: string): boolean {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(listen);
  if (!m || Number(m[3]) > 65535) return false;
  const host = m[1] ?? m[2];
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * The `{name}` placeholders of an argument.
 *
 * @param arg one argument as configured
 * @returns the names, in order
 */
export function placeholdersOf(arg: string): string[] {
  return [...arg.matchAll(/\{([^{}]*)\}/g)].map((m) => m[1]);
}

/**
 * Parses an agent config.
 *
 * @param text the file's contents
 * @param source the file name, for messages
 * @param baseDir the directory relative paths are resolved against
 * @returns the config
 * @throws {AgentError} `BAD_CONFIG` naming the field path that is wrong and how to fix it
 * @example
 * ```ts
 * import { parseAgentConfig } from "@infraveil/agent";
 * const config = parseAgentConfig(JSON.stringify({
 *   host: "web-1", tenant: "acme", environment: "production", state_dir: "state",
 *   control: { url: "https://control.example", public_key: "control.pub" },
 *   proxy: { listen: "0.0.0.0:8080", backend: "http://127.0.0.1:3000" },
 *   ledger: { dir: "ledger" },
 *   actions: {
 *     restart: { command: "/usr/bin/systemctl", args: ["restart", "shop.service"] },
 *   },
 * }), "agent.json", "/etc/infraveil");
 * if (config.ledger.dir !== "/etc/infraveil/ledger") throw new Error();
 * ```
 */
export function parseAgentConfig(text: string, source: string, baseDir: string): AgentConfig {
  const fail = (path: string, problem: string): never => {
    throw new AgentError("BAD_CONFIG", `Agent config ${source}: ${path}: ${problem}`);
  };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new AgentError(
      "BAD_CONFIG",
      `Agent config ${source}: not valid JSON (${(e as Error).message})`,
    );
  }
  const object = (v: unknown, path: string, fields: string[]): Record<string, unknown> => {
    if (typeof v !== "object" || v === null || Array.isArray(v)) fail(path, "must be an object");
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      if (!fields.includes(k)) fail(`${path}.${k}`, `unknown field; the fields are ${fields}`);
    }
    return o;
  };
  const root = object(json, "$", TOP);
  const str = (o: Record<string, unknown>, k: string, path: string, def?: string) => {
    const v = o[k];
    if (v === undefined && def !== undefined) return def;
    if (typeof v !== "string" || v === "") fail(`${path}.${k}`, "must be a non-empty string");
    return v as string;
  };
  const optStr = (o: Record<string, unknown>, k: string, path: string) =>
    o[k] === undefined ? undefined : str(o, k, path);
  const int = (o: Record<string, unknown>, k: string, path: string, def: number, min = 1) => {
    const v = o[k] ?? def;
    if (!Number.isSafeInteger(v) || (v as number) < min) {
      fail(`${path}.${k}`, `must be an integer ≥ ${min}`);
    }
    return v as number;
  };
  const backoff = (v: unknown, path: string, def: BackoffConfig): BackoffConfig => {
    const o = object(v ?? {}, path, ["initial_ms", "max_ms"]);
    const initialMs = int(o, "initial_ms", path, def.initialMs);
    const maxMs = int(o, "max_ms", path, def.maxMs);
    if (maxMs < initialMs) fail(`${path}.max_ms`, "must be at least initial_ms");
    return { initialMs, maxMs };
  };

  const host = str(root, "host", "$");
  if (!NAME_RE.test(host)) fail("$.host", "must be letters, digits, '.', '_' or '-'");
  const tenant = str(root, "tenant", "$");
  if (typeof root.environment !== "string" || root.environment === "") {
    fail(
      "$.environment",
      'is required: the environment this host runs in, as the policy names it (e.g. "production"); approvals for any other environment are refused',
    );
  }
  const environment = root.environment as string;
  const stateDir = resolvePath(baseDir, str(root, "state_dir", "$"));

  const c = object(root.control, "$.control", [
    "url",
    "public_key",
    "enrollment_token_file",
    "heartbeat_interval_ms",
    "poll_interval_ms",
    "timeout_ms",
    "retry",
    "max_approval_lifetime_seconds",
    "clock_skew_seconds",
  ]);
  const url = str(c, "url", "$.control");
  try {
    const u = new URL(url);
    if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error();
  } catch {
    fail("$.control.url", `"${url}" is not an http(s) URL`);
  }
  const tokenFile = optStr(c, "enrollment_token_file", "$.control");
  const control: AgentConfig["control"] = {
    url: url.replace(/\/+$/, ""),
    // A key string that is not a file is kept as written; the entry resolves files.
    publicKey: str(c, "public_key", "$.control"),
    heartbeatIntervalMs: int(c, "heartbeat_interval_ms", "$.control", 15_000),
    pollIntervalMs: int(c, "poll_interval_ms", "$.control", 5_000),
    timeoutMs: int(c, "timeout_ms", "$.control", 10_000),
    retry: backoff(c.retry, "$.control.retry", { initialMs: 1_000, maxMs: 60_000 }),
    maxApprovalLifetimeSeconds: int(c, "max_approval_lifetime_seconds", "$.control", 86_400),
    clockSkewSeconds: int(c, "clock_skew_seconds", "$.control", 30, 0),
  };
  if (tokenFile !== undefined) control.enrollmentTokenFile = resolvePath(baseDir, tokenFile);

  if (typeof root.proxy !== "object" || root.proxy === null || Array.isArray(root.proxy)) {
    fail("$.proxy", "must be an object in the proxy's config format (docs/proxy.md)");
  }
  const proxy = root.proxy as ProxyConfigInput;
  for (const k of ["listen", "backend"] as const) {
    if (typeof proxy[k] !== "string") fail(`$.proxy.${k}`, "is required");
  }
  if ((proxy.workers ?? 1) !== 1) fail("$.proxy.workers", "must be 1 in the agent");
  try {
    resolveConfig(proxy);
  } catch (e) {
    fail("$.proxy", (e as Error).message);
  }

  const l = object(root.ledger, "$.ledger", [
    "dir",
    "file",
    "mode",
    "origin",
    "checkpoint_interval_ms",
  ]);
  const ledgerFile = str(l, "file", "$.ledger", "audit.jsonl");
  if (!/^[A-Za-z0-9._-]+$/.test(ledgerFile) || ledgerFile.startsWith(".")) {
    fail("$.ledger.file", "must be a plain file name inside ledger.dir");
  }
  const mode = str(l, "mode", "$.ledger", "group");
  if (mode !== "group" && mode !== "fsync") fail("$.ledger.mode", `must be "group" or "fsync"`);
  const origin = str(l, "origin", "$.ledger", `infraveil/ledger/${host}`);
  if (/\s/.test(origin)) fail("$.ledger.origin", "must not contain white space");
  const ledger: AgentConfig["ledger"] = {
    dir: resolvePath(baseDir, str(l, "dir", "$.ledger")),
    file: ledgerFile,
    mode: mode as "group" | "fsync",
    origin,
    checkpointIntervalMs: int(l, "checkpoint_interval_ms", "$.ledger", 60_000),
  };

  const h = object(root.health ?? {}, "$.health", ["listen"]);
  const healthListen = str(h, "listen", "$.health", "127.0.0.1:9464");
  if (!isLoopbackAddress(healthListen)) {
    fail("$.health.listen", `"${healthListen}" is not a loopback host:port (e.g. 127.0.0.1:9464)`);
  }

  const w = object(root.workers ?? {}, "$.workers", [
    "restart",
    "reset_after_ms",
    "liveness_interval_ms",
    "liveness_timeout_ms",
  ]);
  const workers: AgentConfig["workers"] = {
    restart: backoff(w.restart, "$.workers.restart", { initialMs: 500, maxMs: 30_000 }),
    resetAfterMs: int(w, "reset_after_ms", "$.workers", 60_000),
    livenessIntervalMs: int(w, "liveness_interval_ms", "$.workers", 2_000),
    livenessTimeoutMs: int(w, "liveness_timeout_ms", "$.workers", 5_000),
  };

  const s = object(root.shipping ?? {}, "$.shipping", [
    "batch_size",
    "flush_interval_ms",
    "max_queued_batches",
  ]);
  const shipping: AgentConfig["shipping"] = {
    batchSize: int(s, "batch_size", "$.shipping", 500),
    flushIntervalMs: int(s, "flush_interval_ms", "$.shipping", 5_000),
    maxQueuedBatches: int(s, "max_queued_batches", "$.shipping", 1_000),
  };

  const a = object(root.actions ?? {}, "$.actions", Object.keys(root.actions ?? {}));
  const actions: Record<string, ActionSpec> = {};
  for (const [name, value] of Object.entries(a)) {
    const path = `$.actions.${name}`;
    if (!ACTION_RE.test(name)) fail(path, "action names are lowercase letters, digits and _");
    const o = object(value, path, [
      "command",
      "args",
      "params",
      "cwd",
      "env",
      "timeout_ms",
      "max_output_bytes",
    ]);
    const command = str(o, "command", path);
    if (!command.startsWith("/") || command.includes("\0")) {
      fail(
        `${path}.command`,
        `"${command}" must be an absolute path (it is listed in --allow-run)`,
      );
    }
    const args = o.args ?? [];
    if (!Array.isArray(args) || args.some((x) => typeof x !== "string" || x.includes("\0"))) {
      fail(`${path}.args`, "must be an array of strings");
    }
    const p = object(o.params ?? {}, `${path}.params`, Object.keys(o.params ?? {}));
    const params: Record<string, ActionParam> = {};
    for (const [pname, pv] of Object.entries(p)) {
      const ppath = `${path}.params.${pname}`;
      if (!/^[a-z][a-z0-9_]{0,63}$/.test(pname)) fail(ppath, "parameter names are [a-z0-9_]");
      if (BUILTIN_PLACEHOLDERS.includes(pname)) fail(ppath, "is a built-in placeholder");
      const po = object(pv, ppath, ["pattern", "required"]);
      const pattern = str(po, "pattern", ppath);
      try {
        new RegExp(pattern, "u");
      } catch (e) {
        fail(`${ppath}.pattern`, `not a regular expression: ${(e as Error).message}`);
      }
      const required = po.required ?? true;
      if (typeof required !== "boolean") fail(`${ppath}.required`, "must be true or false");
      params[pname] = { pattern, required: required as boolean };
    }
    for (const [i, arg] of (args as string[]).entries()) {
      for (const ph of placeholdersOf(arg)) {
        if (!(ph in params) && !BUILTIN_PLACEHOLDERS.includes(ph)) {
          fail(
            `${path}.args[${i}]`,
            `placeholder {${ph}} is not declared in params nor built in (${BUILTIN_PLACEHOLDERS})`,
          );
        }
      }
      if (/[{}]/.test(arg.replace(/\{[^{}]*\}/g, ""))) {
        fail(`${path}.args[${i}]`, "unbalanced { or }");
      }
    }
    const env = object(o.env ?? {}, `${path}.env`, Object.keys(o.env ?? {}));
    for (const [k, v] of Object.entries(env)) {
      if (typeof v !== "string") fail(`${path}.env.${k}`, "must be a string");
    }
    const cwd = optStr(o, "cwd", path);
    const spec: ActionSpec = {
      command,
      args: args as string[],
      params,
      env: env as Record<string, string>,
      timeoutMs: int(o, "timeout_ms", path, 300_000),
      maxOutputBytes: int(o, "max_output_bytes", path, 65_536),
    };
    if (cwd !== undefined) spec.cwd = resolvePath(baseDir, cwd);
    actions[name] = spec;
  }

  const config: AgentConfig = {
    host,
    tenant,
    environment,
    stateDir,
    control,
    proxy,
    ledger,
    health: { listen: healthListen },
    workers,
    shipping,
    actions,
  };
  const service = optStr(root, "service", "$");
  if (service !== undefined) config.service = service;
  return config;
}
