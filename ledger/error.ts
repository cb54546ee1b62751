/**
 * The one error class of `@infraveil/ledger`.
 *
 * @module
 */

/** Why a ledger operation failed. Each code names one condition. */
export type LedgerErrorCode =
  | "LOCKED"
  | "CORRUPT"
  | "BAD_ENTRY"
  | "BAD_PROOF"
  | "BAD_ANCHOR"
  | "BAD_CHECKPOINT"
  | "BAD_SIGNATURE"
  | "CLOSED"
  | "WRITE_FAILED"
  | "OUT_OF_RANGE";

/**
 * An error raised by the ledger; `code` says which condition failed.
 *
 * @example
 * ```ts
 * import { LedgerError } from "@infraveil/ledger";
 * const err = new LedgerError("LOCKED", "Cannot open audit.jsonl: another writer holds it");
 * if (err.code !== "LOCKED") throw new Error("unreachable");
 * ```
 */
export class LedgerError extends Error {
  /** Which condition failed. */
  readonly code: LedgerErrorCode;
  /**
   * @param code which condition failed
   * @param message what is wrong, where, and how to fix it
   * @param options the underlying cause, if any
   */
  constructor(code: LedgerErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "LedgerError";
    this.code = code;
  }
}
