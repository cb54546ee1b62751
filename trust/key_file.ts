/**
 * Key files: `{"kty":"ed25519","kid":…,"public":…,"private"?:…}` with base64url fields.
 *
 * Parsing is strict and every failure names the file and the problem: a truncated file, a
 * file of another type, a wrong `kty`, a `kid` or public key that does not match the private
 * seed. This module is pure; `io.ts` reads and writes the files.
 *
 * @module
 */
import { decodeBase64Url, encodeBase64Url } from "./encoding.ts";
import { type Ed25519KeyPair, type Ed25519PublicKey, keyId, keyPairFromSeed } from "./ed25519.ts";
import { TrustError } from "./error.ts";
import { timingSafeEqual } from "./hash.ts";

/** The JSON form of a key file. */
export interface KeyFileJson {
  /** Always `"ed25519"`. */
  kty: "ed25519";
  /** Key id: the first 16 hex characters of SHA-256 of the public key. */
  kid: string;
  /** base64url raw public key. */
  public: string;
  /** base64url 32-byte private seed; present only in private key files. */
  private?: string;
}

/**
 * The text of a private key file for a key pair.
 *
 * @param pair the key pair
 * @returns JSON text ending in a newline
 */
export function formatPrivateKeyFile(pair: Ed25519KeyPair): string {
  const json: KeyFileJson = {
    kty: "ed25519",
    kid: pair.kid,
    public: encodeBase64Url(pair.publicKey),
    private: encodeBase64Url(pair.privateKey),
  };
  return JSON.stringify(json, null, 2) + "\n";
}

/**
 * The text of a public key file.
 *
 * @param key the public key
 * @returns JSON text ending in a newline
 */
export function formatPublicKeyFile(key: Ed25519PublicKey): string {
  const json: KeyFileJson = {
    kty: "ed25519",
    kid: key.kid,
    public: encodeBase64Url(key.publicKey),
  };
  return JSON.stringify(json, null, 2) + "\n";
}

/** A parsed key file: public always, private when the file holds one. */
export type ParsedKeyFile =
  | { kind: "public"; key: Ed25519PublicKey }
  | { kind: "private"; key: Ed25519KeyPair };

function bad(source: string, problem: string, fix: string): TrustError {
  return new TrustError("BAD_KEY_FILE", `Cannot load key file ${source}: ${problem}. ${fix}`);
}

/**
 * Parses the text of a key file.
 *
 * @param text the file's contents
 * @param source the file name, for error messages
 * @returns the public or private key it holds
 * @throws {TrustError} `BAD_KEY_FILE` naming the file and the problem
 */
export function parseKeyFile(text: string, source: string): ParsedKeyFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    const detail = text.trim() === "" ? "the file is empty" : "the file is not JSON (truncated?)";
    throw new TrustError(
      "BAD_KEY_FILE",
      `Cannot load key file ${source}: ${detail}. Restore it from backup or generate a new key with \`infraveil keys generate\``,
      { cause },
    );
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw bad(source, "expected a JSON object", 'Key files hold {"kty","kid","public"}');
  }
  const obj = json as Record<string, unknown>;
  if (obj.kty !== "ed25519") {
    throw bad(
      source,
      `field "kty" is ${JSON.stringify(obj.kty)}, expected "ed25519"`,
      "This file is not an infraveil Ed25519 key file",
    );
  }
  for (const field of Object.keys(obj)) {
    if (!["kty", "kid", "public", "private"].includes(field)) {
      throw bad(source, `unknown field "${field}"`, "Remove it");
    }
  }
  if (typeof obj.public !== "string") {
    throw bad(source, `field "public" is missing or not a string`, "Key files need a public key");
  }
  let publicKey: Uint8Array;
  try {
    publicKey = decodeBase64Url(obj.public);
  } catch {
    throw bad(source, `field "public" is not base64url`, "The file is damaged");
  }
  if (publicKey.length !== 32) {
    throw bad(
      source,
      `field "public" is ${publicKey.length} bytes, expected 32`,
      "The file is damaged",
    );
  }
  const kid = keyId(publicKey);
  if (obj.kid !== kid) {
    throw bad(
      source,
      `field "kid" is ${JSON.stringify(obj.kid)} but the public key's id is "${kid}"`,
      "The file is damaged or was edited",
    );
  }
  if (obj.private === undefined) return { kind: "public", key: { kid, publicKey } };
  if (typeof obj.private !== "string") {
    throw bad(source, `field "private" is not a string`, "The file is damaged");
  }
  let seed: Uint8Array;
  try {
    seed = decodeBase64Url(obj.private);
  } catch {
    throw bad(source, `field "private" is not base64url`, "The file is damaged");
  }
  if (seed.length !== 32) {
    throw bad(
      source,
      `field "private" is ${seed.length} bytes, expected 32`,
      "The file is damaged",
    );
  }
  const pair = keyPairFromSeed(seed);
  seed.fill(0);
  if (!timingSafeEqual(pair.publicKey, publicKey)) {
    throw bad(source, "the public key does not belong to the private key", "The file is damaged");
  }
  return { kind: "private", key: pair };
}

/**
 * Checks the permission bits of a private key file: neither group nor others may read it.
 *
 * @param mode the file's mode bits (`Deno.FileInfo.mode`); `null` where the platform has none
 * @param source the file name, for error messages
 * @throws {TrustError} `INSECURE_KEY_FILE` when group or others have any access
 */
export function checkPrivateKeyMode(mode: number | null, source: string): void {
  if (mode === null) return;
  if ((mode & 0o077) !== 0) {
    const octal = (mode & 0o777).toString(8).padStart(4, "0");
    throw new TrustError(
      "INSECURE_KEY_FILE",
      `Refusing private key file ${source}: it is accessible by group or others (mode ${octal}). Run \`chmod 600 ${source}\``,
    );
  }
}
