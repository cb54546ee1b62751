import assert from "node:assert/strict";
import { pae, signDsse, verifyDsse } from "./dsse.ts";
import { generateKeyPair } from "./ed25519.ts";
import { decodeBase64, encodeBase64, utf8 } from "./encoding.ts";
import { keyring } from "./envelope.ts";
import { TrustError, type TrustErrorCode } from "./error.ts";

const text = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("pae() encodes the DSSE specification's example exactly", () => {
  assert.equal(
    text(pae("http://example.com/HelloWorld", utf8("hello world"))),
    "DSSEv1 29 http://example.com/HelloWorld 11 hello world",
  );
  assert.equal(text(pae("", new Uint8Array())), "DSSEv1 0  0 ");
  // Lengths count bytes, not characters.
  assert.equal(text(pae("t", utf8("é"))), "DSSEv1 1 t 2 é");
});

const key = generateKeyPair();
const TYPE = "application/vnd.in-toto+json";

function isCode(code: TrustErrorCode) {
  return (e: unknown) => e instanceof TrustError && e.code === code;
}

Deno.test("verifyDsse() accepts a signed envelope and returns its payload", async () => {
  const env = signDsse(TYPE, utf8('{"a":1}'), key);
  const out = await verifyDsse(JSON.stringify(env), { keys: keyring([key]), payloadType: TYPE });
  assert.equal(text(out.payload), '{"a":1}');
  assert.equal(out.keyid, key.kid);
});

Deno.test("verifyDsse() rejects tampering, other keys, other types and malformed input", async () => {
  const env = signDsse(TYPE, utf8('{"a":1}'), key);
  const keys = keyring([key]);
  await assert.rejects(
    verifyDsse({ ...env, payload: encodeBase64(utf8('{"a":2}')) }, { keys }),
    isCode("BAD_SIGNATURE"),
  );
  // The type is signed too: changing it breaks the signature even without an expected type.
  await assert.rejects(
    verifyDsse({ ...env, payloadType: "text/plain" }, { keys }),
    isCode("BAD_SIGNATURE"),
  );
  await assert.rejects(
    verifyDsse(env, { keys, payloadType: "text/plain" }),
    isCode("WRONG_PAYLOAD_TYPE"),
  );
  await assert.rejects(
    verifyDsse(env, { keys: keyring([generateKeyPair()]) }),
    isCode("UNKNOWN_KEY"),
  );
  const other = generateKeyPair();
  const forged = signDsse(TYPE, utf8('{"a":1}'), other);
  forged.signatures[0].keyid = key.kid;
  await assert.rejects(verifyDsse(forged, { keys }), isCode("BAD_SIGNATURE"));
  const sig = decodeBase64(env.signatures[0].sig);
  await assert.rejects(
    verifyDsse(
      { ...env, signatures: [{ keyid: key.kid, sig: encodeBase64(sig.subarray(0, 60)) }] },
      { keys },
    ),
    isCode("BAD_SIGNATURE"),
  );
  for (
    const bad of [
      "{",
      "[]",
      '{"payloadType":"t"}',
      JSON.stringify({ ...env, signatures: [] }),
      JSON.stringify({ ...env, payload: "%%%" }),
    ]
  ) {
    await assert.rejects(verifyDsse(bad, { keys }), isCode("MALFORMED"), bad);
  }
});
