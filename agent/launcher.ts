/**
 * The launcher: the code a host must trust before the agent's own code runs.
 *
 * It checks a bundle in a fixed order and refuses at the first failure:
 *
 * 0. framing: magic, format version, section lengths;
 * 1. AES-256-GCM decryption under the tenant bundle key;
 * 2. Ed25519 signature by a trusted, unrevoked release key, then HMAC-SHA256 by the tenant
 *    MAC key, over the manifest;
 * 3. reconciliation: every file's SHA-256 and size, nothing missing, nothing extra, the
 *    ciphertext digest, no rollback below the last version run on this host, not expired.
 *
 * Only then does it import the entry from the verified bytes in memory (`_loader.ts`); it never
 * reads the bundle again. The bundle is read once, by the caller, into one buffer. Every
 * refusal has its own exit code ({@link LAUNCHER_EXIT_CODES}) and is handed to
 * `recordRefusal`, which the CLI connects to the ledger.
 *
 * What this module must never do: run, import or parse as code anything from the bundle before
 * step 3 has passed; trust any field of the manifest before step 2 has passed.
 *
 * @module
 */
import { type Ed25519PublicKey, verifyEd25519, verifyHmacSha256 } from "@infraveil/trust";
import { unpackArchive } from "./_archive.ts";
import { sha256HexBulk } from "./_digest.ts";
import { importPlan, type LoadPlan, planModules } from "./_loader.ts";
import { compareVersions, parseTimestamp } from "./_version.ts";
import {
  type BundleManifest,
  decryptPayload,
  manifestSigningInput,
  parseBundle,
  parseManifest,
} from "./bundle.ts";
import { AgentError, type AgentErrorCode } from "./error.ts";
import type { TenantKey } from "./tenant_key.ts";

/** The exact message of a decryption failure. */
export const DECRYPT_FAILED_MESSAGE =
  "cannot decrypt bundle: wrong tenant key or modified ciphertext";

/** The launcher's exit code for each failure; 0 is success. */
export const LAUNCHER_EXIT_CODES: Readonly<Record<AgentErrorCode, number>> = {
  BAD_INPUT: 2,
  BAD_CONFIG: 2,
  MALFORMED: 2,
  BUNDLE_UNREADABLE: 10,
  BAD_FORMAT: 11,
  DECRYPT_FAILED: 12,
  UNKNOWN_KEY: 13,
  REVOKED_KEY: 14,
  BAD_SIGNATURE: 15,
  BAD_MAC: 16,
  BAD_MANIFEST: 17,
  BAD_ARCHIVE: 18,
  FILE_MISMATCH: 19,
  FILE_MISSING: 20,
  FILE_UNEXPECTED: 21,
  CIPHERTEXT_MISMATCH: 22,
  ROLLBACK: 23,
  EXPIRED: 24,
  STATE_ERROR: 25,
  LOAD_FAILED: 26,
  ENTRY_FAILED: 27,
  // not raised by the launcher (the running agent, release attestations)
  WORKER_FAILED: 1,
  SANDBOX_BROKEN: 1,
  CONTROL_UNAVAILABLE: 1,
  CONTROL_REJECTED: 1,
  POLICY_MISMATCH: 1,
  APPROVAL_REFUSED: 1,
  ACTION_FAILED: 1,
  WRONG_PAYLOAD_TYPE: 1,
  SUBJECT_MISMATCH: 1,
  DIGEST_MISMATCH: 1,
};

/** A bundle that passed every check. */
export interface VerifiedBundle {
  /** The signed manifest. */
  readonly manifest: BundleManifest;
  /** Id of the release key whose signature verified. */
  readonly releaseKid: string;
  /** Id of the tenant key that decrypted the payload and verified the MAC. */
  readonly tenantKid: string;
  /** SHA-256 of the manifest bytes, lowercase hex: names this exact release. */
  readonly manifestSha256: string;
  /** Every file's verified bytes, by path. */
  readonly files: ReadonlyMap<string, Uint8Array>;
}

/** Keys and host state the checks use. */
export interface VerifyBundleOptions {
  /** Trusted release public keys (several during a rotation). */
  trustedKeys: readonly Ed25519PublicKey[];
  /** Release key ids that are refused even when listed as trusted. */
  revokedKids?: readonly string[];
  /** The tenant's bundle and MAC keys. */
  tenantKey: TenantKey;
  /** The last version run on this host, or null on the first run. */
  lastVersion?: string | null;
  /** Current time in ms (default `Date.now`). */
  now?: () => number;
  /**
   * Decrypt over the input buffer instead of into a new one, so a large bundle costs its size
   * in memory once; the caller must not use `bytes` afterwards. Default false.
   */
  inPlace?: boolean;
}

/**
 * Verifies a bundle held in memory: steps 0–3 of the module overview.
 *
 * @param bytes the whole bundle, read once
 * @param options trusted keys, revoked ids, tenant key, last version run, clock
 * @returns the verified bundle, whose `files` are views into the decrypted archive
 * @throws {AgentError} with the code of the first check that failed
 */
export async function verifyBundle(
  bytes: Uint8Array,
  options: VerifyBundleOptions,
): Promise<VerifiedBundle> {
  const { trustedKeys, revokedKids = [], tenantKey, lastVersion = null, now = Date.now } = options;
  const { inPlace = false } = options;
  const parts = parseBundle(bytes);
  // Hashed now, before decryption may overwrite the payload; compared in step 3.
  const encryptedDigest = sha256HexBulk(parts.encrypted);

  // 1. Decrypt. GCM authenticates every segment, its position and the end of the payload.
  let archive: Uint8Array;
  try {
    archive = await decryptPayload(tenantKey.bundleKey, parts.iv, parts.payload, { inPlace });
  } catch (cause) {
    throw new AgentError("DECRYPT_FAILED", DECRYPT_FAILED_MESSAGE, { cause });
  }

  // 2. Release signature by a trusted, unrevoked key; then the tenant MAC.
  const kid = parts.releaseKid;
  if (revokedKids.includes(kid)) {
    throw new AgentError(
      "REVOKED_KEY",
      `Bundle is signed by release key ${kid}, which is revoked in the launcher config. Install a bundle signed with a current release key`,
    );
  }
  const key = trustedKeys.find((k) => k.kid === kid);
  if (!key) {
    throw new AgentError(
      "UNKNOWN_KEY",
      `Bundle is signed by release key ${kid}, which is not among the launcher's trusted keys (${
        trustedKeys.map((k) => k.kid).join(", ") || "none"
      }). Add the published release key to "release_keys" if it is genuine`,
    );
  }
  const message = manifestSigningInput(parts.manifest);
  if (!verifyEd25519(key.publicKey, message, parts.signature)) {
    throw new AgentError(
      "BAD_SIGNATURE",
      `Bundle manifest signature does not verify with release key ${kid}: the manifest or signature was modified`,
    );
  }
  if (!verifyHmacSha256(tenantKey.macKey, message, parts.mac)) {
    throw new AgentError(
      "BAD_MAC",
      `Bundle manifest MAC does not verify with tenant key ${tenantKey.kid}: the bundle was made for another tenant, or the MAC was modified`,
    );
  }
  const manifest = parseManifest(parts.manifest);

  // 3. Reconciliation.
  const files = new Map(unpackArchive(archive).map((f) => [f.path, f.data]));
  const listed = new Map(manifest.files.map((f) => [f.path, f]));
  for (const [path, data] of files) {
    const want = listed.get(path);
    if (want && (data.length !== want.size || sha256HexBulk(data) !== want.sha256)) {
      throw new AgentError(
        "FILE_MISMATCH",
        `Bundle file ${path} does not match the manifest (sha256 ${
          sha256HexBulk(data)
        }, ${data.length} bytes; manifest says ${want.sha256}, ${want.size} bytes)`,
      );
    }
  }
  for (const path of listed.keys()) {
    if (!files.has(path)) {
      throw new AgentError("FILE_MISSING", `Bundle file ${path} is in the manifest but missing`);
    }
  }
  for (const path of files.keys()) {
    if (!listed.has(path)) {
      throw new AgentError("FILE_UNEXPECTED", `Bundle holds ${path}, which the manifest omits`);
    }
  }
  if (encryptedDigest !== manifest.ciphertext_sha256) {
    throw new AgentError(
      "CIPHERTEXT_MISMATCH",
      `Bundle ciphertext digest ${encryptedDigest} is not the manifest's ${manifest.ciphertext_sha256}: the encrypted payload belongs to another bundle`,
    );
  }
  if (lastVersion !== null && compareVersions(manifest.version, lastVersion) < 0) {
    throw new AgentError(
      "ROLLBACK",
      `Bundle version ${manifest.version} is older than ${lastVersion}, the last version run on this host. Install version ${lastVersion} or later`,
    );
  }
  if (now() >= parseTimestamp(manifest.expires)!) {
    throw new AgentError(
      "EXPIRED",
      `Bundle version ${manifest.version} expired at ${manifest.expires}. Install a newer release`,
    );
  }
  return {
    manifest,
    releaseKid: kid,
    tenantKid: tenantKey.kid,
    manifestSha256: sha256HexBulk(parts.manifest),
    files,
  };
}

/** What the launcher hands the entry's `start` function. */
export interface LaunchContext {
  /** The verified bundle: manifest and every file's bytes. */
  readonly bundle: VerifiedBundle;
  /** The launcher's state directory. */
  readonly stateDir: string;
  /** Arguments after `--` on the command line. */
  readonly args: readonly string[];
  /** The agent config file named in the launcher config, or null (the entry reads it). */
  readonly agentConfig: string | null;
}

/** The last version run on this host. */
export interface VersionState {
  /** The recorded version, or null when none is. */
  read(): Promise<string | null>;
  /** Records a version before it runs. */
  write(version: string, manifestSha256: string): Promise<void>;
}

/** What a refusal records. */
export interface RefusalRecord {
  /** Ledger entry type. */
  type: "agent.launch.refused";
  /** Who refused. */
  actor: "launcher";
  /** Details. */
  data: {
    code: AgentErrorCode;
    exit_code: number;
    message: string;
    mode: "verify" | "run";
    bundle: string;
  };
}

/** Options of {@link launch}. */
export interface LaunchOptions extends Omit<VerifyBundleOptions, "lastVersion"> {
  /** `verify` checks and reports; `run` also records the version and starts the entry. */
  mode: "verify" | "run";
  /** Bundle name for messages and records. */
  bundleName: string;
  /** The state directory, passed on to the entry. */
  stateDir: string;
  /** Arguments for the entry. */
  args?: readonly string[];
  /** The agent config file, passed on to the entry. */
  agentConfig?: string;
}

/** What {@link launch} does its I/O with. */
export interface LaunchDeps {
  /** Reads the bundle once. */
  readBundle: () => Promise<Uint8Array>;
  /** Rollback protection state. */
  state: VersionState;
  /** Called with every refusal; failures to record are reported, never fatal. */
  recordRefusal?: (entry: RefusalRecord) => Promise<void>;
  /** Imports a load plan (default: from `blob:` URLs). */
  importEntry?: (plan: LoadPlan) => Promise<Record<string, unknown>>;
}

/** The outcome of a launch. */
export interface LaunchOutcome {
  /** Process exit code. */
  exitCode: number;
  /** What happened, for the operator. */
  message: string;
  /** The verified bundle, when the checks passed. */
  bundle?: VerifiedBundle;
  /** The failure, when there was one. */
  error?: AgentError;
  /** Why recording the refusal failed, if it did. */
  recordError?: unknown;
}

/**
 * Verifies a bundle and, in `run` mode, records its version and starts its entry: the module's
 * exported `start(context: LaunchContext)` is awaited and its number (if any) is the exit code.
 *
 * @param options keys, mode, names
 * @param deps bundle reader, version state, refusal recorder
 * @returns the exit code and message; it does not throw for a refused bundle
 */
export async function launch(options: LaunchOptions, deps: LaunchDeps): Promise<LaunchOutcome> {
  const { mode, bundleName, stateDir, args = [] } = options;
  let bundle: VerifiedBundle | undefined;
  try {
    let bytes: Uint8Array;
    try {
      bytes = await deps.readBundle();
    } catch (cause) {
      throw new AgentError(
        "BUNDLE_UNREADABLE",
        `Cannot read bundle ${bundleName}: ${cause instanceof Error ? cause.message : cause}`,
        { cause },
      );
    }
    const lastVersion = await stateStep("read", () => deps.state.read());
    // The buffer was read for this launch alone: decrypt over it.
    bundle = await verifyBundle(bytes, { ...options, lastVersion, inPlace: true });
    const plan = planModules(bundle.files, bundle.manifest.entry);
    const summary =
      `Bundle ${bundleName} verified: version ${bundle.manifest.version}, release key ${bundle.releaseKid}, tenant key ${bundle.tenantKid}, ${bundle.files.size} files, expires ${bundle.manifest.expires}`;
    if (mode === "verify") return { exitCode: 0, message: summary, bundle };

    if (lastVersion === null || compareVersions(bundle.manifest.version, lastVersion) > 0) {
      const { version } = bundle.manifest;
      await stateStep("write", () => deps.state.write(version, bundle!.manifestSha256));
    }
    const mod = await (deps.importEntry ?? importPlan)(plan);
    if (typeof mod.start !== "function") {
      throw new AgentError(
        "LOAD_FAILED",
        `Bundle entry ${bundle.manifest.entry} does not export a start(context) function`,
      );
    }
    const context: LaunchContext = {
      bundle,
      stateDir,
      args,
      agentConfig: options.agentConfig ?? null,
    };
    let result: unknown;
    try {
      result = await mod.start(context);
    } catch (cause) {
      const error = new AgentError(
        "ENTRY_FAILED",
        `Bundle entry ${bundle.manifest.entry} failed: ${
          cause instanceof Error ? cause.stack ?? cause.message : cause
        }`,
        { cause },
      );
      return { exitCode: LAUNCHER_EXIT_CODES.ENTRY_FAILED, message: error.message, bundle, error };
    }
    const exitCode = Number.isInteger(result) && (result as number) >= 0 &&
        (result as number) <= 255
      ? result as number
      : 0;
    return { exitCode, message: `${summary}; entry exited with ${exitCode}`, bundle };
  } catch (e) {
    if (!(e instanceof AgentError)) throw e;
    const exitCode = LAUNCHER_EXIT_CODES[e.code];
    const outcome: LaunchOutcome = { exitCode, message: e.message, error: e, bundle };
    try {
      await deps.recordRefusal?.({
        type: "agent.launch.refused",
        actor: "launcher",
        data: { code: e.code, exit_code: exitCode, message: e.message, mode, bundle: bundleName },
      });
    } catch (recordError) {
      outcome.recordError = recordError;
    }
    return outcome;
  }
}

async function stateStep<T>(what: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (cause) {
    if (cause instanceof AgentError) throw cause;
    throw new AgentError(
      "STATE_ERROR",
      `Cannot ${what} the launcher state: ${cause instanceof Error ? cause.message : cause}`,
      { cause },
    );
  }
}
