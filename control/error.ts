/**
 * The one error class of `@infraveil/control`. Every error the HTTP API returns carries one of
 * these codes (`{"error": {"code", "message"}}`), so clients can act on them without parsing
 * messages.
 *
 * @module
 */

/** Stable error codes of the control plane, with the HTTP status each maps to. */
export const ERROR_STATUS = {
  BAD_REQUEST: 400,
  MALFORMED: 400,
  UNAUTHENTICATED: 401,
  UNKNOWN_KEY: 401,
  BAD_SIGNATURE: 401,
  WRONG_AUDIENCE: 401,
  WRONG_TENANT: 401,
  BAD_LIFETIME: 401,
  NOT_YET_VALID: 401,
  EXPIRED: 401,
  REPLAYED: 401,
  WRONG_TYPE: 400,
  FORBIDDEN: 403,
  HUMAN_ONLY: 403,
  SELF_APPROVAL: 403,
  NOT_ELIGIBLE: 403,
  PROOF_REQUIRED: 403,
  BAD_PROOF: 403,
  NOT_FOUND: 404,
  UNKNOWN_TENANT: 404,
  CONFLICT: 409,
  ALREADY_VOTED: 409,
  NOT_PENDING: 409,
  TOKEN_USED: 409,
  BAD_CONSISTENCY: 409,
  PAYLOAD_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  QUOTA_EXCEEDED: 429,
  INVALID_POLICY: 422,
  STORE: 500,
  INTERNAL: 500,
} as const;

/** Why a control-plane operation failed. */
export type ControlErrorCode = keyof typeof ERROR_STATUS;

/**
 * An error raised by the control plane; `code` is stable and returned to API clients.
 *
 * @example
 * ```ts
 * import { ControlError } from "@infraveil/control";
 * const err = new ControlError("NOT_FOUND", "Request req_1 not found in tenant acme");
 * if (err.status !== 404) throw new Error("unreachable");
 * ```
 */
export class ControlError extends Error {
  /** Which condition failed. */
  readonly code: ControlErrorCode;
  /** Extra machine-readable details (field paths, counts). */
  readonly details?: Record<string, unknown>;
  /**
   * @param code which condition failed
   * @param message what is wrong, where, and how to fix it
   * @param options the cause and extra details
   */
  constructor(
    code: ControlErrorCode,
    message: string,
    options?: ErrorOptions & { details?: Record<string, unknown> },
  ) {
    super(message, options);
    this.name = "ControlError";
    this.code = code;
    if (options?.details) this.details = options.details;
  }

  /** The HTTP status of this error. */
  get status(): number {
    return ERROR_STATUS[this.code];
  }
}
