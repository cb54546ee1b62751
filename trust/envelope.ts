/**
 * Signed messages between the MCP server, agents and the control plane.
 *
 * An envelope is `{payload, kid, sig}`; `sig` is Ed25519 over
 * `"infraveil-msg/v1\n" + JCS(payload)`. The payload carries `type`, `tenant`, `aud`, `iat`,
 * `exp` (Unix seconds) and `nonce`. A receiver checks, in this order and before it looks at
 * anything else: shape, key id, signature, audience, tenant, time window, nonce (replay).
 *
 * @module
 */
import { canonicalJson } from "./canonical.ts";
import { Buffer } from "node:buffer";
import { createPrivateKey, type KeyObject, sign as nodeSign } from "node:crypto";
import { concatBytes, decodeBase64Url, encodeBase64Url, utf8 } from "./encoding.ts";
import { type Ed25519KeyPair, signEd25519, verifyEd25519Async } from "./ed25519.ts";
import { TrustError } from "./error.ts";

/** The domain-separation prefix of every signed message. */
export const MESSAGE_CONTEXT = "infraveil-msg/v1\n";

/** The fields every signed payload carries. */
export interface MessageClaims {
  /** What the message is, e.g. `"request.create"`. */
  type: string;
  /** The tenant the message belongs to. */
  tenant: string;
  /** Who the message is for, e.g. `"infraveil-control"`. */
  aud: string;
  /** Issued at, Unix seconds. */
  iat: number;
  /** Expires at, Unix seconds. */
  exp: number;
  /** Single-use random value for replay protection. */
  nonce: string;
}

/** A payload: the claims plus the message's own fields. */
export type MessagePayload = MessageClaims & { [field: string]: unknown };

/** A signed envelope. */
export interface SignedEnvelope<P extends MessagePayload = MessagePayload> {
  /** The signed payload. */
  payload: P;
  /** Id of the signing key. */
  kid: string;
  /** base64url Ed25519 signature. */
  sig: string;
}

/** Resolves a key id to a public key, or nothing when the id is unknown or revoked. */
export type KeyResolver = (
  kid: string,
) => Uint8Array | undefined | Promise<Uint8Array | undefined>;

function signingInput(payload: unknown): Uint8Array {
  return utf8(MESSAGE_CONTEXT + canonicalJson(payload));
}

/**
 * Signs a payload.
 *
 * @param payload the payload, with its claims
 * @param key the signing key pair
 * @returns the envelope
 * @throws {TrustError} `NOT_CANONICAL` when the payload is not plain JSON
 * @example
 * ```ts
 * import { generateKeyPair, signEnvelope, verifyEnvelope } from "@infraveil/trust";
 * const key = generateKeyPair();
 * const now = 1_800_000_000;
 * const env = signEnvelope({
 *   type: "ping", tenant: "acme", aud: "control", iat: now, exp: now + 60, nonce: "n1",
 * }, key);
 * const seen = new Set<string>();
 * const payload = await verifyEnvelope(env, {
 *   keys: (kid) => (kid === key.kid ? key.publicKey : undefined),
 *   audience: "control", tenant: "acme", now: () => now * 1000,
 *   checkNonce: (n) => !seen.has(n) && !!seen.add(n),
 * });
 * if (payload.type !== "ping") throw new Error();
 * ```
 */
export function signEnvelope<P extends MessagePayload>(
  payload: P,
  key: Pick<Ed25519KeyPair, "kid" | "privateKey">,
): SignedEnvelope<P> {
  const sig = signEd25519(key.privateKey, signingInput(payload));
  return { payload, kid: key.kid, sig: encodeBase64Url(sig) };
}

/** Signs envelopes with one key through the platform's native Ed25519 (for hot paths). */
export interface EnvelopeSigner {
  /** The key id. */
  readonly kid: string;
  /** The raw public key. */
  readonly publicKey: Uint8Array;
  /** Signs a payload into an envelope. */
  sign<P extends MessagePayload>(payload: P): Promise<SignedEnvelope<P>>;
}

// PKCS#8 wrapping of a raw Ed25519 seed (RFC 8410).
const PKCS8_ED25519_PREFIX = Uint8Array.from([
  0x30,
  0x2e,
  0x02,
  0x01,
  0x00,
  0x30,
  0x05,
  0x06,
  0x03,
  0x2b,
  0x65,
  0x70,
  0x04,
  0x22,
  0x04,
  0x20,
]);

/**
 * Builds a signer over one key through the platform's native Ed25519 (`node:crypto`): the
 * seed is imported once into a key object that only the signer holds. Ed25519 is
 * deterministic (RFC 8032), so it produces exactly the envelopes {@link signEnvelope} does,
 * several times faster.
 *
 * @param key the key pair
 * @returns the signer
 * @throws {TrustError} `NOT_CANONICAL` from `sign` when a payload is not plain JSON
 * @example
 * ```ts
 * import { createEnvelopeSigner, generateKeyPair, signEnvelope } from "@infraveil/trust";
 * const key = generateKeyPair();
 * const payload = { type: "t", tenant: "acme", aud: "a", iat: 1, exp: 2, nonce: "n" };
 * const env = await (await createEnvelopeSigner(key)).sign(payload);
 * if (env.sig !== signEnvelope(payload, key).sig) throw new Error();
 * ```
 */
export function createEnvelopeSigner(key: Ed25519KeyPair): Promise<EnvelopeSigner> {
  // Only the seed goes in (PKCS#8, RFC 8410): the platform derives the public key from it.
  const der = concatBytes(PKCS8_ED25519_PREFIX, key.privateKey);
  let privateKey: KeyObject;
  try {
    // A view over `der` (no copy), so zeroing `der` below clears it too.
    const view = Buffer.from(der.buffer, der.byteOffset, der.length);
    privateKey = createPrivateKey({ key: view, format: "der", type: "pkcs8" });
  } catch (cause) {
    return Promise.reject(new TrustError("BAD_KEY", "Not an Ed25519 private key", { cause }));
  } finally {
    der.fill(0);
  }
  return Promise.resolve({
    kid: key.kid,
    publicKey: key.publicKey,
    sign<P extends MessagePayload>(payload: P): Promise<SignedEnvelope<P>> {
      try {
        const sig = nodeSign(null, signingInput(payload), privateKey);
        return Promise.resolve({ payload, kid: key.kid, sig: encodeBase64Url(sig) });
      } catch (e) {
        return Promise.reject(e);
      }
    },
  });
}

/** What a receiver accepts. */
export interface VerifyEnvelopeOptions {
  /** Public keys the receiver trusts, by id. */
  keys: KeyResolver;
  /** The receiver's own name; `aud` must equal it. */
  audience: string;
  /** The tenant the message must belong to; omit only where the tenant is found from the key. */
  tenant?: string;
  /** Current time in milliseconds (default `Date.now`). */
  now?: () => number;
  /** Allowed clock difference, seconds (default 30). */
  skewSeconds?: number;
  /** Longest accepted `exp - iat`, seconds (default 300). */
  maxLifetimeSeconds?: number;
  /**
   * Records a nonce and says whether it was fresh: return false when it was seen before.
   * Called only after every other check passed; `exp` lets the store forget it later.
   */
  checkNonce: (nonce: string, exp: number) => boolean | Promise<boolean>;
}

/**
 * Verifies an envelope and returns its payload. Accepts the envelope as parsed JSON or text.
 *
 * @param input the envelope (object or JSON text)
 * @param options the receiver's keys, name, tenant, clock and nonce store
 * @returns the verified payload
 * @throws {TrustError} with the code of the first failed check: `MALFORMED`, `UNKNOWN_KEY`,
 *   `BAD_SIGNATURE`, `WRONG_AUDIENCE`, `WRONG_TENANT`, `BAD_LIFETIME`, `NOT_YET_VALID`,
 *   `EXPIRED`, `REPLAYED`
 */
export async function verifyEnvelope(
  input: unknown,
  options: VerifyEnvelopeOptions,
): Promise<MessagePayload> {
  const { keys, audience, tenant, now = Date.now, skewSeconds = 30, maxLifetimeSeconds = 300 } =
    options;
  let value = input;
  if (typeof value === "string") {
    try {
      value = JSON.parse(value);
    } catch (cause) {
      throw new TrustError("MALFORMED", "Message is not JSON", { cause });
    }
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TrustError("MALFORMED", "Message must be an object {payload, kid, sig}");
  }
  const env = value as Record<string, unknown>;
  for (const field of Object.keys(env)) {
    if (field !== "payload" && field !== "kid" && field !== "sig") {
      throw new TrustError("MALFORMED", `Message has unknown field "${field}"`);
    }
  }
  const { payload, kid, sig } = env;
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) {
    throw new TrustError("MALFORMED", `Message field "payload" must be an object`);
  }
  if (typeof kid !== "string" || kid === "") {
    throw new TrustError("MALFORMED", `Message field "kid" must be a non-empty string`);
  }
  if (typeof sig !== "string") {
    throw new TrustError("MALFORMED", `Message field "sig" must be a string`);
  }

  const publicKey = await keys(kid);
  if (!publicKey) {
    throw new TrustError("UNKNOWN_KEY", `Message signed by unknown or revoked key ${kid}`);
  }

  let sigBytes: Uint8Array;
  try {
    sigBytes = decodeBase64Url(sig);
  } catch {
    throw new TrustError("BAD_SIGNATURE", "Message signature is not base64url");
  }
  let message: Uint8Array;
  try {
    message = signingInput(payload);
  } catch (cause) {
    throw new TrustError("MALFORMED", "Message payload is not canonical JSON", { cause });
  }
  if (!(await verifyEd25519Async(publicKey, message, sigBytes))) {
    throw new TrustError("BAD_SIGNATURE", `Message signature does not verify with key ${kid}`);
  }

  // Only now is the payload trusted enough to read.
  const p = payload as Record<string, unknown>;
  for (const field of ["type", "tenant", "aud", "nonce"] as const) {
    if (typeof p[field] !== "string" || p[field] === "") {
      throw new TrustError(
        "MALFORMED",
        `Message payload field "${field}" must be a non-empty string`,
      );
    }
  }
  for (const field of ["iat", "exp"] as const) {
    if (!Number.isSafeInteger(p[field])) {
      throw new TrustError(
        "MALFORMED",
        `Message payload field "${field}" must be an integer (Unix seconds)`,
      );
    }
  }
  const claims = p as MessagePayload;
  if (claims.aud !== audience) {
    throw new TrustError(
      "WRONG_AUDIENCE",
      `Message is addressed to "${claims.aud}", not to "${audience}"`,
    );
  }
  if (tenant !== undefined && claims.tenant !== tenant) {
    throw new TrustError(
      "WRONG_TENANT",
      `Message belongs to tenant "${claims.tenant}", not "${tenant}"`,
    );
  }
  if (claims.exp <= claims.iat || claims.exp - claims.iat > maxLifetimeSeconds) {
    throw new TrustError(
      "BAD_LIFETIME",
      `Message lifetime exp-iat = ${
        claims.exp - claims.iat
      }s must be in (0, ${maxLifetimeSeconds}]`,
    );
  }
  const nowSeconds = Math.floor(now() / 1000);
  if (claims.iat > nowSeconds + skewSeconds) {
    throw new TrustError(
      "NOT_YET_VALID",
      `Message issued at ${claims.iat}, in the future (now ${nowSeconds}, skew ${skewSeconds}s)`,
    );
  }
  if (claims.exp + skewSeconds <= nowSeconds) {
    throw new TrustError(
      "EXPIRED",
      `Message expired at ${claims.exp} (now ${nowSeconds}, skew ${skewSeconds}s)`,
    );
  }
  if (!(await options.checkNonce(claims.nonce, claims.exp))) {
    throw new TrustError("REPLAYED", `Message nonce ${claims.nonce} was already used`);
  }
  return claims;
}

/**
 * An in-memory nonce store for `checkNonce`: remembers each nonce until its message expires
 * (plus skew) and refuses a second use. Suitable for one process; a shared store belongs in
 * the database.
 *
 * @param options clock (ms) and skew (seconds) matching the verifier's
 * @returns a `checkNonce` function
 */
export function memoryNonceStore(
  options: { now?: () => number; skewSeconds?: number } = {},
): (nonce: string, exp: number) => boolean {
  const { now = Date.now, skewSeconds = 30 } = options;
  const seen = new Map<string, number>();
  let sweepAt = 0;
  return (nonce, exp) => {
    const t = Math.floor(now() / 1000);
    if (t >= sweepAt) {
      for (const [n, e] of seen) if (e + skewSeconds < t) seen.delete(n);
      sweepAt = t + 60;
    }
    if (seen.has(nonce)) return false;
    seen.set(nonce, exp);
    return true;
  };
}

/**
 * A key resolver over a fixed list of public keys.
 *
 * @param keys the trusted keys
 * @returns a resolver returning the key with a matching id
 */
export function keyring(
  keys: Iterable<{ kid: string; publicKey: Uint8Array }>,
): (kid: string) => Uint8Array | undefined {
  const map = new Map<string, Uint8Array>();
  for (const k of keys) map.set(k.kid, k.publicKey);
  return (kid) => map.get(kid);
}
