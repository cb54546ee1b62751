/**
 * The policy package's one error class. Library functions that cannot return diagnostics
 * (compiling an invalid policy, formatting text that does not parse) throw it; nothing in this
 * package throws anything else on user input.
 *
 * @module
 */
import type { Diagnostic } from "./types.ts";

/** Error raised by the policy package; `diagnostics` holds the problems found, if any. */
export class PolicyError extends Error {
  /** What went wrong, for programmatic handling. */
  readonly code: "INVALID_POLICY" | "PARSE" | "BAD_ACTION" | "BAD_TEST_FILE";
  /** The diagnostics behind the error (empty when not applicable). */
  readonly diagnostics: readonly Diagnostic[];
  /**
   * Create a policy error.
   *
   * @param code What went wrong.
   * @param message A human-readable message naming where and how to fix it.
   * @param options `diagnostics` and the standard `cause`.
   */
  constructor(
    code: PolicyError["code"],
    message: string,
    options?: ErrorOptions & { diagnostics?: readonly Diagnostic[] },
  ) {
    super(message, options);
    this.name = "PolicyError";
    this.code = code;
    this.diagnostics = options?.diagnostics ?? [];
  }
}
