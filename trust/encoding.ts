/**
 * Strict byte encodings: base64 (RFC 4648 §4), base64url without padding (§5), lowercase hex.
 * Decoders reject anything that would not round-trip, so one value has one encoding.
 *
 * @module
 */
import { TrustError } from "./error.ts";

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

function lookup(alphabet: string): Int16Array {
  const table = new Int16Array(128).fill(-1);
  for (let i = 0; i < alphabet.length; i++) table[alphabet.charCodeAt(i)] = i;
  return table;
}
const B64_LOOKUP = lookup(B64);
const B64URL_LOOKUP = lookup(B64URL);

function encode(bytes: Uint8Array, alphabet: string, pad: boolean): string {
  let out = "";
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += alphabet[n >> 18] + alphabet[(n >> 12) & 63] + alphabet[(n >> 6) & 63] +
      alphabet[n & 63];
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i] << 16;
    out += alphabet[n >> 18] + alphabet[(n >> 12) & 63] + (pad ? "==" : "");
  } else if (rest === 2) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8);
    out += alphabet[n >> 18] + alphabet[(n >> 12) & 63] + alphabet[(n >> 6) & 63] +
      (pad ? "=" : "");
  }
  return out;
}

function decode(text: string, table: Int16Array, padded: boolean, what: string): Uint8Array {
  let body = text;
  if (padded) {
    if (text.length % 4 !== 0) {
      throw new TrustError(
        "MALFORMED",
        `Invalid ${what}: length ${text.length} is not a multiple of 4`,
      );
    }
    if (body.endsWith("==")) body = body.slice(0, -2);
    else if (body.endsWith("=")) body = body.slice(0, -1);
  }
  if (body.length % 4 === 1) {
    throw new TrustError("MALFORMED", `Invalid ${what}: truncated (length ${text.length})`);
  }
  const out = new Uint8Array(Math.floor((body.length * 3) / 4));
  let acc = 0;
  let bits = 0;
  let j = 0;
  for (let i = 0; i < body.length; i++) {
    const c = body.charCodeAt(i);
    const v = c < 128 ? table[c] : -1;
    if (v < 0) {
      throw new TrustError("MALFORMED", `Invalid ${what}: unexpected character at offset ${i}`);
    }
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[j++] = (acc >> bits) & 0xff;
    }
  }
  // Leftover bits must be zero, or two strings would decode to the same bytes.
  if ((acc & ((1 << bits) - 1)) !== 0) {
    throw new TrustError("MALFORMED", `Invalid ${what}: non-zero trailing bits`);
  }
  return out;
}

/**
 * Encodes bytes as base64url without padding.
 *
 * @param bytes the bytes to encode
 * @returns the base64url text
 * @example
 * ```ts
 * import { encodeBase64Url } from "@infraveil/trust";
 * if (encodeBase64Url(new Uint8Array([251, 255])) !== "-_8") throw new Error();
 * ```
 */
export function encodeBase64Url(bytes: Uint8Array): string {
  return encode(bytes, B64URL, false);
}

/**
 * Decodes unpadded base64url, rejecting padding, other alphabets and non-canonical forms.
 *
 * @param text base64url text
 * @returns the decoded bytes
 * @throws {TrustError} `MALFORMED` when the text is not canonical base64url
 */
export function decodeBase64Url(text: string): Uint8Array {
  return decode(text, B64URL_LOOKUP, false, "base64url");
}

/**
 * Encodes bytes as padded standard base64.
 *
 * @param bytes the bytes to encode
 * @returns the base64 text
 */
export function encodeBase64(bytes: Uint8Array): string {
  return encode(bytes, B64, true);
}

/**
 * Decodes padded standard base64, rejecting anything that is not its canonical form.
 *
 * @param text base64 text
 * @returns the decoded bytes
 * @throws {TrustError} `MALFORMED` when the text is not canonical base64
 */
export function decodeBase64(text: string): Uint8Array {
  return decode(text, B64_LOOKUP, true, "base64");
}

const HEX = "0123456789abcdef";

/**
 * Encodes bytes as lowercase hex.
 *
 * @param bytes the bytes to encode
 * @returns lowercase hex
 */
export function encodeHex(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += HEX[bytes[i] >> 4] + HEX[bytes[i] & 15];
  return out;
}

/**
 * Decodes hex (either case).
 *
 * @param text hex text with an even number of digits
 * @returns the decoded bytes
 * @throws {TrustError} `MALFORMED` on odd length or a non-hex character
 */
export function decodeHex(text: string): Uint8Array {
  if (text.length % 2 !== 0) {
    throw new TrustError("MALFORMED", `Invalid hex: odd length ${text.length}`);
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = hexValue(text.charCodeAt(2 * i));
    const lo = hexValue(text.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0) {
      throw new TrustError("MALFORMED", `Invalid hex: unexpected character at offset ${2 * i}`);
    }
    out[i] = (hi << 4) | lo;
  }
  return out;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

const encoder = new TextEncoder();

/**
 * UTF-8 bytes of a string.
 *
 * @param text the string
 * @returns its UTF-8 encoding
 */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/**
 * Concatenates byte arrays.
 *
 * @param parts the arrays, in order
 * @returns one new array holding them all
 */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
