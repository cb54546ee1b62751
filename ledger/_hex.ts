/**
 * Lowercase hex of short byte arrays (the append path makes one per entry).
 *
 * @module
 */

const PAIRS: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/**
 * Lowercase hex of bytes.
 *
 * @param bytes the bytes
 * @param start first byte (default 0)
 * @param end one past the last byte (default: the end)
 * @returns their hex
 */
export function hexOf(bytes: Uint8Array, start = 0, end: number = bytes.length): string {
  let out = "";
  for (let i = start; i < end; i++) out += PAIRS[bytes[i]];
  return out;
}
