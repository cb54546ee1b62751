/**
 * The standalone executables `deno task compile` builds, their entry points, and how each one's
 * permission set in the root `deno.json` becomes `deno compile` (and `deno run`) flags. Shared
 * by `scripts/compile.ts` and `tests/compile_flags_test.ts`, so that the flags the test runs
 * with are exactly those baked into the executables.
 *
 * @module
 */

/** A permission set as the root `deno.json` writes it (`"permissions": {name: set}`). */
export type PermissionSet = Partial<
  Record<"read" | "write" | "net" | "env" | "run" | "sys" | "ffi" | "import", boolean | string[]>
>;

/** One executable. */
export interface CompileTarget {
  /** The executable's name. */
  name: string;
  /** Its entry point, relative to the project root. */
  entry: string;
  /** The permission set in the root `deno.json`. */
  set: string;
  /** Flags other than permissions it needs (e.g. unstable features). */
  extraFlags: string[];
  /** What it is, for `--help`. */
  summary: string;
}

/** The four executables. */
export const TARGETS: readonly CompileTarget[] = [
  {
    name: "infraveil",
    entry: "main.ts",
    set: "cli",
    extraFlags: [],
    summary: "the CLI: keys, policy, release, verify, ledger, control approve/authority",
  },
  {
    name: "infraveil-agent",
    entry: "agent/main.ts",
    set: "agent",
    extraFlags: ["--unstable-worker-options"],
    summary: "the host agent's launcher: verify, run, permissions",
  },
  {
    name: "infraveil-control",
    entry: "control/main.ts",
    set: "control",
    extraFlags: [],
    summary: "the control plane: init, serve, enroll, evidence export",
  },
  {
    name: "infraveil-mcp",
    entry: "mcp/main.ts",
    set: "mcp",
    extraFlags: [],
    summary: "the governed MCP server (stdio)",
  },
];

/**
 * The permission sets proposed for the root `deno.json` (besides the existing `cli`), for the
 * reference deployment of docs/operations.md and deploy/: the agent's are what
 * `infraveil agent permissions` prints for deploy/launcher.example.json; the control plane
 * keeps its data in /var/lib/infraveil and listens on 127.0.0.1:8700 behind a TLS proxy, with
 * PostgreSQL (when used) on the same host; the MCP server reaches that control plane and reads
 * identity files in /etc/infraveil/mcp. Other deployments override with `--set`.
 */
export const PROPOSED_SETS: Readonly<Record<string, PermissionSet>> = {
  agent: {
    read: [
      "/etc/infraveil/agent.json",
      "/etc/infraveil/control.pub",
      "/etc/infraveil/enroll.token",
      "/etc/infraveil/launcher.json",
      "/etc/infraveil/release-2026.pub",
      "/etc/infraveil/tenant.key",
      "/opt/infraveil/agent.bundle",
      "/var/lib/infraveil/agent",
      "/var/lib/infraveil/launcher",
      "/var/lib/infraveil/ledger",
    ],
    write: ["/var/lib/infraveil/agent", "/var/lib/infraveil/launcher", "/var/lib/infraveil/ledger"],
    net: ["0.0.0.0:8080", "127.0.0.1:3000", "127.0.0.1:9464", "control.example.com:443"],
    run: ["/opt/shop/bin/deploy", "/usr/bin/systemctl"],
  },
  control: {
    read: ["/var/lib/infraveil"],
    write: ["/var/lib/infraveil"],
    net: ["127.0.0.1:8700", "127.0.0.1:5432", "localhost:5432"],
    env: [
      "INFRAVEIL_CONTROL_URL",
      "INFRAVEIL_CONTROL_TOKEN",
      "PGHOST",
      "PGPORT",
      "PGUSER",
      "PGUSERNAME",
      "PGPASSWORD",
      "PGDATABASE",
      "PGAPPNAME",
      "PGTARGETSESSIONATTRS",
      "USER",
      "USERNAME",
      "LOGNAME",
    ],
    sys: ["userInfo"],
  },
  mcp: {
    read: ["/etc/infraveil/mcp"],
    net: ["127.0.0.1:8700", "localhost:8700"],
    env: ["INFRAVEIL_BASE_URL", "INFRAVEIL_AGENT_FILE"],
  },
};

const KINDS = ["read", "write", "net", "env", "run", "sys", "ffi", "import"] as const;

/**
 * `--allow-*` flags for a permission set. `true` grants the kind, a list grants those entries,
 * `false` or absent grants nothing.
 *
 * @param set the permission set
 * @param where where it comes from, for error messages
 * @returns the flags, in a fixed order
 * @throws {Error} for a value other than a boolean or a list of strings, or an unknown kind
 */
export function permissionFlags(set: PermissionSet, where: string): string[] {
  for (const k of Object.keys(set)) {
    if (!(KINDS as readonly string[]).includes(k)) {
      throw new Error(`${where}: unknown permission "${k}"; use ${KINDS.join(", ")}`);
    }
  }
  const flags: string[] = [];
  for (const k of KINDS) {
    const v = set[k];
    if (v === undefined || v === false) continue;
    if (v === true) flags.push(`--allow-${k}`);
    else if (Array.isArray(v) && v.every((x) => typeof x === "string") && v.length > 0) {
      flags.push(`--allow-${k}=${v.join(",")}`);
    } else if (!(Array.isArray(v) && v.length === 0)) {
      throw new Error(`${where}.${k}: must be true, false or a list of strings`);
    }
  }
  return flags;
}

/**
 * Applies `--set NAME.KIND=VALUE` overrides (`VALUE`: `true`, `false` or comma-separated entries).
 *
 * @param sets the permission sets by name
 * @param overrides the `--set` values
 * @returns new sets
 * @throws {Error} naming a malformed override
 */
export function applyOverrides(
  sets: Readonly<Record<string, PermissionSet>>,
  overrides: readonly string[],
): Record<string, PermissionSet> {
  const out: Record<string, PermissionSet> = {};
  for (const [k, v] of Object.entries(sets)) out[k] = { ...v };
  for (const o of overrides) {
    const m = /^([a-z][a-z0-9_-]*)\.([a-z]+)=(.*)$/.exec(o);
    if (!m || !(KINDS as readonly string[]).includes(m[2])) {
      throw new Error(
        `--set ${o}: expected SET.KIND=VALUE, KIND one of ${KINDS.join(", ")} ` +
          `(e.g. --set mcp.net=control.example.com:443)`,
      );
    }
    const [, name, kind, value] = m;
    if (!out[name]) throw new Error(`--set ${o}: no permission set "${name}"`);
    out[name][kind as keyof PermissionSet] = value === "true"
      ? true
      : value === "false" || value === ""
      ? false
      : value.split(",");
  }
  return out;
}

/**
 * The permission sets of the root `deno.json`, with the proposed ones filled in where it has
 * none yet (each such set is reported in `missing`).
 *
 * @param denoJson the root `deno.json` text
 * @returns the sets and the names taken from {@link PROPOSED_SETS}
 */
export function permissionSets(
  denoJson: string,
): { sets: Record<string, PermissionSet>; missing: string[] } {
  const config = JSON.parse(denoJson) as { permissions?: Record<string, PermissionSet> };
  const sets: Record<string, PermissionSet> = { ...config.permissions };
  const missing: string[] = [];
  for (const t of TARGETS) {
    if (sets[t.set]) continue;
    const proposed = PROPOSED_SETS[t.set];
    if (!proposed) throw new Error(`deno.json has no permission set "${t.set}"`);
    sets[t.set] = proposed;
    missing.push(t.set);
  }
  return { sets, missing };
}

/**
 * Everything `deno compile` and `deno run` get for a target besides the entry point: its extra
 * flags, `--no-prompt` (a missing permission fails at once, as in the compiled executable) and
 * its permission flags.
 *
 * @param target the executable
 * @param sets the permission sets
 * @returns the flags
 */
export function runtimeFlags(
  target: CompileTarget,
  sets: Readonly<Record<string, PermissionSet>>,
): string[] {
  const set = sets[target.set];
  if (!set) throw new Error(`no permission set "${target.set}" for ${target.name}`);
  return [
    ...target.extraFlags,
    "--no-prompt",
    ...permissionFlags(set, `deno.json permissions.${target.set}`),
  ];
}

/** Whether `deno compile`'s output says it could not download its runtime. */
export function isRuntimeDownloadFailure(stderr: string): boolean {
  return /denort|dl\.deno\.land/i.test(stderr) &&
    /error sending request|dns error|failed to lookup|Connect|timed out|certificate|403|404/i
      .test(stderr);
}
