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
