/**
 * Trust primitives for every infraveil member: Ed25519 keys and key files, strict RFC 8032
 * verification, SHA-256, HMAC-SHA256, AES-256-GCM, canonical JSON (RFC 8785), signed message
 * envelopes, DSSE and the minisign formats.
 *
 * This package must never weaken a check for convenience: every verifier fails closed and
 * reports which check failed through {@link TrustError}'s `code`.
 *
 * @example
 * ```ts
 * import { generateKeyPair, signDsse, verifyDsse, keyring } from "@infraveil/trust";
 * const key = generateKeyPair();
 * const env = signDsse("text/plain", new TextEncoder().encode("hi"), key);
 * const out = await verifyDsse(env, { keys: keyring([key]), payloadType: "text/plain" });
 * if (out.keyid !== key.kid) throw new Error();
 * ```
 *
 * @module
 */
export * from "./error.ts";
export * from "./encoding.ts";
export * from "./hash.ts";
export * from "./ed25519.ts";
export * from "./aes_gcm.ts";
export * from "./canonical.ts";
export * from "./key_file.ts";
export * from "./envelope.ts";
export * from "./dsse.ts";
export * from "./minisign.ts";
