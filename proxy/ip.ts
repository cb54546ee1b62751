/**
 * IP addresses and CIDR ranges for allow/deny lists and trusted proxies. IPv4-mapped IPv6
 * addresses are matched as IPv4, so "::ffff:10.0.0.1" cannot slip past a "10.0.0.0/8" rule.
 *
 * @module
 */

/** A parsed address: 4 bytes (IPv4) or 16 bytes (IPv6). */
export type IpBytes = Uint8Array;

/** Parses an IPv4 or IPv6 address (brackets and zone ids accepted); undefined if invalid. */
export function parseIp(text: string): IpBytes | undefined {
  let s = text.trim();
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  const zone = s.indexOf("%");
  if (zone !== -1) s = s.slice(0, zone);
  if (s.includes(":")) return parseIpv6(s);
  return parseIpv4(s);
}

function parseIpv4(s: string): IpBytes | undefined {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i];
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

function parseIpv6(s: string): IpBytes | undefined {
  let tail: IpBytes | undefined;
  let body = s;
  const lastColon = s.lastIndexOf(":");
  if (s.slice(lastColon + 1).includes(".")) {
    tail = parseIpv4(s.slice(lastColon + 1));
    if (!tail) return undefined;
    body = s.slice(0, lastColon + 1) + "0:0";
  }
  const dbl = body.indexOf("::");
  if (dbl !== -1 && body.indexOf("::", dbl + 1) !== -1) return undefined;
  const groups: number[] = [];
  const parse = (part: string): boolean => {
    if (part === "") return true;
    for (const g of part.split(":")) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return false;
      groups.push(parseInt(g, 16));
    }
    return true;
  };
  let head: number[] = [];
  if (dbl !== -1) {
    if (!parse(body.slice(0, dbl))) return undefined;
    head = groups.splice(0);
    if (!parse(body.slice(dbl + 2))) return undefined;
    const fill = 8 - head.length - groups.length;
    if (fill < 1) return undefined;
    groups.unshift(...head, ...new Array(fill).fill(0));
  } else {
    if (!parse(body) || groups.length !== 8) return undefined;
  }
  if (groups.length !== 8) return undefined;
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[i * 2] = groups[i] >> 8;
    out[i * 2 + 1] = groups[i] & 0xff;
  }
  if (tail) out.set(tail, 12);
  // IPv4-mapped (::ffff:a.b.c.d) is IPv4.
  if (out.subarray(0, 10).every((b) => b === 0) && out[10] === 0xff && out[11] === 0xff) {
    return out.slice(12);
  }
  return out;
}

/** A CIDR range. */
export interface Cidr {
  bytes: IpBytes;
  prefix: number;
}

/** Parses "10.0.0.0/8", "::1", "2001:db8::/32"; undefined if invalid. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf("/");
  const ip = parseIp(slash === -1 ? text : text.slice(0, slash));
  if (!ip) return undefined;
  const max = ip.length * 8;
  let prefix = max;
  if (slash !== -1) {
    const p = text.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(p)) return undefined;
    prefix = Number(p);
    // A mapped IPv6 range ("::ffff:0:0/96"+n) becomes an IPv4 range.
    if (ip.length === 4 && text.includes(":")) prefix -= 96;
    if (prefix < 0 || prefix > max) return undefined;
  }
  return { bytes: ip, prefix };
}

/** Whether `ip` lies inside `range`. */
export function cidrContains(range: Cidr, ip: IpBytes): boolean {
  if (range.bytes.length !== ip.length) return false;
  let bits = range.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((range.bytes[i] & mask) !== (ip[i] & mask)) return false;
  }
  return true;
}

/** A set of CIDR ranges with a cache for repeated lookups. */
export class IpSet {
  readonly #ranges: Cidr[];
  readonly #cache = new Map<string, boolean>();
  /**
   * Builds a set from CIDR strings.
   *
   * @throws {TypeError} when an entry is not a valid address or range.
   */
  constructor(ranges: readonly string[]) {
    this.#ranges = ranges.map((r) => {
      const c = parseCidr(r);
      if (!c) throw new TypeError(`not an IP address or CIDR range: "${r}"`);
      return c;
    });
  }
  /** Number of ranges. */
  get size(): number {
    return this.#ranges.length;
  }
  /** Whether the textual address lies in any range (false for unparsable input). */
  has(addr: string): boolean {
    if (this.#ranges.length === 0) return false;
    const hit = this.#cache.get(addr);
    if (hit !== undefined) return hit;
    const ip = parseIp(addr);
    const result = ip !== undefined && this.#ranges.some((r) => cidrContains(r, ip));
    if (this.#cache.size > 10_000) this.#cache.clear();
    this.#cache.set(addr, result);
    return result;
  }
}
