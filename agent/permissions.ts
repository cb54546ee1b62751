/**
 * The permissions of each worker and of the agent process, derived from the agent config so
 * that the supervisor, the systemd unit and the docs cannot disagree. A worker gets exactly what
 * its job needs: the proxy its listen address, backend and collectors; the ledger its
 * directory; the exec worker the configured programs. The process needs the union plus what
 * the supervisor itself uses (control plane, health endpoint, state, config and key files).
 *
 * @module
 */
import { parseBackend } from "@infraveil/proxy";
import type { AgentConfig } from "./agent_config.ts";

/** Deno's permission options for a Worker (`deno: { permissions }`). */
export interface WorkerPermissions {
  /** `host:port` entries, or false. */
  net: string[] | false;
  /** Paths, or false. */
  read: string[] | false;
  /** Paths, or false. */
  write: string[] | false;
  /** Programs, or false. */
  run: string[] | false;
  /** Always false. */
  env: false;
  /** Always false. */
  ffi: false;
  /** Always false. */
  sys: false;
  /** Always false: a worker imports nothing from the network. */
  import: false;
}

const NONE: WorkerPermissions = {
  net: false,
  read: false,
  write: false,
  run: false,
  env: false,
  ffi: false,
  sys: false,
  import: false,
};

/**
 * `host:port` of an http(s) URL, with the scheme's default port when none is written.
 *
 * @param url the URL
 * @returns `host:port`
 */
export function hostPortOf(url: string): string {
  const u = new URL(url);
  const port = u.port || (u.protocol === "https:" ? "443" : "80");
  return `${u.hostname}:${port}`;
}

/**
 * The proxy worker's permissions: network access to its listen address, its backend and its
 * collectors (when configured); CRS rule files are readable only when the CRS engine is on.
 *
 * @param config the agent config
 * @returns the permissions
 */
export function proxyPermissions(config: AgentConfig): WorkerPermissions {
  const p = config.proxy;
  const net = [p.listen!];
  const backend = parseBackend(p.backend!);
  if (typeof backend !== "string") net.push(`${backend.hostname}:${backend.port}`);
  for (const e of [p.tracing?.otlp?.url, p.findings?.export?.url]) {
    if (e) net.push(hostPortOf(e));
  }
  const read = p.rules?.engine === "crs"
    ? [p.rules.crsDir, p.rules.setupFile].filter((x): x is string => !!x)
    : false;
  return { ...NONE, net: [...new Set(net)], read };
}

/**
 * The ledger worker's permissions: read and write in the ledger directory, nothing else.
 *
 * @param config the agent config
 * @returns the permissions
 */
export function ledgerPermissions(config: AgentConfig): WorkerPermissions {
  return { ...NONE, read: [config.ledger.dir], write: [config.ledger.dir] };
}

/**
 * The exec worker's permissions: running the configured programs, nothing else.
 *
 * @param config the agent config
 * @returns the permissions
 */
export function execPermissions(config: AgentConfig): WorkerPermissions {
  const run = [...new Set(Object.values(config.actions).map((a) => a.command))].sort();
  return { ...NONE, run: run.length > 0 ? run : false };
}

/** The agent process's permissions, as Deno flags take them. */
export interface ProcessPermissions {
  /** `--allow-read`. */
  read: string[];
  /** `--allow-write`. */
  write: string[];
  /** `--allow-net`. */
  net: string[];
  /** `--allow-run` (empty: none). */
  run: string[];
}

/** Files the launcher reads, named by the launcher config. */
export interface LauncherFiles {
  /** The launcher config file. */
  launcherConfig: string;
  /** The agent config file. */
  agentConfig: string;
  /** The bundle. */
  bundle: string;
  /** The tenant key file. */
  tenantKeyFile: string;
  /** Release key files (key strings need no permission). */
  releaseKeyFiles: string[];
  /** The launcher's state directory. */
  launcherStateDir: string;
  /** The control-plane key file, when the key is given as a file. */
  controlKeyFile?: string;
  /** The enrollment token file, when configured. */
  enrollmentTokenFile?: string;
  /** The launcher's refusal ledger, when configured (outside the agent's ledger directory). */
  ledgerFile?: string;
}

function dirOf(path: string): string {
  return path.slice(0, path.lastIndexOf("/")) || "/";
}

/**
 * The process-wide permissions: every worker's, plus the supervisor's own (the control plane,
 * the health endpoint, the agent and launcher state, the config and key files).
 *
 * @param config the agent config
 * @param files what the launcher reads
 * @returns the permissions, each list sorted and without duplicates
 */
export function processPermissions(config: AgentConfig, files: LauncherFiles): ProcessPermissions {
  const proxy = proxyPermissions(config);
  // Sorted, without duplicates and without paths inside another listed path.
  const sorted = (xs: (string | undefined | false)[]) => {
    const all = [...new Set(xs.filter((x): x is string => !!x))];
    return all.filter((p) => !all.some((q) => p.startsWith(q.endsWith("/") ? q : `${q}/`)))
      .sort();
  };
  return {
    read: sorted([
      files.launcherConfig,
      files.agentConfig,
      files.bundle,
      files.tenantKeyFile,
      ...files.releaseKeyFiles,
      files.launcherStateDir,
      files.controlKeyFile,
      files.enrollmentTokenFile,
      files.ledgerFile,
      config.stateDir,
      config.ledger.dir,
      ...(proxy.read || []),
    ]),
    write: sorted([
      files.launcherStateDir,
      config.stateDir,
      config.ledger.dir,
      files.ledgerFile && dirOf(files.ledgerFile),
    ]),
    net: sorted([...(proxy.net || []), hostPortOf(config.control.url), config.health.listen]),
    run: execPermissions(config).run || [],
  };
}

/**
 * The `deno run` flags for the agent process.
 *
 * @param p the permissions
 * @returns the flags, e.g. `--allow-read=/etc/infraveil,…`
 */
export function permissionFlags(p: ProcessPermissions): string[] {
  const flags = [
    `--allow-read=${p.read.join(",")}`,
    `--allow-write=${p.write.join(",")}`,
    `--allow-net=${p.net.join(",")}`,
  ];
  if (p.run.length > 0) flags.push(`--allow-run=${p.run.join(",")}`);
  return flags;
}
