/**
 * The agent's durable state in its state directory: small JSON files written atomically (a
 * synced temporary file renamed over the old one), so a crash leaves either the old or the new
 * content, never a mix. Holds the used approval ids (single use survives restarts), the
 * deployed versions (for rollback), the active policy copy and the enrollment record.
 *
 * A file that exists but cannot be parsed is an error, never "empty": that would forget used
 * approvals and let one run twice.
 *
 * @module
 */
import { AgentError } from "./error.ts";
import { readLedgerHistory } from "./_ledger_history.ts";

/** Reads and writes one JSON file atomically. */
export interface JsonFile<T> {
  /** The file's path. */
  readonly path: string;
  /** The content, or null when the file does not exist. */
  read(): Promise<T | null>;
  /** Replaces the content durably. */
  write(value: T): Promise<void>;
}

/**
 * A JSON file written atomically.
 *
 * @param path the file
 * @param validate checks the parsed value; returns a problem or null
 * @returns the store
 */
export function jsonFile<T>(path: string, validate: (v: unknown) => string | null): JsonFile<T> {
  return {
    path,
    async read(): Promise<T | null> {
      let text: string;
      try {
        text = await Deno.readTextFile(path);
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) return null;
        throw new AgentError("STATE_ERROR", `Cannot read agent state ${path}: ${e}`, { cause: e });
      }
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        value = undefined;
      }
      const problem = value === undefined ? "not JSON" : validate(value);
      if (problem !== null) {
        throw new AgentError(
          "STATE_ERROR",
          `Agent state ${path} is damaged (${problem}). Restore it from a backup; do not delete it`,
        );
      }
      return value as T;
    },
    async write(value: T): Promise<void> {
      const tmp = `${path}.tmp-${crypto.randomUUID()}`;
      try {
        const file = await Deno.open(tmp, { write: true, createNew: true, mode: 0o600 });
        try {
          const bytes = new TextEncoder().encode(JSON.stringify(value) + "\n");
          let at = 0;
          while (at < bytes.length) at += await file.write(bytes.subarray(at));
          await file.syncData();
        } finally {
          file.close();
        }
        await Deno.rename(tmp, path);
      } catch (e) {
        await Deno.remove(tmp).catch(() => {});
        throw new AgentError("STATE_ERROR", `Cannot write agent state ${path}: ${e}`, { cause: e });
      }
    },
  };
}

/** Approval ids already used, each with its expiry (Unix seconds). */
export interface UsedApprovals {
  /** Whether an id was used. */
  has(id: string): boolean;
  /** Records an id durably before the action runs. */
  add(id: string, exp: number): Promise<void>;
}

const isRecordOfNumbers = (v: unknown): string | null =>
  typeof v === "object" && v !== null && !Array.isArray(v) &&
    Object.values(v).every((x) => Number.isSafeInteger(x))
    ? null
    : "expected an object of approval id → expiry";

/** Options of {@link openUsedApprovals}. */
export interface UsedApprovalsOptions {
  /** Clock, ms. */
  now?: () => number;
  /** How long after its expiry an id is kept, seconds (default 86 400). */
  retainSeconds?: number;
  /**
   * This host's ledger file: the approvals it records as used are used here too, and a
   * missing `used_approvals.json` while it records any is refused (not a first run).
   */
  ledgerFile?: string;
  /** Expiry assumed for a ledger line that records none (see `readLedgerHistory`). */
  maxApprovalLifetimeSeconds?: number;
}

/**
 * The used-approval store in `stateDir/used_approvals.json`. Ids whose approval expired more
 * than `retainSeconds` ago are forgotten (an expired approval is refused anyway). With a
 * `ledgerFile`, the ids the ledger records as used are added (an older copy of the file
 * cannot make one usable again), and a missing file is refused when the ledger records any.
 *
 * @param stateDir the agent's state directory
 * @param options clock, retention, the ledger to check against
 * @returns the store, loaded
 * @throws {AgentError} `STATE_ERROR` when the file is damaged, or missing while the ledger
 *   records used approvals
 */
export async function openUsedApprovals(
  stateDir: string,
  options: UsedApprovalsOptions = {},
): Promise<UsedApprovals> {
  const { now = Date.now, retainSeconds = 86_400, ledgerFile } = options;
  const file = jsonFile<Record<string, number>>(
    `${stateDir}/used_approvals.json`,
    isRecordOfNumbers,
  );
  const stored = await file.read();
  const history = ledgerFile === undefined ? null : await readLedgerHistory(ledgerFile, options);
  if (stored === null && history !== null && history.usedApprovals.size > 0) {
    const [id, at] = history.usedApprovals.entries().next().value!;
    throw new AgentError(
      "STATE_ERROR",
      `Agent state ${file.path} is missing, but the ledger ${ledgerFile} records ${history.usedApprovals.size} approval(s) used on this host (e.g. ${id} at seq ${at.seq}): the file was deleted or the state directory replaced, and without it an approval could run twice. Restore it from a backup, or write {} to it to rebuild it from the ledger; the agent does not start without it`,
    );
  }
  const used = new Map(Object.entries(stored ?? {}));
  const cutoff = Math.floor(now() / 1000) - retainSeconds;
  for (const [id, { exp }] of history?.usedApprovals ?? []) {
    if (exp >= cutoff && (used.get(id) ?? -Infinity) < exp) used.set(id, exp);
  }
  return {
    has: (id) => used.has(id),
    async add(id, exp) {
      used.set(id, exp);
      const cutoff = Math.floor(now() / 1000) - retainSeconds;
      for (const [k, e] of used) if (e < cutoff) used.delete(k);
      await file.write(Object.fromEntries(used));
    },
  };
}

/** The versions this host deployed, oldest first; the last is the current one. */
export interface Deployments {
  /** The current version, if known. */
  current(): string | null;
  /** The version before it, if known. */
  previous(): string | null;
  /** Records a successful deploy of `version`. */
  deployed(version: string): Promise<void>;
  /** Records a successful rollback to the previous version. */
  rolledBack(): Promise<void>;
}

/**
 * The deployment history in `stateDir/deployments.json` (the last 20 versions).
 *
 * @param stateDir the agent's state directory
 * @returns the store, loaded
 */
export async function openDeployments(stateDir: string): Promise<Deployments> {
  const file = jsonFile<{ versions: string[] }>(
    `${stateDir}/deployments.json`,
    (v) =>
      Array.isArray((v as { versions?: unknown }).versions) &&
        (v as { versions: unknown[] }).versions.every((x) => typeof x === "string")
        ? null
        : "expected {versions: string[]}",
  );
  const versions = (await file.read())?.versions ?? [];
  return {
    current: () => versions.at(-1) ?? null,
    previous: () => versions.at(-2) ?? null,
    async deployed(version) {
      if (versions.at(-1) !== version) versions.push(version);
      versions.splice(0, Math.max(0, versions.length - 20));
      await file.write({ versions });
    },
    async rolledBack() {
      versions.pop();
      await file.write({ versions });
    },
  };
}
