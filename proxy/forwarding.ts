/**
 * Hop-by-hop stripping (RFC 9110 §7.6.1) and the forwarding headers: X-Forwarded-For,
 * X-Forwarded-Proto, X-Forwarded-Host and Forwarded (RFC 7239). Incoming forwarding headers are
 * believed only when the immediate peer is a configured trusted proxy; otherwise they are
 * replaced, so a client cannot forge its address.
 *
 * @module
 */

import type { IpSet } from "./ip.ts";

/** Header names that never cross the proxy (lower case). */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "proxy-authenticate",
  "proxy-authorization",
]);

/** Forwarding headers the proxy writes itself (lower case). */
export const FORWARDING: ReadonlySet<string> = new Set([
  "x-forwarded-for",
  "x-forwarded-proto",
  "x-forwarded-host",
  "forwarded",
]);

/**
 * Returns the set of header names to drop: hop-by-hop names plus any named in Connection.
 *
 * @param connectionTokens Lower-cased tokens of the Connection header(s).
 * @returns A predicate on lower-cased names.
 */
export function hopByHop(connectionTokens: readonly string[]): (lowerName: string) => boolean {
  if (connectionTokens.length === 0) return (n) => HOP_BY_HOP.has(n);
  const extra = new Set(connectionTokens);
  return (n) => HOP_BY_HOP.has(n) || extra.has(n);
}

/** Removes hop-by-hop headers and those named in Connection. */
export function stripHopByHop(headers: readonly [string, string][]): [string, string][] {
  const conn: string[] = [];
  for (const [n, v] of headers) {
    if (n.toLowerCase() === "connection") {
      for (const t of v.split(",")) if (t.trim()) conn.push(t.trim().toLowerCase());
    }
  }
  const drop = hopByHop(conn);
  return headers.filter(([n]) => !drop(n.toLowerCase()));
}

function headerValues(headers: readonly [string, string][], lower: string): string[] {
  const out: string[] = [];
  for (const [n, v] of headers) {
    if (n.length === lower.length && n.toLowerCase() === lower) out.push(v);
  }
  return out;
}

/**
 * Resolves the client address: the peer, unless the peer is a trusted proxy, in which case the
 * right-most X-Forwarded-For entry that is not itself a trusted proxy.
 *
 * @param peer Address of the TCP peer.
 * @param headers Request headers.
 * @param trusted Trusted proxy ranges.
 * @returns The client address.
 */
export function resolveClient(
  peer: string,
  headers: readonly [string, string][],
  trusted: IpSet,
): string {
  if (trusted.size === 0 || !trusted.has(peer)) return peer;
  const chain = headerValues(headers, "x-forwarded-for").join(",").split(",").map((s) => s.trim())
    .filter((s) => s.length > 0);
  let client = peer;
  for (let i = chain.length - 1; i >= 0; i--) {
    client = stripPort(chain[i]);
    if (!trusted.has(client)) break;
  }
  return client;
}

function stripPort(addr: string): string {
  if (addr.startsWith("[")) {
    const end = addr.indexOf("]");
    return end === -1 ? addr : addr.slice(1, end);
  }
  const colon = addr.indexOf(":");
  if (colon !== -1 && addr.indexOf(":", colon + 1) === -1) return addr.slice(0, colon);
  return addr;
}

/** RFC 7239 node: IPv6 in brackets and quotes. */
function forwardedNode(addr: string): string {
  return addr.includes(":") ? `"[${addr}]"` : addr;
}

function forwardedValue(v: string): string {
  return /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(v) ? v : `"${v.replace(/["\\]/g, "\\$&")}"`;
}

/**
 * Builds the forwarding headers for one request.
 *
 * @param headers Incoming request headers.
 * @param opts Peer address, whether it is trusted, the scheme and the effective host.
 * @returns Header lines to append to the upstream request.
 */
export function forwardingHeaders(
  headers: readonly [string, string][],
  opts: { peer: string; trustedPeer: boolean; scheme: string; host: string | undefined },
): [string, string][] {
  const { peer, trustedPeer, scheme, host } = opts;
  const out: [string, string][] = [];
  const xff = trustedPeer ? headerValues(headers, "x-forwarded-for") : [];
  out.push(["X-Forwarded-For", xff.length ? `${xff.join(", ")}, ${peer}` : peer]);
  const xfp = trustedPeer ? headerValues(headers, "x-forwarded-proto") : [];
  out.push(["X-Forwarded-Proto", xfp.length ? xfp[0] : scheme]);
  const xfh = trustedPeer ? headerValues(headers, "x-forwarded-host") : [];
  if (xfh.length) out.push(["X-Forwarded-Host", xfh[0]]);
  else if (host !== undefined) out.push(["X-Forwarded-Host", host]);
  let elem = `for=${forwardedNode(peer)}`;
  if (host !== undefined && host !== "") elem += `;host=${forwardedValue(host)}`;
  elem += `;proto=${scheme}`;
  const fwd = trustedPeer ? headerValues(headers, "forwarded") : [];
  out.push(["Forwarded", fwd.length ? `${fwd.join(", ")}, ${elem}` : elem]);
  return out;
}
