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
 * @returns their hex
 */
export function hexOf(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += PAIRS[bytes[i]];
  return out;
}
