/**
 * AES-256-GCM with a 96-bit IV and a 128-bit tag, through WebCrypto. Any other key, IV or tag
 * size is refused rather than supported half-way.
 *
 * @module
 */
import { TrustError } from "./error.ts";

/** Bytes in an AES-256 key. */
export const AES_KEY_BYTES = 32;
/** Bytes in the IV; the only length accepted. */
export const AES_GCM_IV_BYTES = 12;
/** Bytes in the authentication tag appended to the ciphertext. */
export const AES_GCM_TAG_BYTES = 16;

async function importKey(key: Uint8Array | CryptoKey): Promise<CryptoKey> {
  if (key instanceof CryptoKey) return key;
  if (!(key instanceof Uint8Array) || key.length !== AES_KEY_BYTES) {
    throw new TrustError(
      "BAD_KEY",
      `An AES-256-GCM key must be ${AES_KEY_BYTES} bytes, got ${
        key instanceof Uint8Array ? key.length : typeof key
      }`,
    );
  }
  return await crypto.subtle.importKey("raw", key as Uint8Array<ArrayBuffer>, "AES-GCM", false, [
    "encrypt",
    "decrypt",
  ]);
}

function checkIv(iv: Uint8Array): void {
  if (!(iv instanceof Uint8Array) || iv.length !== AES_GCM_IV_BYTES) {
    throw new TrustError(
      "BAD_IV",
      `AES-GCM needs a ${AES_GCM_IV_BYTES}-byte (96-bit) IV, got ${
        iv instanceof Uint8Array ? iv.length : typeof iv
      } bytes`,
    );
  }
}

/** Options for AES-GCM. */
export interface AesGcmOptions {
  /** Additional authenticated data. */
  aad?: Uint8Array;
}

/**
 * Encrypts with AES-256-GCM.
 *
 * @param key a 32-byte key or an imported AES-GCM `CryptoKey`
 * @param iv the 12-byte IV; never reuse one under the same key
 * @param plaintext the bytes to encrypt
 * @param options additional authenticated data
 * @returns ciphertext followed by the 16-byte tag
 * @throws {TrustError} `BAD_KEY` or `BAD_IV` on wrong sizes
 */
export async function encryptAesGcm(
  key: Uint8Array | CryptoKey,
  iv: Uint8Array,
  plaintext: Uint8Array,
  options: AesGcmOptions = {},
): Promise<Uint8Array> {
  checkIv(iv);
  const k = await importKey(key);
  const params: AesGcmParams = {
    name: "AES-GCM",
    iv: iv as Uint8Array<ArrayBuffer>,
    tagLength: 128,
  };
  if (options.aad) params.additionalData = options.aad as Uint8Array<ArrayBuffer>;
  return new Uint8Array(
    await crypto.subtle.encrypt(params, k, plaintext as Uint8Array<ArrayBuffer>),
  );
}

/**
 * Decrypts and authenticates AES-256-GCM.
 *
 * @param key a 32-byte key or an imported AES-GCM `CryptoKey`
 * @param iv the 12-byte IV
 * @param ciphertext ciphertext followed by the 16-byte tag
 * @param options additional authenticated data
 * @returns the plaintext
 * @throws {TrustError} `DECRYPT_FAILED` when the tag does not verify (wrong key, modified
 *   ciphertext, IV or AAD); `BAD_KEY` or `BAD_IV` on wrong sizes
 */
export async function decryptAesGcm(
  key: Uint8Array | CryptoKey,
  iv: Uint8Array,
  ciphertext: Uint8Array,
  options: AesGcmOptions = {},
): Promise<Uint8Array> {
  checkIv(iv);
  const k = await importKey(key);
  if (!(ciphertext instanceof Uint8Array) || ciphertext.length < AES_GCM_TAG_BYTES) {
    throw new TrustError("DECRYPT_FAILED", "Ciphertext is shorter than the authentication tag");
  }
  const params: AesGcmParams = {
    name: "AES-GCM",
    iv: iv as Uint8Array<ArrayBuffer>,
    tagLength: 128,
  };
  if (options.aad) params.additionalData = options.aad as Uint8Array<ArrayBuffer>;
  try {
    return new Uint8Array(
      await crypto.subtle.decrypt(params, k, ciphertext as Uint8Array<ArrayBuffer>),
    );
  } catch (cause) {
    throw new TrustError(
      "DECRYPT_FAILED",
      "Cannot decrypt: wrong key or modified ciphertext, IV or associated data",
      { cause },
    );
  }
}
