// Every Wycheproof case for the primitives this package wraps.
import assert from "node:assert/strict";
import { sharedPath } from "../tests/_harness.ts";
import { decryptAesGcm, encryptAesGcm } from "./aes_gcm.ts";
import { decodeHex } from "./encoding.ts";
import { verifyEd25519, verifyEd25519Async } from "./ed25519.ts";
import { TrustError } from "./error.ts";
import { hmacSha256, verifyHmacSha256 } from "./hash.ts";

interface Case {
  tcId: number;
  comment: string;
  result: "valid" | "invalid" | "acceptable";
  [k: string]: unknown;
}
interface Group {
  tests: Case[];
  [k: string]: unknown;
}

function load(name: string): Group[] | undefined {
  const path = sharedPath(`vectors/wycheproof/${name}`);
  return path ? JSON.parse(Deno.readTextFileSync(path)).testGroups : undefined;
}

const ed = load("ed25519_test.json");
Deno.test({
  name: "verifyEd25519() accepts every valid and rejects every invalid Wycheproof case",
  ignore: !ed,
  fn() {
    let n = 0;
    for (const g of ed!) {
      const pk = decodeHex((g.publicKey as { pk: string }).pk);
      for (const t of g.tests) {
        const ok = verifyEd25519(pk, decodeHex(t.msg as string), decodeHex(t.sig as string));
        // Strict RFC 8032: "acceptable" (none in this file) would be rejected like "invalid".
        assert.equal(ok, t.result === "valid", `tcId ${t.tcId}: ${t.comment}`);
        n++;
      }
    }
    assert.equal(n, 151);
  },
});

const gcm = load("aes_gcm_test.json");
Deno.test({
  name: "AES-256-GCM with 96-bit IVs passes every Wycheproof case; other sizes are refused",
  ignore: !gcm,
  async fn() {
    let inProfile = 0;
    let refused = 0;
    for (const g of gcm!) {
      for (const t of g.tests) {
        const key = decodeHex(t.key as string);
        const iv = decodeHex(t.iv as string);
        const aad = decodeHex(t.aad as string);
        const msg = decodeHex(t.msg as string);
        const sealed = new Uint8Array([
          ...decodeHex(t.ct as string),
          ...decodeHex(t.tag as string),
        ]);
        const label = `tcId ${t.tcId}: ${t.comment}`;
        if (g.keySize !== 256 || g.ivSize !== 96) {
          // Out of profile: this package offers AES-256 with a 96-bit IV only, and says so.
          const code = g.keySize !== 256 && g.ivSize === 96 ? "BAD_KEY" : "BAD_IV";
          await assert.rejects(decryptAesGcm(key, iv, sealed, { aad }), (e: unknown) => {
            assert.ok(e instanceof TrustError, label);
            assert.equal(e.code, code, label);
            return true;
          });
          refused++;
          continue;
        }
        inProfile++;
        if (t.result === "valid") {
          assert.deepEqual(await decryptAesGcm(key, iv, sealed, { aad }), msg, label);
          assert.deepEqual(await encryptAesGcm(key, iv, msg, { aad }), sealed, label);
        } else {
          await assert.rejects(decryptAesGcm(key, iv, sealed, { aad }), (e: unknown) => {
            assert.ok(e instanceof TrustError && e.code === "DECRYPT_FAILED", label);
            return true;
          });
        }
      }
    }
    assert.equal(inProfile + refused, 316);
    assert.ok(inProfile >= 60, `only ${inProfile} cases in profile`);
  },
});

const hmacGroups = load("hmac_sha256_test.json");
Deno.test({
  name: "HMAC-SHA256 passes every Wycheproof case; truncated tags are never accepted",
  ignore: !hmacGroups,
  fn() {
    let n = 0;
    for (const g of hmacGroups!) {
      for (const t of g.tests) {
        const key = decodeHex(t.key as string);
        const msg = decodeHex(t.msg as string);
        const tag = decodeHex(t.tag as string);
        const label = `tcId ${t.tcId}: ${t.comment}`;
        const full = hmacSha256(key, msg);
        if (g.tagSize === 256) {
          assert.equal(verifyHmacSha256(key, msg, tag), t.result === "valid", label);
        } else {
          // 128-bit groups: our tags are full length, so a truncated tag never verifies; the
          // computed MAC must still agree with the vector's prefix exactly when it is valid.
          assert.equal(verifyHmacSha256(key, msg, tag), false, label);
          const prefixMatches = full.subarray(0, tag.length).every((b, i) => b === tag[i]);
          assert.equal(prefixMatches && tag.length === 16, t.result === "valid", label);
        }
        n++;
      }
    }
    assert.equal(n, 174);
  },
});

Deno.test({
  name: "verifyEd25519Async() gives the same answer as verifyEd25519() on every Wycheproof case",
  ignore: !ed,
  async fn() {
    for (const g of ed!) {
      const pk = decodeHex((g.publicKey as { pk: string }).pk);
      for (const t of g.tests) {
        const msg = decodeHex(t.msg as string);
        const sig = decodeHex(t.sig as string);
        const label = `tcId ${t.tcId}: ${t.comment}`;
        assert.equal(await verifyEd25519Async(pk, msg, sig), t.result === "valid", label);
        assert.equal(await verifyEd25519Async(pk, msg, sig), verifyEd25519(pk, msg, sig), label);
      }
    }
  },
});
