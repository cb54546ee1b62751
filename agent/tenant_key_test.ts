import assert from "node:assert/strict";
import { encodeBase64Url } from "@infraveil/trust";
import { AgentError } from "./error.ts";
import { formatTenantKeyFile, generateTenantKey, parseTenantKeyFile } from "./tenant_key.ts";

Deno.test("parseTenantKeyFile() round-trips a generated key", () => {
  const key = generateTenantKey();
  const back = parseTenantKeyFile(formatTenantKeyFile(key), "t.key");
  assert.equal(back.kid, key.kid);
  assert.deepEqual(back.bundleKey, key.bundleKey);
  assert.deepEqual(back.macKey, key.macKey);
  assert.notDeepEqual(key.bundleKey, key.macKey);
});

Deno.test("parseTenantKeyFile() refuses damaged, foreign and truncated files, naming them", () => {
  const json = JSON.parse(formatTenantKeyFile(generateTenantKey()));
  const cases: [string, string][] = [
    ["empty", ""],
    ["truncated", formatTenantKeyFile(generateTenantKey()).slice(0, 40)],
    ["wrong kty", JSON.stringify({ ...json, kty: "ed25519" })],
    ["wrong kid", JSON.stringify({ ...json, kid: "0000000000000000" })],
    ["short key", JSON.stringify({ ...json, mac_key: encodeBase64Url(new Uint8Array(16)) })],
    ["not base64url", JSON.stringify({ ...json, bundle_key: "+/+/" })],
    ["unknown field", JSON.stringify({ ...json, extra: true })],
    ["array", "[]"],
  ];
  for (const [name, text] of cases) {
    assert.throws(
      () => parseTenantKeyFile(text, "/etc/t.key"),
      (e) => e instanceof AgentError && e.code === "BAD_CONFIG" && e.message.includes("/etc/t.key"),
      name,
    );
  }
});
