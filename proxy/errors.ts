/**
 * The proxy's one domain error. Configuration mistakes carry the file position and the key
 * path so a user can fix them; protocol errors carry the HTTP status the client receives.
 *
 * @module
 */

/** Error raised by the proxy package. */
export class ProxyError extends Error {
  /** What went wrong, stable for callers to switch on. */
  readonly code:
    | "CONFIG_SYNTAX"
    | "CONFIG_INVALID"
    | "LISTEN_FAILED"
    | "CRS_UNAVAILABLE"
    | "CLOSED";
  /**
   * Creates a proxy error.
   *
   * @param code Stable error code.
   * @param message Human-readable message naming what, where and how to fix it.
   * @param options Standard error options (cause).
   */
  constructor(code: ProxyError["code"], message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ProxyError";
    this.code = code;
  }
}
