/**
 * The one error class of `@infraveil/agent`: every refusal of the launcher, every failed
 * release check and every failure of the running agent carries a `code` naming what failed.
 *
 * @module
 */

/** Which check failed. */
export type AgentErrorCode =
  // input and configuration
  | "BAD_INPUT"
  | "BAD_CONFIG"
  | "STATE_ERROR"
  // the bundle container and the launcher's checks, in the order they run
  | "BUNDLE_UNREADABLE"
  | "BAD_FORMAT"
  | "DECRYPT_FAILED"
  | "UNKNOWN_KEY"
  | "REVOKED_KEY"
  | "BAD_SIGNATURE"
  | "BAD_MAC"
  | "BAD_MANIFEST"
  | "BAD_ARCHIVE"
  | "FILE_MISMATCH"
  | "FILE_MISSING"
  | "FILE_UNEXPECTED"
  | "CIPHERTEXT_MISMATCH"
  | "ROLLBACK"
  | "EXPIRED"
  | "LOAD_FAILED"
  | "ENTRY_FAILED"
  // the running agent
  | "WORKER_FAILED"
  | "SANDBOX_BROKEN"
  | "CONTROL_UNAVAILABLE"
  | "CONTROL_REJECTED"
  | "POLICY_MISMATCH"
  | "APPROVAL_REFUSED"
  | "ACTION_FAILED"
  // release attestations
  | "MALFORMED"
  | "WRONG_PAYLOAD_TYPE"
  | "SUBJECT_MISMATCH"
  | "DIGEST_MISMATCH";

/**
 * An error raised by the agent's release and launcher code.
 *
 * @example
 * ```ts
 * import { AgentError } from "@infraveil/agent";
 * const err = new AgentError("ROLLBACK", "Bundle version 1.0.0 is older than 1.2.0");
 * if (err.code !== "ROLLBACK") throw new Error("unreachable");
 * ```
 */
export class AgentError extends Error {
  /** Which check failed. */
  readonly code: AgentErrorCode;
  /**
   * @param code which check failed
   * @param message what is wrong, where, and how to fix it
   * @param options the underlying cause, if any
   */
  constructor(code: AgentErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "AgentError";
    this.code = code;
  }
}
