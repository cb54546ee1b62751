/**
 * Byte helpers for the HTTP/1.1 code. Header bytes are ISO-8859-1 (RFC 9110 §5.5): decoding and
 * encoding must round-trip every byte so header values pass through unchanged.
 *
 * @module
 */

const utf8Decoder = new TextDecoder();
const utf8Encoder = new TextEncoder();

/** Decodes bytes as ISO-8859-1 (each byte one code unit), fast for ASCII. */
export function latin1Decode(buf: Uint8Array, start: number, end: number): string {
  const sub = buf.subarray(start, end);
  const s = utf8Decoder.decode(sub);
  if (s.length === sub.length && s.indexOf("\uFFFD") === -1) return s;
  let out = "";
  for (let i = 0; i < sub.length; i += 4096) {
    out += String.fromCharCode.apply(
      null,
      sub.subarray(i, Math.min(i + 4096, sub.length)) as unknown as number[],
    );
  }
  return out;
}

/** Encodes a string of code units ≤ 0xFF as ISO-8859-1 bytes, fast for ASCII. */
export function latin1Encode(s: string): Uint8Array {
  const u8 = utf8Encoder.encode(s);
  if (u8.length === s.length) return u8;
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

/** Encodes a string as UTF-8. */
export function utf8Encode(s: string): Uint8Array {
  return utf8Encoder.encode(s);
}

/** Concatenates byte arrays. */
export function concatBytes(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const HEX: string[] = [];
for (let i = 0; i < 256; i++) HEX.push(i.toString(16).padStart(2, "0"));

/** Lower-case hex of bytes. */
export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += HEX[bytes[i]];
  return s;
}

/**
 * Appends message bytes to a growable buffer, so a head and a small body leave in one write.
 * Strings are written as ISO-8859-1 (one byte per code unit) with a plain loop: for the short
 * strings of a message head that is cheaper than a call into the runtime's encoder.
 */
export class ByteWriter {
  /** Backing store; bytes [0, length) are the message. */
  buf: Uint8Array;
  /** Bytes written. */
  length = 0;

  constructor(initialSize = 1024) {
    this.buf = new Uint8Array(initialSize);
  }

  /** Forgets what was written (keeps the buffer). */
  reset(): void {
    this.length = 0;
  }

  /** Makes room for `extra` more bytes. */
  reserve(extra: number): void {
    const need = this.length + extra;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  /** Appends a string of code units ≤ 0xFF (higher units keep their low byte). */
  str(s: string): void {
    const n = s.length;
    this.reserve(n);
    const b = this.buf;
    let o = this.length;
    for (let i = 0; i < n; i++) b[o++] = s.charCodeAt(i);
    this.length = o;
  }

  /** Appends src[a, b). */
  range(src: Uint8Array, a: number, b: number): void {
    const n = b - a;
    this.reserve(n);
    const out = this.buf;
    let o = this.length;
    if (n <= 64) {
      for (let i = a; i < b; i++) out[o++] = src[i];
    } else {
      out.set(src.subarray(a, b), o);
      o += n;
    }
    this.length = o;
  }

  /** Appends all of src. */
  bytes(src: Uint8Array): void {
    this.range(src, 0, src.length);
  }

  /** Appends a non-negative integer in decimal. */
  decimal(v: number): void {
    this.str(String(v));
  }

  /** Appends bytes as lower-case hex. */
  hex(src: Uint8Array, a: number, b: number): void {
    this.reserve(2 * (b - a));
    const out = this.buf;
    let o = this.length;
    for (let i = a; i < b; i++) {
      const v = src[i];
      out[o++] = HEX_DIGITS[v >> 4];
      out[o++] = HEX_DIGITS[v & 15];
    }
    this.length = o;
  }

  /** The bytes written (a view, valid until the next write). */
  view(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

const HEX_DIGITS = latin1Encode("0123456789abcdef");

/** Lower-case hex of bytes [a, b). */
export function hexOf(bytes: Uint8Array, a: number, b: number): string {
  let s = "";
  for (let i = a; i < b; i++) s += HEX[bytes[i]];
  return s;
}

/** Writes the bytes of a lower-case hex string (already validated) to out[at, …). */
export function hexInto(out: Uint8Array, at: number, hex: string): void {
  for (let i = 0; i + 1 < hex.length; i += 2) {
    out[at + (i >> 1)] = (hexValue(hex.charCodeAt(i)) << 4) | hexValue(hex.charCodeAt(i + 1));
  }
}

function hexValue(c: number): number {
  return c <= 57 ? c - 48 : (c | 0x20) - 87;
}
