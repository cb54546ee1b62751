import assert from "node:assert/strict";
import {
  encodeBase64,
  encodeBase64Url,
  formatPrivateKeyFile,
  formatPublicKeyFile,
  toMinisignPublicKey,
} from "@infraveil/trust";
import { testKey } from "./_testing.ts";
import { AgentError } from "./error.ts";
import { parsePublicKeyFileText, parsePublicKeyString } from "./public_key.ts";

const key = testKey(1);

Deno.test("parsePublicKeyString() recognises raw base64, base64url and minisign keys", () => {
  for (
    const [text, form] of [
      [encodeBase64(key.publicKey), "raw"],
      [encodeBase64Url(key.publicKey), "raw"],
      [toMinisignPublicKey(key), "minisign"],
    ] as const
  ) {
    const out = parsePublicKeyString(text);
    assert.equal(out?.form, form);
    assert.equal(out?.kid, key.kid);
  }
  for (
    const bad of ["", "abc", encodeBase64(new Uint8Array(31)), encodeBase64(new Uint8Array(42))]
  ) {
    assert.equal(parsePublicKeyString(bad), null, bad);
  }
});

Deno.test("parsePublicKeyFileText() reads key files and minisign .pub files", () => {
  assert.equal(parsePublicKeyFileText(formatPublicKeyFile(key), "k.pub").kid, key.kid);
  const priv = parsePublicKeyFileText(formatPrivateKeyFile(key), "k");
  assert.equal(priv.fromPrivateFile, true);
  const pub = `untrusted comment: minisign public key\n${toMinisignPublicKey(key)}\n`;
  assert.equal(parsePublicKeyFileText(pub, "k.pub").form, "minisign");
  assert.throws(
    () => parsePublicKeyFileText("hello", "x"),
    (e) => e instanceof AgentError && e.code === "BAD_INPUT",
  );
  assert.throws(
    () => parsePublicKeyFileText("{}", "x"),
    (e) => e instanceof AgentError && /x/.test(e.message),
  );
});
