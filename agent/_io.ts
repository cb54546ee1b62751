/**
 * File I/O for the agent's command-line entry points: reading the bundle once, key files, the
 * launcher config and the launcher's version state. Library modules take these as values.
 *
 * @module
 */
import { checkPrivateKeyMode } from "@infraveil/trust";
import { AgentError } from "./error.ts";
import type { VersionState } from "./launcher.ts";
import { type LauncherConfig, parseLauncherConfig } from "./launcher_config.ts";
import {
  isKeyId,
  type LoadedPublicKey,
  parsePublicKeyFileText,
  parsePublicKeyString,
} from "./public_key.ts";
import { formatTenantKeyFile, parseTenantKeyFile, type TenantKey } from "./tenant_key.ts";
import { compareVersions, isVersion } from "./_version.ts";
import { ledgerFileOfConfig, readLedgerHistory } from "./_ledger_history.ts";

function why(cause: unknown): string {
  if (cause instanceof Deno.errors.NotFound) return "no such file";
  if (cause instanceof Deno.errors.PermissionDenied) return "permission denied";
  return cause instanceof Error ? cause.message : String(cause);
}

/**
 * Reads a whole regular file into one buffer of exactly its size (no growing copies, so a large
 * bundle costs its size once).
 *
 * @param path the file
 * @returns its bytes
 */
export async function readFileOnce(path: string): Promise<Uint8Array> {
  using file = await Deno.open(path, { read: true });
  const info = await file.stat();
  if (!info.isFile) throw new Error(`${path} is not a regular file`);
  const out = new Uint8Array(info.size);
  let at = 0;
  while (at < out.length) {
    const n = await file.read(out.subarray(at));
    if (n === null) throw new Error(`${path} shrank while it was read`);
    at += n;
  }
  // A file that grew while read is refused rather than read partially.
  if ((await file.read(new Uint8Array(1))) !== null) {
    throw new Error(`${path} grew while it was read`);
  }
  return out;
}

/**
 * Reads a text file, turning a failure into an {@link AgentError}.
 *
 * @param path the file
 * @param what what the file is, for messages
 * @param code the error code to raise
 * @returns the text
 */
export async function readText(
  path: string,
  what: string,
  code: "BAD_INPUT" | "BAD_CONFIG" = "BAD_INPUT",
): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (cause) {
    throw new AgentError(code, `Cannot read ${what} ${path}: ${why(cause)}`, { cause });
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

/**
 * Loads a public key given as a key file path (infraveil JSON or minisign `.pub`), a base64 raw
 * key, or a minisign public key string. A name of an existing file is read as a file.
 *
 * @param spec the path or key string
 * @param baseDir directory a relative path is resolved against
 * @param code the error code to raise
 * @returns the key
 */
export async function loadPublicKey(
  spec: string,
  baseDir = ".",
  code: "BAD_INPUT" | "BAD_CONFIG" = "BAD_INPUT",
): Promise<LoadedPublicKey> {
  const path = spec.startsWith("/") ? spec : `${baseDir}/${spec}`;
  if (await isFile(path)) {
    const text = await readText(path, "public key file", code);
    try {
      const key = parsePublicKeyFileText(text, path);
      if (key.fromPrivateFile) checkPrivateKeyMode((await Deno.stat(path)).mode, path);
      return key;
    } catch (cause) {
      throw new AgentError(code, (cause as Error).message, { cause });
    }
  }
  const key = parsePublicKeyString(spec);
  if (key) return key;
  throw new AgentError(
    code,
    `Cannot use public key "${
      spec.length > 60 ? spec.slice(0, 57) + "…" : spec
    }": no such file, and not a base64 Ed25519 key (32 bytes) or a minisign public key (RW…)`,
  );
}

/**
 * Reads a revocation list: one key id per line; blank lines and `#` comments are ignored.
 *
 * @param path the file
 * @returns the revoked key ids
 */
export async function readRevocationFile(path: string): Promise<string[]> {
  const text = await readText(path, "revocation list");
  const kids: string[] = [];
  for (const [i, line] of text.split("\n").entries()) {
    const kid = line.replace(/#.*/, "").trim();
    if (kid === "") continue;
    if (!isKeyId(kid)) {
      throw new AgentError(
        "BAD_INPUT",
        `Revocation list ${path}:${i + 1}: "${kid}" is not a key id (16 lowercase hex characters)`,
      );
    }
    kids.push(kid);
  }
  return kids;
}

/**
 * Reads a tenant key file, refusing one that group or others can access.
 *
 * @param path the file
 * @param code the error code to raise
 * @returns the tenant keys
 */
export async function readTenantKeyFile(
  path: string,
  code: "BAD_INPUT" | "BAD_CONFIG" = "BAD_CONFIG",
): Promise<TenantKey> {
  const text = await readText(path, "tenant key file", code);
  try {
    checkPrivateKeyMode((await Deno.stat(path)).mode, path);
    return parseTenantKeyFile(text, path);
  } catch (cause) {
    throw new AgentError(code, (cause as Error).message, { cause });
  }
}

/**
 * Writes a new tenant key file, mode 0600. Refuses to overwrite.
 *
 * @param path the file to create
 * @param key the keys
 */
export async function writeTenantKeyFile(path: string, key: TenantKey): Promise<void> {
  try {
    await Deno.writeTextFile(path, formatTenantKeyFile(key), { createNew: true, mode: 0o600 });
    await Deno.chmod(path, 0o600); // the umask may have changed it
  } catch (cause) {
    const problem = cause instanceof Deno.errors.AlreadyExists
      ? "it already exists; choose another path or remove it first"
      : why(cause);
    throw new AgentError("BAD_INPUT", `Cannot write tenant key file ${path}: ${problem}`, {
      cause,
    });
  }
}

/**
 * Reads and parses a launcher config.
 *
 * @param path the config file
 * @returns the config, paths resolved against its directory
 */
export async function readLauncherConfig(path: string): Promise<LauncherConfig> {
  const text = await readText(path, "launcher config", "BAD_CONFIG");
  const slash = path.lastIndexOf("/");
  return parseLauncherConfig(text, path, slash === -1 ? "." : path.slice(0, slash) || "/");
}

const STATE_FILE = "last_version.json";

/**
 * The launcher's version state in `stateDir/last_version.json`, written atomically (a temporary
 * file renamed over the old one). A state file that cannot be parsed is an error, never "no
 * state": that would turn rollback protection off.
 *
 * @param stateDir the state directory (created, mode 0700, if missing)
 * @param now clock for the record
 * @returns the state store
 */
export function fileVersionState(stateDir: string, now: () => number = Date.now): VersionState {
  const file = `${stateDir}/${STATE_FILE}`;
  return {
    async read(): Promise<string | null> {
      let text: string;
      try {
        text = await Deno.readTextFile(file);
      } catch (cause) {
        if (cause instanceof Deno.errors.NotFound) return null;
        throw new AgentError("STATE_ERROR", `Cannot read launcher state ${file}: ${why(cause)}`);
      }
      let version: unknown;
      try {
        version = JSON.parse(text).version;
      } catch {
        version = undefined;
      }
      if (typeof version !== "string" || !isVersion(version)) {
        throw new AgentError(
          "STATE_ERROR",
          `Launcher state ${file} is damaged (no valid "version"). Restore it, or write {"version":"X.Y.Z"} with the last version that ran on this host`,
        );
      }
      return version;
    },
    async write(version: string, manifestSha256: string): Promise<void> {
      const record = {
        version,
        manifest_sha256: manifestSha256,
        recorded: new Date(now()).toISOString(),
      };
      try {
        await Deno.mkdir(stateDir, { recursive: true, mode: 0o700 });
        const tmp = `${file}.tmp-${crypto.randomUUID()}`;
        // Synced before the rename: after a crash the file holds the old record or the new
        // one, never an empty file (which would read as damaged).
        const handle = await Deno.open(tmp, { write: true, createNew: true, mode: 0o600 });
        try {
          const bytes = new TextEncoder().encode(JSON.stringify(record) + "\n");
          let at = 0;
          while (at < bytes.length) at += await handle.write(bytes.subarray(at));
          await handle.syncData();
        } finally {
          handle.close();
        }
        await Deno.rename(tmp, file);
      } catch (cause) {
        throw new AgentError(
          "STATE_ERROR",
          `Cannot record version ${version} in ${file}: ${
            why(cause)
          }. Rollback protection needs a writable state directory`,
          { cause },
        );
      }
    },
  };
}

/**
 * Checks the launcher's version state against the agent's own ledger (hash-chained and
 * anchored to the control plane), whose `agent.start` lines record every version that ran:
 * a missing state file while the ledger records a version is refused (it was deleted or
 * replaced — not a first run), and the higher of the two versions is the one no bundle may
 * go below.
 *
 * @param state the file state
 * @param options the state file (for messages) and the agent config file naming the ledger
 * @returns the checked state
 */
export function ledgerCheckedVersionState(
  state: VersionState,
  options: { stateFile: string; agentConfig: string },
): VersionState {
  return {
    async read(): Promise<string | null> {
      const recorded = await state.read();
      const text = await readText(options.agentConfig, "agent config", "BAD_CONFIG");
      const ledgerFile = ledgerFileOfConfig(options.agentConfig, text);
      if (ledgerFile === null) return recorded;
      const ran = (await readLedgerHistory(ledgerFile)).lastVersion;
      if (ran === null) return recorded;
      if (recorded === null) {
        throw new AgentError(
          "STATE_ERROR",
          `Launcher state ${options.stateFile} is missing, but the agent's ledger ${ledgerFile} records version ${ran.version} running on this host (seq ${ran.seq}): the state was deleted or replaced, which would turn rollback protection off. Restore it, or write {"version":"${ran.version}"} to it`,
        );
      }
      return compareVersions(ran.version, recorded) > 0 ? ran.version : recorded;
    },
    write: (version, manifestSha256) => state.write(version, manifestSha256),
  };
}
