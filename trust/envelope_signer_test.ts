import assert from "node:assert/strict";
import fc from "fast-check";
import {
  createEnvelopeSigner,
  generateKeyPair,
  keyPairFromSeed,
  signEnvelope,
  verifyEnvelope,
} from "./mod.ts";

Deno.test("createEnvelopeSigner() produces exactly signEnvelope()'s signatures", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      fc.string(),
      fc.dictionary(
        fc.string(),
        fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null)),
      ),
      async (seed, nonce, extra) => {
        const key = keyPairFromSeed(seed);
        const payload = {
          ...extra,
          type: "t",
          tenant: "acme",
          aud: "a",
          iat: 1,
          exp: 2,
          nonce: nonce || "n",
        };
        const signer = await createEnvelopeSigner(key);
        assert.deepEqual(await signer.sign(payload), signEnvelope(payload, key));
      },
    ),
    { numRuns: 50 },
  );
});

Deno.test("createEnvelopeSigner() output verifies with the strict verifier", async () => {
  const key = generateKeyPair();
  const signer = await createEnvelopeSigner(key);
  const env = await signer.sign({
    type: "t",
    tenant: "acme",
    aud: "a",
    iat: 100,
    exp: 160,
    nonce: "n",
  });
  const p = await verifyEnvelope(env, {
    keys: (kid) => (kid === key.kid ? key.publicKey : undefined),
    audience: "a",
    tenant: "acme",
    now: () => 120_000,
    checkNonce: () => true,
  });
  assert.equal(p.nonce, "n");
});
