/**
 * Ed25519 keys, signing and strict RFC 8032 verification: the one verifier every member uses.
 *
 * Verification follows noble-curves' strict RFC 8032 mode (`zip215: false`): it rejects
 * non-canonical encodings of the public key, of R and of S (S ≥ L) and public keys of small
 * order, so every Wycheproof "invalid" case fails. It never throws: wrong lengths or types
 * are simply "not verified".
 *
 * There is one verification rule and two ways in: {@link verifyEd25519} (synchronous, pure
 * JS) and {@link verifyEd25519Async}, which applies the same strict encoding checks in JS and
 * then lets the platform's native Ed25519 (`node:crypto`) do the curve arithmetic, about ten times faster.
 * A differential test holds the two to the same answers on every Wycheproof case and on
 * mutated signatures.
 *
 * @module
 */
import { ed25519 } from "@noble/curves/ed25519.js";
import { createPublicKey, type KeyObject, verify as nodeVerify } from "node:crypto";
import { encodeBase64Url as encodeBase64UrlBytes, encodeHex } from "./encoding.ts";
import { TrustError } from "./error.ts";
import { sha256 } from "./hash.ts";

/** An Ed25519 key pair. `privateKey` is the 32-byte RFC 8032 seed. */
export interface Ed25519KeyPair {
  /** First 16 hex characters of SHA-256 of the raw public key. */
  readonly kid: string;
  /** Raw 32-byte public key. */
  readonly publicKey: Uint8Array;
  /** Raw 32-byte private seed. */
  readonly privateKey: Uint8Array;
}

/** A public key with its id. */
export interface Ed25519PublicKey {
  /** First 16 hex characters of SHA-256 of the raw public key. */
  readonly kid: string;
  /** Raw 32-byte public key. */
  readonly publicKey: Uint8Array;
}

/**
 * The key id of a public key: the first 16 hex characters of its SHA-256.
 *
 * @param publicKey raw 32-byte public key
 * @returns 16 lowercase hex characters
 */
export function keyId(publicKey: Uint8Array): string {
  return encodeHex(sha256(publicKey)).slice(0, 16);
}

/**
 * Generates a key pair.
 *
 * @param random fills a buffer with secure random bytes (default: WebCrypto)
 * @returns a new key pair
 * @example
 * ```ts
 * import { generateKeyPair, signEd25519, verifyEd25519 } from "@infraveil/trust";
 * const pair = generateKeyPair();
 * const msg = new TextEncoder().encode("hi");
 * if (!verifyEd25519(pair.publicKey, msg, signEd25519(pair.privateKey, msg))) throw new Error();
 * ```
 */
export function generateKeyPair(
  random: (buf: Uint8Array) => Uint8Array = (b) => crypto.getRandomValues(b),
): Ed25519KeyPair {
  return keyPairFromSeed(random(new Uint8Array(32)));
}

/**
 * Derives the key pair of a 32-byte seed.
 *
 * @param seed the 32-byte private seed
 * @returns the key pair
 * @throws {TrustError} `BAD_KEY` when the seed is not 32 bytes
 */
export function keyPairFromSeed(seed: Uint8Array): Ed25519KeyPair {
  if (!(seed instanceof Uint8Array) || seed.length !== 32) {
    throw new TrustError("BAD_KEY", "An Ed25519 private key must be a 32-byte seed");
  }
  const publicKey = ed25519.getPublicKey(seed);
  return { kid: keyId(publicKey), publicKey, privateKey: seed.slice() };
}

/**
 * Signs a message (RFC 8032, deterministic).
 *
 * @param privateKey the 32-byte seed
 * @param message the bytes to sign
 * @returns the 64-byte signature
 * @throws {TrustError} `BAD_KEY` when the key is not 32 bytes
 */
export function signEd25519(privateKey: Uint8Array, message: Uint8Array): Uint8Array {
  if (!(privateKey instanceof Uint8Array) || privateKey.length !== 32) {
    throw new TrustError("BAD_KEY", "An Ed25519 private key must be a 32-byte seed");
  }
  return ed25519.sign(message, privateKey);
}

/**
 * Verifies an Ed25519 signature with strict RFC 8032 rules.
 *
 * @param publicKey raw 32-byte public key
 * @param message the signed bytes
 * @param signature the 64-byte signature
 * @returns true only for a valid signature; false for anything else, never throws
 */
export function verifyEd25519(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (
    !(publicKey instanceof Uint8Array) || publicKey.length !== 32 ||
    !(signature instanceof Uint8Array) || signature.length !== 64 ||
    !(message instanceof Uint8Array)
  ) {
    return false;
  }
  try {
    return ed25519.verify(signature, message, publicKey, { zip215: false });
  } catch {
    return false;
  }
}

// 2^255 - 19 and the group order L, little-endian, for the strict encoding checks.
const P_LE = Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 0xed : i === 31 ? 0x7f : 0xff));
const L_LE = new Uint8Array([
  0xed,
  0xd3,
  0xf5,
  0x5c,
  0x1a,
  0x63,
  0x12,
  0x58,
  0xd6,
  0x9c,
  0xf7,
  0xa2,
  0xde,
  0xf9,
  0xde,
  0x14,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0x10,
]);

/** Whether little-endian `a` (with the top bit of byte 31 masked off when `mask`) is < `b`. */
function lessThan(a: Uint8Array, b: Uint8Array, mask: boolean): boolean {
  for (let i = 31; i >= 0; i--) {
    const x = i === 31 && mask ? a[i] & 0x7f : a[i];
    if (x !== b[i]) return x < b[i];
  }
  return false;
}

/** RFC 8032 §5.1.3: a point encoding is canonical when its y coordinate is < p. */
function canonicalPoint(encoded: Uint8Array): boolean {
  return lessThan(encoded, P_LE, true);
}

/**
 * Whether bytes are an Ed25519 public key that can verify anything: 32 bytes, a canonical
 * encoding of a point on the curve, not of small order, and in the prime-order subgroup (no
 * torsion component: honest key generation never makes one, and for a mixed-order key the
 * cofactored and cofactorless verification equations — noble's and the platform's — can give
 * different answers on signatures its holder crafts). Enrollment refuses any other key.
 *
 * @param publicKey raw public key bytes
 * @returns whether the key is acceptable
 */
export function isValidEd25519PublicKey(publicKey: Uint8Array): boolean {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) return false;
  if (!canonicalPoint(publicKey)) return false;
  try {
    const point = ed25519.Point.fromBytes(publicKey, false);
    return !point.isSmallOrder() && point.isTorsionFree();
  } catch {
    return false;
  }
}

const keyCache = new Map<string, KeyObject>();

function importVerifyKey(publicKey: Uint8Array): KeyObject | null {
  let id = "";
  for (let i = 0; i < 32; i++) id += String.fromCharCode(publicKey[i]);
  let key = keyCache.get(id);
  if (!key) {
    // Decodable, canonical, not of small order (the identity and the torsion points would let
    // anyone forge signatures for the key), no torsion component. The subgroup check is a
    // scalar multiplication (about half a millisecond), hence the cache.
    if (!isValidEd25519PublicKey(publicKey)) return null;
    key = createPublicKey({
      key: { kty: "OKP", crv: "Ed25519", x: encodeBase64UrlBytes(publicKey) },
      format: "jwk",
    });
    if (keyCache.size >= 4096) keyCache.delete(keyCache.keys().next().value!);
    keyCache.set(id, key);
  }
  return key;
}

/**
 * Verifies an Ed25519 signature with the same strict RFC 8032 rules as
 * {@link verifyEd25519}, using the platform's native Ed25519 for the curve arithmetic.
 *
 * @param publicKey raw 32-byte public key
 * @param message the signed bytes
 * @param signature the 64-byte signature
 * @returns true only for a valid signature; false for anything else, never rejects
 * @example
 * ```ts
 * import { generateKeyPair, signEd25519, verifyEd25519Async } from "@infraveil/trust";
 * const pair = generateKeyPair();
 * const msg = new TextEncoder().encode("hi");
 * if (!(await verifyEd25519Async(pair.publicKey, msg, signEd25519(pair.privateKey, msg)))) {
 *   throw new Error();
 * }
 * ```
 */
export async function verifyEd25519Async(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  if (
    !(publicKey instanceof Uint8Array) || publicKey.length !== 32 ||
    !(signature instanceof Uint8Array) || signature.length !== 64 ||
    !(message instanceof Uint8Array)
  ) {
    return false;
  }
  // Strict encodings first: S < L, canonical A and R, A not of small order. The platform
  // then checks the signature equation.
  if (!lessThan(signature.subarray(32), L_LE, false)) return false;
  if (!canonicalPoint(publicKey) || !canonicalPoint(signature.subarray(0, 32))) return false;
  try {
    const key = importVerifyKey(publicKey);
    if (key === null) return false;
    // The platform's native Ed25519 (synchronous: cheaper than WebCrypto's promise per call).
    return await Promise.resolve(nodeVerify(null, message, key, signature));
  } catch {
    return false;
  }
}
