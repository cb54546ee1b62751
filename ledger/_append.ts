/**
 * Formatting the next entry of a ledger: shared by {@link LedgerState} and the file writer, which
 * copies the line's bytes straight into its write buffer.
 *
 * @module
 */
import { ENTRY_VERSION, formatOwnEntry, type LedgerEntry, ROTATE_TYPE } from "./entry.ts";
import { LedgerError } from "./error.ts";
import type { AppendInput, AppendOptions } from "./state.ts";
import { encodeLeaf, encodeLeafInto } from "./_hash.ts";

/** The next entry, its line and leaf hash; the line's bytes wait in the hashing module. */
export interface NextEntry {
  /** The entry. */
  entry: LedgerEntry;
  /** Its line, without the newline. */
  line: string;
  /** Its leaf hash. */
  hash: Uint8Array;
  /** The line's length in bytes (copy them with `copyEncoded`). */
  length: number;
}

/**
 * Formats and hashes the entry that follows `size` entries ending in leaf hash `prev`.
 *
 * @param size entries so far (the new entry's seq)
 * @param prev hex leaf hash of the last line
 * @param input type, actor, data
 * @param options clock and default actor
 * @returns the entry, line, hash and byte length
 * @throws {LedgerError} `BAD_ENTRY` for invalid input
 */
export function formatNext(
  size: number,
  prev: string,
  input: AppendInput,
  options: AppendOptions,
): NextEntry {
  const entry = nextEntry(size, prev, input, options);
  const line = formatOwnEntry(entry);
  const { hash, length } = encodeLeaf(line);
  return { entry, line, hash, length };
}

/**
 * {@link formatNext} for the writer's group commit: the leaf hash goes into `hashes` at byte
 * `at`, and the entry object is not kept.
 *
 * @param size entries so far (the new entry's seq)
 * @param prev hex leaf hash of the last line
 * @param input type, actor, data
 * @param options clock and default actor
 * @param hashes where the leaf hash goes
 * @param at its offset there
 * @returns the line and its byte length (the bytes wait in the hashing module)
 * @throws {LedgerError} `BAD_ENTRY` for invalid input
 */
export function formatNextInto(
  size: number,
  prev: string,
  input: AppendInput,
  options: AppendOptions,
  hashes: Uint8Array,
  at: number,
): { line: string; length: number } {
  const line = formatOwnEntry(nextEntry(size, prev, input, options));
  return { line, length: encodeLeafInto(line, hashes, at) };
}

function nextEntry(
  size: number,
  prev: string,
  input: AppendInput,
  options: AppendOptions,
): LedgerEntry {
  const { now = Date.now, actor = "ledger" } = options;
  if (input === null || typeof input !== "object") {
    throw new LedgerError("BAD_ENTRY", "An entry must be an object with type and data");
  }
  if (input.type === ROTATE_TYPE && size === 0) {
    throw new LedgerError("BAD_ENTRY", `${ROTATE_TYPE} cannot be the first entry of a ledger`);
  }
  return {
    v: ENTRY_VERSION,
    seq: size,
    ts: timestampOf(now()),
    type: input.type,
    actor: input.actor ?? actor,
    data: input.data === undefined ? null : input.data,
    prev,
  };
}

// Appends come many to a millisecond: format each millisecond's timestamp once.
let lastMs = NaN;
let lastTs = "";

function timestampOf(ms: number): string {
  if (ms !== lastMs) {
    lastTs = new Date(ms).toISOString();
    lastMs = ms;
  }
  return lastTs;
}
