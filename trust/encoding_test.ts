import assert from "node:assert/strict";
import fc from "fast-check";
import {
  decodeBase64,
  decodeBase64Url,
  decodeHex,
  encodeBase64,
  encodeBase64Url,
  encodeHex,
} from "./encoding.ts";
import { TrustError } from "./error.ts";

Deno.test("encodings round-trip and agree with the platform (property)", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      assert.deepEqual(decodeBase64Url(encodeBase64Url(bytes)), bytes);
      assert.deepEqual(decodeBase64(encodeBase64(bytes)), bytes);
      assert.deepEqual(decodeHex(encodeHex(bytes)), bytes);
      assert.equal(encodeBase64(bytes), btoa(String.fromCharCode(...bytes)));
    }),
  );
});

Deno.test("decoders reject non-canonical input", () => {
  const bad: [(s: string) => Uint8Array, string][] = [
    [decodeBase64Url, "AA=="],
    [decodeBase64Url, "A"],
    [decodeBase64Url, "AB"], // non-zero trailing bits
    [decodeBase64Url, "a+b/"],
    [decodeBase64, "AA"],
    [decodeBase64, "AB=="],
    [decodeBase64, "-_8="],
    [decodeHex, "abc"],
    [decodeHex, "zz"],
  ];
  for (const [fn, s] of bad) {
    assert.throws(() => fn(s), (e) => e instanceof TrustError && e.code === "MALFORMED", s);
  }
});
