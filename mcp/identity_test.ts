import assert from "node:assert/strict";
import fc from "fast-check";
import { encodeBase64Url, generateKeyPair } from "@infraveil/trust";
import { checkBaseUrl, parseIdentityFile } from "./identity.ts";
import { GovernedMcpError } from "./error.ts";

const me = generateKeyPair();
const control = generateKeyPair();
const other = generateKeyPair();

function identity(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    kind: "mcp",
    name: "claude",
    tenant: "acme",
    kid: me.kid,
    private: encodeBase64Url(me.privateKey),
    public: encodeBase64Url(me.publicKey),
    control_url: "http://127.0.0.1:8080",
    control_public_key: encodeBase64Url(control.publicKey),
    control_kid: control.kid,
    ...overrides,
  };
}

function rejects(text: string, re: RegExp): void {
  assert.throws(
    () => parseIdentityFile(text, "claude.json"),
    (e: unknown) =>
      e instanceof GovernedMcpError && e.code === "BAD_IDENTITY" && re.test(e.message),
  );
}

Deno.test("parseIdentityFile() loads an enrolled MCP identity", () => {
  const id = parseIdentityFile(JSON.stringify(identity()), "claude.json");
  assert.equal(id.kind, "mcp");
  assert.equal(id.name, "claude");
  assert.equal(id.tenant, "acme");
  assert.equal(id.key.kid, me.kid);
  assert.deepEqual(id.key.publicKey, me.publicKey);
  assert.equal(id.control.kid, control.kid);
  assert.deepEqual(id.control.publicKey, control.publicKey);
  assert.equal(id.controlUrl, "http://127.0.0.1:8080");
  const { control_url: _, ...rest } = identity();
  assert.equal(parseIdentityFile(JSON.stringify(rest), "x").controlUrl, undefined);
});

Deno.test("parseIdentityFile() refuses identities of another kind", () => {
  rejects(
    JSON.stringify(identity({ kind: "agent" })),
    /"kind" is "agent", expected "mcp".*not accepted/,
  );
  rejects(JSON.stringify(identity({ kind: undefined })), /"kind"/);
});

Deno.test("parseIdentityFile() refuses a key that does not match its id or its public half", () => {
  rejects(JSON.stringify(identity({ kid: other.kid })), /field "kid" .* public key's id/);
  rejects(
    JSON.stringify(identity({ public: encodeBase64Url(other.publicKey), kid: other.kid })),
    /does not belong to the private key/,
  );
  rejects(JSON.stringify(identity({ control_kid: other.kid })), /control_kid/);
  rejects(
    JSON.stringify(
      identity({ control_public_key: encodeBase64Url(me.publicKey), control_kid: me.kid }),
    ),
    /pinned control-plane key is the MCP server's own key/,
  );
});

Deno.test("parseIdentityFile() names the broken field", () => {
  rejects("", /the file is empty/);
  rejects("{", /not JSON/);
  rejects("[]", /expected a JSON object/);
  rejects(JSON.stringify(identity({ extra: 1 })), /unknown field "extra"/);
  rejects(JSON.stringify(identity({ name: "" })), /field "name"/);
  rejects(JSON.stringify(identity({ tenant: 7 })), /field "tenant"/);
  rejects(JSON.stringify(identity({ private: "!!" })), /field "private" is not base64url/);
  rejects(JSON.stringify(identity({ private: encodeBase64Url(new Uint8Array(31)) })), /31 bytes/);
  rejects(JSON.stringify(identity({ control_public_key: undefined })), /control_public_key/);
  rejects(JSON.stringify(identity({ control_url: "ftp://x" })), /control_url.*http/);
  for (const re of [/claude\.json/, /infraveil control enroll --kind mcp|Remove it/]) {
    rejects(JSON.stringify(identity({ tenant: "" })), re);
  }
});

Deno.test("parseIdentityFile() throws only GovernedMcpError on arbitrary input", () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.string(), fc.json(), fc.jsonValue().map((v) => JSON.stringify(v))),
      (text) => {
        try {
          parseIdentityFile(text, "f");
        } catch (e) {
          assert.ok(e instanceof GovernedMcpError, String(e));
        }
      },
    ),
    { numRuns: 300 },
  );
  fc.assert(
    fc.property(
      fc.dictionary(fc.constantFrom(...Object.keys(identity())), fc.jsonValue()),
      (patch) => {
        try {
          parseIdentityFile(JSON.stringify(identity(patch)), "f");
        } catch (e) {
          assert.ok(e instanceof GovernedMcpError, String(e));
        }
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("checkBaseUrl() accepts http(s) URLs and refuses credentials, queries and others", () => {
  assert.equal(checkBaseUrl("https://control.example.com/", "x").host, "control.example.com");
  assert.equal(checkBaseUrl("http://127.0.0.1:8080", "x").port, "8080");
  for (
    const bad of [
      "",
      "control",
      "file:///etc/passwd",
      "https://u:p@h/",
      "https://h/?a=1",
      "https://h/#x",
    ]
  ) {
    assert.throws(
      () => checkBaseUrl(bad, "INFRAVEIL_BASE_URL"),
      (e: unknown) =>
        e instanceof GovernedMcpError && e.code === "BAD_CONFIG" &&
        /INFRAVEIL_BASE_URL/.test(e.message),
      bad,
    );
  }
});
