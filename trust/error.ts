/**
 * The one error class of `@infraveil/trust`.
 *
 * @module
 */

/** Why a trust operation failed. Each code names one check. */
export type TrustErrorCode =
  | "MALFORMED"
  | "UNKNOWN_KEY"
  | "BAD_SIGNATURE"
  | "BAD_MAC"
  | "WRONG_AUDIENCE"
  | "WRONG_TENANT"
  | "EXPIRED"
  | "NOT_YET_VALID"
  | "BAD_LIFETIME"
  | "REPLAYED"
  | "WRONG_PAYLOAD_TYPE"
  | "BAD_KEY"
  | "BAD_KEY_FILE"
  | "INSECURE_KEY_FILE"
  | "BAD_IV"
  | "DECRYPT_FAILED"
  | "NOT_CANONICAL";

/**
 * An error raised by a trust primitive; `code` says which check failed.
 *
 * @example
 * ```ts
 * import { TrustError } from "@infraveil/trust";
 * const err = new TrustError("EXPIRED", "Message expired at 2026-01-01T00:00:00Z");
 * if (err.code !== "EXPIRED") throw new Error("unreachable");
 * ```
 */
export class TrustError extends Error {
  /** Which check failed. */
  readonly code: TrustErrorCode;
  /**
   * @param code which check failed
   * @param message what is wrong, where, and how to fix it
   * @param options the underlying cause, if any
   */
  constructor(code: TrustErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TrustError";
    this.code = code;
  }
}
