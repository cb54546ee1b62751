/**
 * The launcher config: a small JSON file on the host naming the bundle, the trusted release
 * keys, the revoked key ids, the tenant key file, the state directory and, optionally, a ledger
 * and the agent config the bundle's entry reads (docs/agent.md).
 * The keys live here, never inside the bundle they verify. Parsing is strict; relative paths
 * are resolved against the config file's directory. Pure: `_io.ts` reads the file.
 *
 * @module
 */
import { isKeyId } from "./public_key.ts";
import { AgentError } from "./error.ts";

/** A parsed launcher config, paths resolved. */
export interface LauncherConfig {
  /** The bundle file. */
  bundle: string;
  /** Trusted release keys: each a key file path, a base64 raw key or a minisign key string. */
  releaseKeys: string[];
  /** Release key ids to refuse. */
  revokedKids: string[];
  /** The tenant key file (mode 0600). */
  tenantKeyFile: string;
  /** Directory for launcher state (the last version run). */
  stateDir: string;
  /** Ledger directory, when refusals are to be recorded. */
  ledger?: string;
  /** The agent config file, handed to the bundle's entry (the launcher does not read it). */
  agentConfig?: string;
}

const FIELDS = [
  "bundle",
  "release_keys",
  "revoked_kids",
  "tenant_key_file",
  "state_dir",
  "ledger",
  "agent_config",
];

function resolvePath(baseDir: string, path: string): string {
  if (path.startsWith("/")) return path;
  return `${baseDir.replace(/\/+$/, "") || "."}/${path}`;
}

/**
 * Parses a launcher config.
 *
 * @param text the file's contents
 * @param source the file name, for messages
 * @param baseDir the directory relative paths are resolved against
 * @returns the config
 * @throws {AgentError} `BAD_CONFIG` naming the field that is wrong and how to fix it
 * @example
 * ```ts
 * import { parseLauncherConfig } from "@infraveil/agent";
 * const config = parseLauncherConfig(
 *   '{"bundle":"agent.bundle","release_keys":["release.pub"],"revoked_kids":[],' +
 *     '"tenant_key_file":"tenant.key","state_dir":"state"}',
 *   "launcher.json",
 *   "/etc/infraveil",
 * );
 * if (config.bundle !== "/etc/infraveil/agent.bundle") throw new Error();
 * ```
 */
export function parseLauncherConfig(text: string, source: string, baseDir: string): LauncherConfig {
  const fail = (problem: string): never => {
    throw new AgentError("BAD_CONFIG", `Launcher config ${source}: ${problem}`);
  };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    fail(`not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    fail("expected a JSON object");
  }
  const obj = json as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!FIELDS.includes(key)) {
      fail(`unknown field "${key}"; the fields are ${FIELDS.join(", ")}`);
    }
  }
  const path = (field: string, optional = false): string | undefined => {
    const value = obj[field];
    if (value === undefined && optional) return undefined;
    if (typeof value !== "string" || value === "") {
      fail(`field "${field}" must be a non-empty path string`);
    }
    return resolvePath(baseDir, value as string);
  };
  const strings = (field: string): string[] => {
    const value = obj[field] ?? [];
    if (!Array.isArray(value) || value.some((v) => typeof v !== "string" || v === "")) {
      fail(`field "${field}" must be an array of non-empty strings`);
    }
    return value as string[];
  };
  const releaseKeys = strings("release_keys");
  if (releaseKeys.length === 0) {
    fail(`field "release_keys" must name at least one trusted release public key`);
  }
  const revokedKids = strings("revoked_kids");
  for (const [i, kid] of revokedKids.entries()) {
    if (!isKeyId(kid)) fail(`revoked_kids[${i}] "${kid}" is not a key id (16 lowercase hex)`);
  }
  const config: LauncherConfig = {
    bundle: path("bundle")!,
    // A key string that is not a file is kept as written; _io.ts resolves files.
    releaseKeys,
    revokedKids,
    tenantKeyFile: path("tenant_key_file")!,
    stateDir: path("state_dir")!,
  };
  const ledger = path("ledger", true);
  if (ledger !== undefined) config.ledger = ledger;
  const agentConfig = path("agent_config", true);
  if (agentConfig !== undefined) config.agentConfig = agentConfig;
  return config;
}
