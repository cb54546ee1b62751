/**
 * Identifiers and bearer secrets. A token is `<prefix>_<id>.<secret>`: the id is stored in
 * clear (to find the row), the secret only as its SHA-256; comparison is constant-time.
 *
 * @module
 */
import {
  decodeHex,
  encodeBase64Url,
  encodeHex,
  sha256Hex,
  timingSafeEqual,
} from "@infraveil/trust";

/** Fills a buffer with random bytes. */
export type Random = (buf: Uint8Array) => Uint8Array;

/** The default randomness: WebCrypto. */
export const defaultRandom: Random = (b: Uint8Array): Uint8Array => crypto.getRandomValues(b);

/**
 * A new random identifier, e.g. `req_3f9c…` (16 random bytes, hex).
 *
 * @param prefix the kind of thing
 * @param random randomness
 * @returns the identifier
 */
export function newId(prefix: string, random: Random): string {
  return `${prefix}_${encodeHex(random(new Uint8Array(12)))}`;
}

/**
 * A random nonce (base64url of 16 bytes).
 *
 * @param random randomness
 * @returns the nonce
 */
export function newNonce(random: Random): string {
  return encodeBase64Url(random(new Uint8Array(16)));
}

/** A new bearer token: the text to hand out once, and what to store. */
export interface NewToken {
  /** The full token, shown once. */
  token: string;
  /** Its id. */
  id: string;
  /** Hex SHA-256 of its secret. */
  hash: string;
}

/**
 * Makes a bearer token.
 *
 * @param prefix `ivt` (API/session), `ivs` (sign-up) or `ive` (enrollment)
 * @param random randomness
 * @returns the token, its id and the hash to store
 */
export function newToken(prefix: string, random: Random): NewToken {
  const id = encodeHex(random(new Uint8Array(8)));
  const secret = encodeBase64Url(random(new Uint8Array(32)));
  return { token: `${prefix}_${id}.${secret}`, id, hash: sha256Hex(secret) };
}

/**
 * Splits a token into id and secret, or null when it is not of the given prefix's form.
 *
 * @param token the token text
 * @param prefix the expected prefix
 * @returns id and secret
 */
export function parseToken(token: string, prefix: string): { id: string; secret: string } | null {
  const m = new RegExp(`^${prefix}_([0-9a-f]{16})\\.([A-Za-z0-9_-]{43})$`).exec(token);
  return m ? { id: m[1], secret: m[2] } : null;
}

/**
 * Whether a secret matches a stored hash, in constant time.
 *
 * @param secret the presented secret
 * @param hash the stored hex SHA-256
 * @returns whether they match
 */
export function secretMatches(secret: string, hash: string): boolean {
  return timingSafeEqual(decodeHex(sha256Hex(secret)), decodeHex(hash));
}
