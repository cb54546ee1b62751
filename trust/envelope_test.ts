import assert from "node:assert/strict";
import { generateKeyPair } from "./ed25519.ts";
import { decodeBase64Url, encodeBase64Url } from "./encoding.ts";
import {
  keyring,
  memoryNonceStore,
  type MessagePayload,
  signEnvelope,
  verifyEnvelope,
  type VerifyEnvelopeOptions,
} from "./envelope.ts";
import { TrustError, type TrustErrorCode } from "./error.ts";

const NOW = 1_800_000_000; // seconds
const key = generateKeyPair();
const other = generateKeyPair();

function payload(over: Partial<MessagePayload> = {}): MessagePayload {
  return {
    type: "request.create",
    tenant: "acme",
    aud: "infraveil-control",
    iat: NOW,
    exp: NOW + 60,
    nonce: crypto.randomUUID(),
    action: { agent: "deployer", action: "deploy" },
    ...over,
  };
}

function options(over: Partial<VerifyEnvelopeOptions> = {}): VerifyEnvelopeOptions {
  return {
    keys: keyring([key]),
    audience: "infraveil-control",
    tenant: "acme",
    now: () => NOW * 1000,
    checkNonce: memoryNonceStore({ now: () => NOW * 1000 }),
    ...over,
  };
}

async function rejects(input: unknown, code: TrustErrorCode, opts = options()): Promise<void> {
  await assert.rejects(verifyEnvelope(input, opts), (e: unknown) => {
    assert.ok(e instanceof TrustError, String(e));
    assert.equal(e.code, code, e.message);
    return true;
  });
}

Deno.test("verifyEnvelope() accepts a valid envelope and returns its payload", async () => {
  const p = payload();
  const out = await verifyEnvelope(signEnvelope(p, key), options());
  assert.deepEqual(out, p);
  // Also as JSON text.
  const p2 = payload();
  assert.deepEqual(await verifyEnvelope(JSON.stringify(signEnvelope(p2, key)), options()), p2);
});

Deno.test("verifyEnvelope() rejects a forged payload (field changed after signing)", async () => {
  const env = signEnvelope(payload(), key);
  await rejects({ ...env, payload: { ...env.payload, tenant: "evil" } }, "BAD_SIGNATURE");
  await rejects(
    { ...env, payload: { ...env.payload, action: { agent: "deployer", action: "delete" } } },
    "BAD_SIGNATURE",
  );
});

Deno.test("verifyEnvelope() rejects a signature by another key under our kid", async () => {
  const forged = signEnvelope(payload(), other);
  await rejects({ ...forged, kid: key.kid }, "BAD_SIGNATURE");
});

Deno.test("verifyEnvelope() rejects an unknown or revoked key id", async () => {
  await rejects(signEnvelope(payload(), other), "UNKNOWN_KEY");
  await rejects(signEnvelope(payload(), key), "UNKNOWN_KEY", options({ keys: keyring([]) }));
});

Deno.test("verifyEnvelope() rejects a replayed envelope", async () => {
  const opts = options();
  const env = signEnvelope(payload(), key);
  await verifyEnvelope(env, opts);
  await rejects(env, "REPLAYED", opts);
  // A re-signed copy with the same nonce is still a replay.
  await rejects(signEnvelope(env.payload, key), "REPLAYED", opts);
});

Deno.test("verifyEnvelope() rejects expired and not-yet-valid envelopes, honouring skew", async () => {
  await rejects(signEnvelope(payload({ iat: NOW - 200, exp: NOW - 31 }), key), "EXPIRED");
  await verifyEnvelope(signEnvelope(payload({ iat: NOW - 100, exp: NOW - 10 }), key), options());
  await rejects(signEnvelope(payload({ iat: NOW + 31, exp: NOW + 90 }), key), "NOT_YET_VALID");
  await verifyEnvelope(signEnvelope(payload({ iat: NOW + 20, exp: NOW + 80 }), key), options());
  await rejects(
    signEnvelope(payload({ iat: NOW - 10, exp: NOW + 5 }), key),
    "EXPIRED",
    options({ skewSeconds: 0, now: () => (NOW + 5) * 1000 }),
  );
});

Deno.test("verifyEnvelope() rejects lifetimes that are empty, negative or too long", async () => {
  await rejects(signEnvelope(payload({ exp: NOW }), key), "BAD_LIFETIME");
  await rejects(signEnvelope(payload({ exp: NOW - 1 }), key), "BAD_LIFETIME");
  await rejects(signEnvelope(payload({ exp: NOW + 301 }), key), "BAD_LIFETIME");
});

Deno.test("verifyEnvelope() rejects the wrong audience and the wrong tenant", async () => {
  await rejects(signEnvelope(payload({ aud: "infraveil-agent" }), key), "WRONG_AUDIENCE");
  await rejects(signEnvelope(payload({ tenant: "globex" }), key), "WRONG_TENANT");
});

Deno.test("verifyEnvelope() rejects truncated and malformed signatures", async () => {
  const env = signEnvelope(payload(), key);
  await rejects({ ...env, sig: env.sig.slice(0, -4) }, "BAD_SIGNATURE");
  await rejects(
    { ...env, sig: encodeBase64Url(decodeBase64Url(env.sig).subarray(0, 63)) },
    "BAD_SIGNATURE",
  );
  await rejects({ ...env, sig: "!!!" }, "BAD_SIGNATURE");
  await rejects({ ...env, sig: "" }, "BAD_SIGNATURE");
});

Deno.test("verifyEnvelope() rejects non-JSON and wrongly shaped messages", async () => {
  const env = signEnvelope(payload(), key);
  await rejects("not json", "MALFORMED");
  await rejects(JSON.stringify(env).slice(0, 40), "MALFORMED");
  await rejects(null, "MALFORMED");
  await rejects([env], "MALFORMED");
  await rejects({ ...env, payload: "x" }, "MALFORMED");
  await rejects({ ...env, kid: 5 }, "MALFORMED");
  await rejects({ ...env, extra: 1 }, "MALFORMED");
  // Signed but missing a claim: rejected after the signature, never trusted.
  const { nonce: _n, ...noNonce } = payload();
  await rejects(signEnvelope(noNonce as MessagePayload, key), "MALFORMED");
  await rejects(signEnvelope(payload({ iat: 1.5 }), key), "MALFORMED");
});

Deno.test("verifyEnvelope() checks the signature before audience, tenant, time and nonce", async () => {
  let nonceCalls = 0;
  const opts = options({ checkNonce: () => (nonceCalls++, true) });
  const env = signEnvelope(
    payload({ aud: "x", tenant: "y", exp: NOW - 1000, iat: NOW - 1100 }),
    key,
  );
  await rejects({ ...env, sig: signEnvelope(payload(), key).sig }, "BAD_SIGNATURE", opts);
  assert.equal(nonceCalls, 0);
});

Deno.test("memoryNonceStore() forgets nonces only after their message expired", () => {
  let t = NOW * 1000;
  const check = memoryNonceStore({ now: () => t, skewSeconds: 30 });
  assert.equal(check("a", NOW + 60), true);
  assert.equal(check("a", NOW + 60), false);
  t = (NOW + 80) * 1000;
  assert.equal(check("a", NOW + 60), false);
  t = (NOW + 200) * 1000;
  assert.equal(check("a", NOW + 60), true);
});
