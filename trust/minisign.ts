/**
 * The minisign formats, so that `minisign -V` verifies our signatures and we verify signatures
 * that `minisign -S` made.
 *
 * - Public key: base64(`"Ed"` ‖ key id (8 bytes) ‖ public key (32 bytes)). Our key id bytes
 *   are the 8 bytes whose hex is our `kid`.
 * - Signature file: four lines — untrusted comment, base64(`"ED"` ‖ key id ‖ Ed25519 over
 *   BLAKE2b-512(file)), trusted comment, base64(Ed25519 over signature ‖ trusted comment).
 *   Legacy `"Ed"` signatures (over the raw file) are verified too.
 *
 * @module
 */
import { blake2b } from "@noble/hashes/blake2.js";
import { concatBytes, decodeBase64, decodeHex, encodeBase64, encodeHex, utf8 } from "./encoding.ts";
import {
  type Ed25519KeyPair,
  type Ed25519PublicKey,
  signEd25519,
  verifyEd25519,
} from "./ed25519.ts";
import { TrustError } from "./error.ts";
import { timingSafeEqual } from "./hash.ts";

const ED = utf8("Ed");
const ED_PREHASHED = utf8("ED");

/** A minisign public key: its 8-byte key id and raw Ed25519 key. */
export interface MinisignPublicKey {
  /** 8-byte key id. */
  keyId: Uint8Array;
  /** Raw 32-byte Ed25519 public key. */
  publicKey: Uint8Array;
}

/**
 * Our public key as a minisign public key string (what `minisign -P` takes).
 *
 * @param key our public key
 * @returns the base64 minisign public key
 */
export function toMinisignPublicKey(key: Ed25519PublicKey): string {
  return encodeBase64(concatBytes(ED, decodeHex(key.kid), key.publicKey));
}

/**
 * Parses a minisign public key: the bare base64 string, or the two-line `.pub` file.
 *
 * @param text the key string or file text
 * @returns the key id and public key
 * @throws {TrustError} `MALFORMED` when it is not a minisign Ed25519 public key
 */
export function parseMinisignPublicKey(text: string): MinisignPublicKey {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "");
  const line = lines.length === 2 && lines[0].startsWith("untrusted comment:")
    ? lines[1]
    : lines[0];
  if (lines.length === 0 || lines.length > 2 || line === undefined) {
    throw new TrustError("MALFORMED", "Not a minisign public key: expected one base64 line");
  }
  let raw: Uint8Array;
  try {
    raw = decodeBase64(line);
  } catch (cause) {
    throw new TrustError("MALFORMED", "Not a minisign public key: not base64", { cause });
  }
  if (raw.length !== 42 || !timingSafeEqual(raw.subarray(0, 2), ED)) {
    throw new TrustError(
      "MALFORMED",
      'Not a minisign public key: expected 42 bytes starting with the Ed25519 tag "Ed"',
    );
  }
  return { keyId: raw.slice(2, 10), publicKey: raw.slice(10) };
}

/** Options for a minisign signature. */
export interface MinisignSignOptions {
  /** The trusted (signed) comment; default `timestamp:<now>\tfile:<name>\thashed`. */
  trustedComment?: string;
  /** The untrusted comment; default names the key. */
  untrustedComment?: string;
  /** File name for the default trusted comment. */
  fileName?: string;
  /** Current time in ms, for the default trusted comment. */
  now?: () => number;
}

/**
 * Signs a file's bytes into the text of a `.minisig` file (prehashed, as minisign does by
 * default).
 *
 * @param data the file's bytes
 * @param key our key pair
 * @param options comments
 * @returns the `.minisig` file text
 * @throws {TrustError} `MALFORMED` when a comment contains a line break
 */
export function signMinisign(
  data: Uint8Array,
  key: Ed25519KeyPair,
  options: MinisignSignOptions = {},
): string {
  const { now = Date.now, fileName } = options;
  const trusted = options.trustedComment ??
    `timestamp:${Math.floor(now() / 1000)}${fileName ? `\tfile:${fileName}` : ""}\thashed`;
  const untrusted = options.untrustedComment ?? `signature from infraveil key ${key.kid}`;
  if (/[\r\n]/.test(trusted) || /[\r\n]/.test(untrusted)) {
    throw new TrustError("MALFORMED", "minisign comments must be one line");
  }
  const signature = signEd25519(key.privateKey, blake2b(data, { dkLen: 64 }));
  const global = signEd25519(key.privateKey, concatBytes(signature, utf8(trusted)));
  return [
    `untrusted comment: ${untrusted}`,
    encodeBase64(concatBytes(ED_PREHASHED, decodeHex(key.kid), signature)),
    `trusted comment: ${trusted}`,
    encodeBase64(global),
    "",
  ].join("\n");
}

/** What a verified minisign signature says. */
export interface VerifiedMinisign {
  /** The signed trusted comment. */
  trustedComment: string;
  /** Whether the file was prehashed with BLAKE2b-512 ("ED"). */
  prehashed: boolean;
  /** The key id, as minisign prints it (hex of the little-endian number, upper case). */
  keyId: string;
}

/**
 * Verifies a `.minisig` file against a file's bytes and a minisign public key.
 *
 * @param data the file's bytes
 * @param signatureText the `.minisig` text
 * @param key the public key (from {@link parseMinisignPublicKey} or our own key)
 * @returns the trusted comment and details
 * @throws {TrustError} `MALFORMED` (not a minisig file), `UNKNOWN_KEY` (signed by another
 *   key id), `BAD_SIGNATURE` (signature or trusted comment does not verify)
 */
export function verifyMinisign(
  data: Uint8Array,
  signatureText: string,
  key: MinisignPublicKey | Ed25519PublicKey,
): VerifiedMinisign {
  const pk: MinisignPublicKey = "keyId" in key
    ? key
    : { keyId: decodeHex(key.kid), publicKey: key.publicKey };
  const lines = signatureText.split("\n").map((l) => l.replace(/\r$/, ""));
  if (lines.at(-1) === "") lines.pop();
  if (
    lines.length !== 4 || !lines[0].startsWith("untrusted comment:") ||
    !lines[2].startsWith("trusted comment: ")
  ) {
    throw new TrustError(
      "MALFORMED",
      "Not a minisign signature: expected untrusted comment, signature, trusted comment, global signature",
    );
  }
  let sigLine: Uint8Array;
  let globalSig: Uint8Array;
  try {
    sigLine = decodeBase64(lines[1]);
    globalSig = decodeBase64(lines[3]);
  } catch (cause) {
    throw new TrustError("MALFORMED", "Not a minisign signature: a signature line is not base64", {
      cause,
    });
  }
  if (sigLine.length !== 74 || globalSig.length !== 64) {
    throw new TrustError("MALFORMED", "Not a minisign signature: wrong signature length");
  }
  const alg = sigLine.subarray(0, 2);
  const prehashed = timingSafeEqual(alg, ED_PREHASHED);
  if (!prehashed && !timingSafeEqual(alg, ED)) {
    throw new TrustError("MALFORMED", "Not a minisign signature: unknown algorithm");
  }
  const sigKeyId = sigLine.subarray(2, 10);
  const displayId = encodeHex(sigKeyId.slice().reverse()).toUpperCase();
  if (!timingSafeEqual(sigKeyId, pk.keyId)) {
    throw new TrustError(
      "UNKNOWN_KEY",
      `Signature key id ${displayId} is not the public key's ${
        encodeHex(pk.keyId.slice().reverse()).toUpperCase()
      }`,
    );
  }
  const signature = sigLine.subarray(10);
  const message = prehashed ? blake2b(data, { dkLen: 64 }) : data;
  if (!verifyEd25519(pk.publicKey, message, signature)) {
    throw new TrustError(
      "BAD_SIGNATURE",
      "minisign signature does not verify: the file or signature was modified, or another key signed it",
    );
  }
  const trustedComment = lines[2].slice("trusted comment: ".length);
  if (!verifyEd25519(pk.publicKey, concatBytes(signature, utf8(trustedComment)), globalSig)) {
    throw new TrustError(
      "BAD_SIGNATURE",
      "minisign trusted comment does not verify: it was modified",
    );
  }
  return { trustedComment, prehashed, keyId: displayId };
}
