/**
 * SHA-256, HMAC-SHA256 and constant-time comparison.
 *
 * Synchronous (noble-hashes) so hot paths such as ledger appends and envelope checks need no
 * `await`; bulk hashing of large inputs can use WebCrypto directly.
 *
 * @module
 */
import { sha256 as nobleSha256 } from "@noble/hashes/sha2.js";
import { hmac } from "@noble/hashes/hmac.js";
import { encodeHex, utf8 } from "./encoding.ts";

/**
 * SHA-256 of bytes, or of a string's UTF-8 encoding.
 *
 * @param data bytes or text
 * @returns the 32-byte digest
 * @example
 * ```ts
 * import { sha256Hex } from "@infraveil/trust";
 * const empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
 * if (sha256Hex("") !== empty) throw new Error();
 * ```
 */
export function sha256(data: Uint8Array | string): Uint8Array {
  return nobleSha256(typeof data === "string" ? utf8(data) : data);
}

/**
 * SHA-256 as lowercase hex.
 *
 * @param data bytes or text
 * @returns 64 lowercase hex characters
 */
export function sha256Hex(data: Uint8Array | string): string {
  return encodeHex(sha256(data));
}

/**
 * HMAC-SHA256 (RFC 2104).
 *
 * @param key the MAC key (any length)
 * @param data the message
 * @returns the 32-byte tag
 */
export function hmacSha256(key: Uint8Array, data: Uint8Array | string): Uint8Array {
  return hmac(nobleSha256, key, typeof data === "string" ? utf8(data) : data);
}

/**
 * Checks an HMAC-SHA256 tag in constant time. A tag of the wrong length is rejected.
 *
 * @param key the MAC key
 * @param data the message
 * @param tag the tag to check (32 bytes)
 * @returns whether the tag is valid
 */
export function verifyHmacSha256(
  key: Uint8Array,
  data: Uint8Array | string,
  tag: Uint8Array,
): boolean {
  return timingSafeEqual(hmacSha256(key, data), tag);
}

/**
 * Compares two byte arrays in time that depends only on their lengths.
 *
 * @param a first array
 * @param b second array
 * @returns whether they are equal
 */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}
