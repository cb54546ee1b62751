/**
 * Release public keys given on the command line or in the launcher config, in any of the three
 * forms we publish: an infraveil key file, a minisign public key (string or `.pub` file), or the
 * raw 32-byte key in base64. The form is recognised from the text; nothing is guessed: a string
 * must decode to exactly 32 bytes (raw) or 42 bytes starting "Ed" (minisign).
 *
 * @module
 */
import {
  decodeBase64,
  decodeBase64Url,
  type Ed25519PublicKey,
  keyId,
  parseKeyFile,
  parseMinisignPublicKey,
} from "@infraveil/trust";
import { AgentError } from "./error.ts";

/** Which form a key was given in. */
export type PublicKeyForm = "key-file" | "minisign" | "raw";

/** A public key and the form it was read from. */
export interface LoadedPublicKey extends Ed25519PublicKey {
  /** The form it was given in. */
  readonly form: PublicKeyForm;
  /** True when read from a private key file (whose permissions the caller must check). */
  readonly fromPrivateFile?: boolean;
}

const KID = /^[0-9a-f]{16}$/;

/**
 * Whether a string is a key id (16 lowercase hex characters).
 *
 * @param text the candidate
 * @returns whether it is a key id
 */
export function isKeyId(text: string): boolean {
  return KID.test(text);
}

function decodeEither(text: string): Uint8Array | null {
  for (const decode of [decodeBase64, decodeBase64Url]) {
    try {
      return decode(text);
    } catch {
      // try the other alphabet
    }
  }
  return null;
}

/**
 * Parses a key given as a string: base64 (or base64url) of the raw 32-byte key, or a minisign
 * public key string.
 *
 * @param text the string
 * @returns the key, or null when the string is neither
 */
export function parsePublicKeyString(text: string): LoadedPublicKey | null {
  const trimmed = text.trim();
  const raw = decodeEither(trimmed);
  if (raw?.length === 32) return { kid: keyId(raw), publicKey: raw, form: "raw" };
  if (raw?.length === 42) {
    try {
      const { publicKey } = parseMinisignPublicKey(trimmed);
      return { kid: keyId(publicKey), publicKey, form: "minisign" };
    } catch {
      return null;
    }
  }
  return null;
}

/**
 * Parses the text of a key file: an infraveil key file (public or private; only the public key
 * is kept) or a minisign `.pub` file.
 *
 * @param text the file's contents
 * @param source the file name, for messages
 * @returns the public key
 * @throws {AgentError} `BAD_INPUT` when the file is neither
 */
export function parsePublicKeyFileText(text: string, source: string): LoadedPublicKey {
  if (text.trimStart().startsWith("{")) {
    try {
      const parsed = parseKeyFile(text, source);
      const { kid, publicKey } = parsed.key;
      return parsed.kind === "private"
        ? { kid, publicKey, form: "key-file", fromPrivateFile: true }
        : { kid, publicKey, form: "key-file" };
    } catch (cause) {
      throw new AgentError("BAD_INPUT", (cause as Error).message, { cause });
    }
  }
  try {
    const { publicKey } = parseMinisignPublicKey(text);
    return { kid: keyId(publicKey), publicKey, form: "minisign" };
  } catch (cause) {
    throw new AgentError(
      "BAD_INPUT",
      `Cannot load public key file ${source}: it is neither an infraveil key file nor a minisign public key`,
      { cause },
    );
  }
}
