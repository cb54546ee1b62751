/**
 * DSSE (Dead Simple Signing Envelope) v1 with Ed25519: the pre-authentication encoding,
 * signing and verification. Used for release attestations (in-toto Statements).
 *
 * @module
 */
import { decodeBase64, encodeBase64, utf8 } from "./encoding.ts";
import { type Ed25519KeyPair, signEd25519, verifyEd25519Async } from "./ed25519.ts";
import { TrustError } from "./error.ts";
import type { KeyResolver } from "./envelope.ts";

/** A DSSE envelope. `payload` and `sig` are standard base64. */
export interface DsseEnvelope {
  /** The payload's media type, e.g. `application/vnd.in-toto+json`. */
  payloadType: string;
  /** base64 payload bytes. */
  payload: string;
  /** One or more signatures. */
  signatures: { keyid: string; sig: string }[];
}

/**
 * DSSE's pre-authentication encoding:
 * `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII decimal bytes.
 *
 * @param payloadType the payload type
 * @param payload the payload bytes
 * @returns the bytes that are signed
 * @example
 * ```ts
 * import { pae } from "@infraveil/trust";
 * const out = new TextDecoder().decode(
 *   pae("http://example.com/HelloWorld", new TextEncoder().encode("hello world")),
 * );
 * if (out !== "DSSEv1 29 http://example.com/HelloWorld 11 hello world") throw new Error();
 * ```
 */
export function pae(payloadType: string, payload: Uint8Array): Uint8Array {
  const type = utf8(payloadType);
  const head = utf8(`DSSEv1 ${type.length} `);
  const mid = utf8(` ${payload.length} `);
  const out = new Uint8Array(head.length + type.length + mid.length + payload.length);
  out.set(head, 0);
  out.set(type, head.length);
  out.set(mid, head.length + type.length);
  out.set(payload, head.length + type.length + mid.length);
  return out;
}

/**
 * Signs a payload into a DSSE envelope.
 *
 * @param payloadType the payload type
 * @param payload the payload bytes
 * @param key the signing key pair; its `kid` becomes the signature's `keyid`
 * @returns the envelope
 */
export function signDsse(
  payloadType: string,
  payload: Uint8Array,
  key: Pick<Ed25519KeyPair, "kid" | "privateKey">,
): DsseEnvelope {
  const sig = signEd25519(key.privateKey, pae(payloadType, payload));
  return {
    payloadType,
    payload: encodeBase64(payload),
    signatures: [{ keyid: key.kid, sig: encodeBase64(sig) }],
  };
}

/** A verified DSSE payload. */
export interface VerifiedDsse {
  /** The payload type. */
  payloadType: string;
  /** The payload bytes. */
  payload: Uint8Array;
  /** Id of the key whose signature verified. */
  keyid: string;
}

/**
 * Verifies a DSSE envelope: at least one signature by a trusted key must verify.
 *
 * @param input the envelope (parsed JSON or text)
 * @param options trusted keys, and the payload type that must be present
 * @returns the payload and the verifying key id
 * @throws {TrustError} `MALFORMED`, `WRONG_PAYLOAD_TYPE`, `UNKNOWN_KEY` (no signature by a
 *   trusted key) or `BAD_SIGNATURE` (a trusted key's signature does not verify)
 */
export async function verifyDsse(
  input: unknown,
  options: { keys: KeyResolver; payloadType?: string },
): Promise<VerifiedDsse> {
  let value = input;
  if (typeof value === "string") {
    try {
      value = JSON.parse(value);
    } catch (cause) {
      throw new TrustError("MALFORMED", "DSSE envelope is not JSON", { cause });
    }
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TrustError("MALFORMED", "DSSE envelope must be an object");
  }
  const env = value as Record<string, unknown>;
  if (typeof env.payloadType !== "string") {
    throw new TrustError("MALFORMED", `DSSE field "payloadType" must be a string`);
  }
  if (typeof env.payload !== "string") {
    throw new TrustError("MALFORMED", `DSSE field "payload" must be a base64 string`);
  }
  if (!Array.isArray(env.signatures) || env.signatures.length === 0) {
    throw new TrustError("MALFORMED", `DSSE field "signatures" must be a non-empty array`);
  }
  let payload: Uint8Array;
  try {
    payload = decodeBase64(env.payload);
  } catch (cause) {
    throw new TrustError("MALFORMED", `DSSE field "payload" is not base64`, { cause });
  }
  if (options.payloadType !== undefined && env.payloadType !== options.payloadType) {
    throw new TrustError(
      "WRONG_PAYLOAD_TYPE",
      `DSSE payload type is "${env.payloadType}", expected "${options.payloadType}"`,
    );
  }
  const message = pae(env.payloadType, payload);
  let trusted = 0;
  for (const [i, s] of env.signatures.entries()) {
    if (typeof s !== "object" || s === null || typeof s.sig !== "string") {
      throw new TrustError("MALFORMED", `DSSE signatures[${i}] must be {keyid, sig}`);
    }
    const keyid = typeof s.keyid === "string" ? s.keyid : "";
    const publicKey = await options.keys(keyid);
    if (!publicKey) continue;
    trusted++;
    let sig: Uint8Array;
    try {
      sig = decodeBase64(s.sig);
    } catch {
      continue;
    }
    if (await verifyEd25519Async(publicKey, message, sig)) {
      return { payloadType: env.payloadType, payload, keyid };
    }
  }
  if (trusted === 0) {
    throw new TrustError("UNKNOWN_KEY", "DSSE envelope has no signature by a trusted key");
  }
  throw new TrustError("BAD_SIGNATURE", "DSSE signature does not verify");
}
