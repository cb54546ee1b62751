/**
 * Bulk SHA-256 for bundle payloads and files: native (`node:crypto`) and fed in 1 MiB slices so
 * that hashing a large file never copies it whole. The small, synchronous hashes of keys and
 * manifests use `@infraveil/trust`.
 *
 * @module
 */
import { createHash } from "node:crypto";

const SLICE = 1 << 20;

/**
 * SHA-256 of the concatenation of byte arrays, as lowercase hex.
 *
 * @param parts the bytes, in order
 * @returns 64 lowercase hex characters
 */
export function sha256HexBulk(...parts: Uint8Array[]): string {
  const hash = createHash("sha256");
  for (const data of parts) {
    for (let at = 0; at < data.length; at += SLICE) {
      hash.update(data.subarray(at, Math.min(data.length, at + SLICE)));
    }
  }
  return hash.digest("hex");
}
