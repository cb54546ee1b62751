/**
 * The one error class of `@infraveil/mcp`.
 *
 * @module
 */

/** Why the governed MCP server refused something. Each code names one check or failure. */
export type GovernedMcpErrorCode =
  /** `INFRAVEIL_BASE_URL` or another setting is missing or unusable. */
  | "BAD_CONFIG"
  /** The identity file is unreadable, malformed, of the wrong kind, or too permissive. */
  | "BAD_IDENTITY"
  /** The control plane could not be reached (network error, timeout). */
  | "CONTROL_UNREACHABLE"
  /** The control plane answered, but its answer failed verification (forged, unsigned, replayed). */
  | "UNVERIFIED_RESPONSE"
  /** The control plane verified the call and refused it (unknown identity, not permitted). */
  | "CONTROL_REFUSED"
  /** The control plane reported that what was asked for does not exist. */
  | "NOT_FOUND"
  /** The tool's arguments are invalid (here, or as the control plane judged them). */
  | "BAD_ARGUMENTS"
  /** The control plane's rate limit or quota for this identity was reached. */
  | "RATE_LIMITED"
  /** The control plane failed in another way (an internal error on its side). */
  | "CONTROL_ERROR";

/**
 * An error raised by the governed MCP server; `code` says what failed. Tool handlers turn it
 * into an `isError` tool result; it never crashes the server.
 *
 * @example
 * ```ts
 * import { GovernedMcpError } from "@infraveil/mcp";
 * const err = new GovernedMcpError("BAD_ARGUMENTS", "Field targets must not be empty");
 * if (err.code !== "BAD_ARGUMENTS") throw new Error("unreachable");
 * ```
 */
export class GovernedMcpError extends Error {
  /** What failed. */
  readonly code: GovernedMcpErrorCode;
  /**
   * @param code what failed
   * @param message what is wrong, where, and how to fix it
   * @param options the underlying cause, if any
   */
  constructor(code: GovernedMcpErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "GovernedMcpError";
    this.code = code;
  }
}
