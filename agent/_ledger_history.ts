/**
 * What this host's own ledger says it did before: the agent versions it ran (`agent.start`)
 * and the approvals it used (`agent.action.execute`, and `agent.approval.refused` after a
 * verified signature). The state files (`last_version.json`, `used_approvals.json`) are the
 * fast path; the ledger — hash-chained and anchored to the control plane — is the record they
 * are checked against, so deleting or replacing a state file cannot silently turn rollback or
 * replay protection off (docs/agent.md, "State files and their limits").
 *
 * Reading only: the ledger is parsed line by line, trusting nothing but its JSON shape. It
 * must never write the ledger (the ledger worker is its only writer).
 *
 * @module
 */
import { AgentError } from "./error.ts";
import { compareVersions, isVersion } from "./_version.ts";

/** One approval the ledger records as used. */
export interface UsedInLedger {
  /** The approval's expiry, Unix seconds (recorded, or estimated from the entry's time). */
  exp: number;
  /** The ledger line that records it. */
  seq: number;
}

/** The history a ledger file holds. */
export interface LedgerHistory {
  /** The highest version `agent.start` recorded, and its line; null when none. */
  lastVersion: { version: string; seq: number } | null;
  /** Approvals recorded as used, by id. */
  usedApprovals: Map<string, UsedInLedger>;
}

/** Options of {@link readLedgerHistory}. */
export interface LedgerHistoryOptions {
  /**
   * Expiry assumed for an approval whose line records none: the entry's time plus this
   * (the agent's longest accepted approval lifetime; default 86 400 s).
   */
  maxApprovalLifetimeSeconds?: number;
}

/**
 * Reads the history of a ledger file. A missing file is an empty history (a first run); a
 * torn last line (a crash mid-append) is ignored; any other unreadable line is an error.
 *
 * @param path the ledger file
 * @param options how to estimate unrecorded expiries
 * @returns the versions and used approvals it records
 * @throws {AgentError} `STATE_ERROR` when the file cannot be read or a line is not JSON
 */
export async function readLedgerHistory(
  path: string,
  options: LedgerHistoryOptions = {},
): Promise<LedgerHistory> {
  const { maxApprovalLifetimeSeconds = 86_400 } = options;
  const history: LedgerHistory = { lastVersion: null, usedApprovals: new Map() };
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return history;
    throw new AgentError("STATE_ERROR", `Cannot read the ledger ${path}: ${e}`, { cause: e });
  }
  // An fsync-mode ledger writer preallocates zeros after its last entry (docs/ledger.md).
  let stop = text.length;
  while (stop > 0 && text.charCodeAt(stop - 1) === 0) stop--;
  const lines = text.slice(0, stop).split("\n");
  const last = lines.at(-1) === "" ? lines.length - 2 : lines.length - 1;
  for (const [i, line] of lines.entries()) {
    if (line === "") continue;
    let entry: { seq?: unknown; ts?: unknown; type?: unknown; data?: unknown };
    try {
      entry = JSON.parse(line);
    } catch {
      // Only the last line may be unreadable, and it is not part of the ledger: an append cut
      // short by a crash, without its newline, or with zeros where its sectors did not reach
      // the disk. Neither was acknowledged (the writer quarantines it when it opens the file).
      if (i === lines.length - 1 || (i === last && line.includes("\0"))) break;
      throw new AgentError(
        "STATE_ERROR",
        `Ledger ${path} is damaged at line ${
          i + 1
        } (not JSON); verify it with infraveil verify ledger`,
      );
    }
    if (typeof entry !== "object" || entry === null) continue;
    const seq = typeof entry.seq === "number" ? entry.seq : i;
    const data =
      (typeof entry.data === "object" && entry.data !== null ? entry.data : {}) as Record<
        string,
        unknown
      >;
    if (entry.type === "agent.start") {
      const v = data.version;
      if (
        typeof v === "string" && isVersion(v) &&
        (history.lastVersion === null || compareVersions(v, history.lastVersion.version) > 0)
      ) {
        history.lastVersion = { version: v, seq };
      }
      continue;
    }
    const used = entry.type === "agent.action.execute" ||
      (entry.type === "agent.approval.refused" && data.signature_verified === true &&
        data.code !== "replayed");
    if (!used || typeof data.approval_id !== "string") continue;
    const ts = typeof entry.ts === "string" ? Date.parse(entry.ts) : NaN;
    const exp = Number.isSafeInteger(data.approval_exp)
      ? data.approval_exp as number
      : Number.isFinite(ts)
      ? Math.floor(ts / 1000) + maxApprovalLifetimeSeconds
      : Number.MAX_SAFE_INTEGER;
    const known = history.usedApprovals.get(data.approval_id);
    if (!known || known.exp < exp) history.usedApprovals.set(data.approval_id, { exp, seq });
  }
  return history;
}

/**
 * The ledger file an agent config names, read from the config's JSON without the rest of its
 * validation (the launcher needs only this, before the agent it verifies runs).
 *
 * @param agentConfigPath the agent config file
 * @param text its contents
 * @returns the ledger file's path, or null when the config names no ledger
 */
export function ledgerFileOfConfig(agentConfigPath: string, text: string): string | null {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return null;
  }
  const ledger = (json as { ledger?: { dir?: unknown; file?: unknown } } | null)?.ledger;
  if (typeof ledger?.dir !== "string" || ledger.dir === "") return null;
  const file = typeof ledger.file === "string" && ledger.file !== "" ? ledger.file : "audit.jsonl";
  const slash = agentConfigPath.lastIndexOf("/");
  const base = slash === -1 ? "." : agentConfigPath.slice(0, slash) || "/";
  const dir = ledger.dir.startsWith("/") ? ledger.dir : `${base.replace(/\/+$/, "")}/${ledger.dir}`;
  return `${dir.replace(/\/+$/, "")}/${file}`;
}
