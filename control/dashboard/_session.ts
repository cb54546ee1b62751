/**
 * Dashboard sessions: the cookie, the per-session CSRF token and the security headers.
 *
 * A session is a control-plane token of kind `session` (created with `createApiToken`), so it
 * expires and is revoked exactly as the API's tokens are. The cookie holds `tenant:token`
 * and is `__Host-` prefixed, `HttpOnly`, `Secure`, `SameSite=Strict`, `Path=/`. The CSRF token
 * is derived from the session token (SHA-256 under a context string), so it needs no storage
 * and dies with the session; every state-changing request must carry it and an `Origin`
 * equal to the dashboard's own.
 *
 * @module
 */
import { encodeBase64Url, sha256, timingSafeEqual, utf8 } from "@infraveil/trust";

/** The session cookie's name. */
export const SESSION_COOKIE = "__Host-infraveil-session";

/** The Content-Security-Policy of every dashboard response. */
export const CSP: string = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join("; ");

/** Headers set on every dashboard response. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  "content-security-policy": CSP,
  "x-content-type-options": "nosniff",
  // Not `no-referrer`: with it, browsers send `Origin: null` on form posts.
  "referrer-policy": "same-origin",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  "permissions-policy": "camera=(), microphone=(), geolocation=(), clipboard-write=(self)",
  "cache-control": "no-store",
});

/** A session read from the cookie (not yet checked against the store). */
export interface SessionCookie {
  /** The tenant it was issued in. */
  tenant: string;
  /** The session token. */
  token: string;
}

/**
 * Reads the session cookie from a `Cookie` header.
 *
 * @param header the header
 * @returns the session, or null
 */
export function readSessionCookie(header: string | undefined): SessionCookie | null {
  if (!header) return null;
  for (const part of header.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name !== SESSION_COOKIE) continue;
    const value = rest.join("=");
    const m = /^([a-z0-9][a-z0-9-]{0,62}):(ivt_[0-9a-f]{16}\.[A-Za-z0-9_-]{43})$/.exec(value);
    return m ? { tenant: m[1], token: m[2] } : null;
  }
  return null;
}

/**
 * The `Set-Cookie` value of a new session.
 *
 * @param s tenant and token
 * @param maxAgeSeconds lifetime
 * @returns the header value
 */
export function sessionCookie(s: SessionCookie, maxAgeSeconds: number): string {
  return `${SESSION_COOKIE}=${s.tenant}:${s.token}; Path=/; Max-Age=${maxAgeSeconds}; HttpOnly; Secure; SameSite=Strict`;
}

/** The `Set-Cookie` value that removes the session cookie. */
export const CLEAR_COOKIE =
  `${SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict`;

/**
 * The CSRF token of a session.
 *
 * @param sessionToken the session token
 * @returns base64url token
 */
export function csrfToken(sessionToken: string): string {
  return encodeBase64Url(sha256(utf8("infraveil-csrf/v1\n" + sessionToken)));
}

/**
 * Whether a state-changing request comes from the dashboard's own pages: its `Origin` is the
 * dashboard's origin or, when a browser withholds the origin (`null` or absent), its
 * `Sec-Fetch-Site` (set by the browser, never by page script) says `same-origin`.
 *
 * @param expected the dashboard's origin
 * @param origin the `Origin` header
 * @param fetchSite the `Sec-Fetch-Site` header
 * @returns true when same-origin
 */
export function sameOrigin(
  expected: string,
  origin: string | undefined,
  fetchSite: string | undefined,
): boolean {
  if (origin !== undefined && origin !== "null") return origin === expected;
  return fetchSite === "same-origin";
}

/**
 * Whether a presented CSRF token matches the session's (constant time).
 *
 * @param sessionToken the session token
 * @param presented the token from the form or the `X-CSRF-Token` header
 * @returns true when it matches
 */
export function csrfMatches(sessionToken: string, presented: string | undefined | null): boolean {
  if (typeof presented !== "string" || presented.length !== 43) return false;
  return timingSafeEqual(utf8(csrfToken(sessionToken)), utf8(presented));
}
