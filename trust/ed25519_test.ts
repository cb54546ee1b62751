import assert from "node:assert/strict";
import fc from "fast-check";
import { ed25519 } from "@noble/curves/ed25519.js";
import {
  generateKeyPair,
  isValidEd25519PublicKey,
  signEd25519,
  verifyEd25519,
  verifyEd25519Async,
} from "./ed25519.ts";

const pair = generateKeyPair();
const msg = new TextEncoder().encode("infraveil");
const sig = signEd25519(pair.privateKey, msg);

Deno.test("verifyEd25519() and verifyEd25519Async() agree on mutated signatures and keys (property)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: 63 }),
      fc.integer({ min: 1, max: 255 }),
      fc.boolean(),
      async (pos, xor, inKey) => {
        const s = sig.slice();
        const k = pair.publicKey.slice();
        if (inKey) k[pos % 32] ^= xor;
        else s[pos] ^= xor;
        const sync = verifyEd25519(k, msg, s);
        assert.equal(await verifyEd25519Async(k, msg, s), sync);
        assert.equal(sync, false);
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("verifyEd25519Async() rejects S + L (malleability) and non-canonical encodings", async () => {
  // S + L: same point equation, non-canonical scalar.
  const L = (1n << 252n) + 27742317777372353535851937790883648493n;
  let s = 0n;
  for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(sig[i]);
  let sl = s + L;
  const mall = sig.slice();
  for (let i = 32; i < 64; i++) {
    mall[i] = Number(sl & 0xffn);
    sl >>= 8n;
  }
  assert.equal(verifyEd25519(pair.publicKey, msg, mall), false);
  assert.equal(await verifyEd25519Async(pair.publicKey, msg, mall), false);
  // A non-canonical public key encoding (y = p + 1 encodes the same y as 1).
  const nonCanonical = new Uint8Array(32).fill(0xff);
  nonCanonical[0] = 0xee;
  nonCanonical[31] = 0x7f;
  assert.equal(await verifyEd25519Async(nonCanonical, msg, sig), false);
  assert.equal(verifyEd25519(nonCanonical, msg, sig), false);
  // Sanity: the unmodified signature verifies both ways and noble agrees.
  assert.equal(await verifyEd25519Async(pair.publicKey, msg, sig), true);
  assert.equal(ed25519.verify(sig, msg, pair.publicKey, { zip215: false }), true);
});

Deno.test("verifyEd25519Async() never rejects on wrong types or lengths", async () => {
  for (
    const [k, m, s] of [
      [pair.publicKey.subarray(0, 31), msg, sig],
      [pair.publicKey, msg, sig.subarray(0, 63)],
      ["x", msg, sig],
      [pair.publicKey, "m", sig],
    ] as [Uint8Array, Uint8Array, Uint8Array][]
  ) {
    assert.equal(await verifyEd25519Async(k, m, s), false);
  }
});

Deno.test("both verifiers refuse small-order public keys, which would let anyone forge", async () => {
  // The identity point (y = 1) with R = identity and S = 0 satisfies the equation for any
  // message; so does the order-2 point (y = -1). Neither key may verify anything.
  const identity = new Uint8Array(32);
  identity[0] = 1;
  const order2 = new Uint8Array(32).fill(0xff);
  order2[0] = 0xec;
  order2[31] = 0x7f;
  // x = 0 with the sign bit set: a non-canonical encoding of the identity.
  const negativeZero = identity.slice();
  negativeZero[31] |= 0x80;
  for (const key of [identity, order2, negativeZero]) {
    const forged = new Uint8Array(64);
    forged.set(identity, 0);
    for (const m of [msg, new Uint8Array(0), new TextEncoder().encode("other")]) {
      assert.equal(verifyEd25519(key, m, forged), false);
      assert.equal(await verifyEd25519Async(key, m, forged), false);
    }
  }
});

Deno.test("isValidEd25519PublicKey() accepts real keys and refuses small-order or bad encodings", () => {
  assert.equal(isValidEd25519PublicKey(pair.publicKey), true);
  const identity = new Uint8Array(32);
  identity[0] = 1;
  const nonCanonical = new Uint8Array(32).fill(0xff);
  nonCanonical[0] = 0xee;
  nonCanonical[31] = 0x7f;
  for (const bad of [identity, nonCanonical, new Uint8Array(31), new Uint8Array(32).fill(0xff)]) {
    assert.equal(isValidEd25519PublicKey(bad), false);
  }
});

Deno.test("isValidEd25519PublicKey() refuses mixed-order keys (a torsion component added)", async () => {
  // A point of order 8; A + T8 is on the curve, not of small order, but not in the subgroup.
  const t8 = ed25519.Point.fromHex(
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
  );
  assert.ok(!t8.double().double().is0() && t8.double().double().double().is0());
  for (let i = 0; i < 4; i++) {
    const honest = generateKeyPair();
    const a = ed25519.Point.fromBytes(honest.publicKey);
    assert.equal(isValidEd25519PublicKey(honest.publicKey), true);
    const mixed = a.add(t8).toBytes();
    assert.equal(isValidEd25519PublicKey(mixed), false);
    // Nothing verifies asynchronously under such a key, whatever the signature.
    const msg = new TextEncoder().encode(`m${i}`);
    assert.equal(await verifyEd25519Async(mixed, msg, signEd25519(honest.privateKey, msg)), false);
  }
});
