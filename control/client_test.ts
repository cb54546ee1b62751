import assert from "node:assert/strict";
import { generateKeyPair, signEnvelope } from "@infraveil/trust";
import { ControlClient, ControlClientError, parseIdentityFile } from "./client.ts";
import { sqliteBackend, world } from "./_testing.ts";

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ControlClientError, String(e));
    return e.code;
  }
  return "no error";
}

Deno.test({
  name: "ControlClient refuses forged, unsigned, replayed, misaddressed and stale responses",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const w = await world(sqliteBackend);
    try {
      let mode = "pass";
      let last: string | null = null;
      const evil = generateKeyPair();
      const fetchVia: typeof fetch = async (input, init) => {
        const res = await w.fetch(input, init);
        const text = await res.text();
        const env = JSON.parse(text);
        switch (mode) {
          case "tamper":
            env.payload.result = { active_policy_hash: "sha256:evil" };
            return new Response(JSON.stringify(env), { status: res.status });
          case "unsigned":
            return new Response(JSON.stringify({ result: env.payload.result }), { status: 200 });
          case "other-key":
            return new Response(JSON.stringify(signEnvelope(env.payload, evil)), { status: 200 });
          case "replay": {
            const out = last ?? text;
            return new Response(out, { status: 200 });
          }
          case "misaddressed": {
            const p = { ...env.payload, aud: "acme/web-2" };
            return new Response(JSON.stringify(signEnvelope(p, w.keys)), { status: 200 });
          }
          case "wrong-reply": {
            const p = { ...env.payload, in_reply_to: "someone-else", nonce: crypto.randomUUID() };
            return new Response(JSON.stringify(signEnvelope(p, w.keys)), { status: 200 });
          }
          case "stale": {
            const p = {
              ...env.payload,
              iat: env.payload.iat - 1000,
              exp: env.payload.exp - 1000,
              nonce: crypto.randomUUID(),
            };
            return new Response(JSON.stringify(signEnvelope(p, w.keys)), { status: 200 });
          }
          case "down":
            throw new TypeError("connection refused");
        }
        last = text;
        return new Response(text, { status: res.status });
      };
      const k = w.agentKeys["web-1"];
      const client = new ControlClient({
        baseUrl: "http://control.test",
        identity: {
          tenant: "acme",
          name: "web-1",
          kind: "agent",
          kid: k.kid,
          privateKey: k.privateKey,
        },
        controlPublicKey: w.keys.publicKey,
        fetch: fetchVia,
        now: w.clock.now,
      });
      assert.ok((await client.heartbeat({ version: "1" })).active_policy_hash);
      const expected: Record<string, string> = {
        tamper: "BAD_RESPONSE_SIGNATURE",
        unsigned: "BAD_RESPONSE",
        "other-key": "BAD_RESPONSE_SIGNATURE",
        replay: "REPLAYED_RESPONSE",
        misaddressed: "WRONG_REPLY",
        "wrong-reply": "WRONG_REPLY",
        stale: "STALE_RESPONSE",
        down: "NETWORK",
      };
      for (const [m, c] of Object.entries(expected)) {
        mode = m;
        assert.equal(await code(client.heartbeat({ version: "1" })), c, m);
      }
      // A forged signed approval is an error, never data.
      mode = "pass";
      await w.mcp.requestRestart({ environment: "production", service: "api", targets: ["web-1"] });
      const forgingFetch: typeof fetch = async (input, init) => {
        const res = await w.fetch(input, init);
        const env = JSON.parse(await res.text());
        const approvals = env.payload.result?.approvals ?? [];
        for (const a of approvals) a.payload.action.params = { version: "evil" };
        return new Response(JSON.stringify(signEnvelope(env.payload, w.keys)), {
          status: res.status,
        });
      };
      const c2 = new ControlClient({
        baseUrl: "http://control.test",
        identity: {
          tenant: "acme",
          name: "web-1",
          kind: "agent",
          kid: k.kid,
          privateKey: k.privateKey,
        },
        controlPublicKey: w.keys.publicKey,
        fetch: forgingFetch,
        now: w.clock.now,
      });
      assert.equal(await code(c2.fetchApprovedActions()), "BAD_APPROVAL");
    } finally {
      await w.close();
    }
  },
});

Deno.test("parseIdentityFile() checks every field and the key binding", () => {
  const key = generateKeyPair();
  const control = generateKeyPair();
  const b64 = (b: Uint8Array) =>
    btoa(String.fromCharCode(...b)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const good = {
    kind: "agent",
    name: "web-1",
    tenant: "acme",
    kid: key.kid,
    private: b64(key.privateKey),
    public: b64(key.publicKey),
    control_public_key: b64(control.publicKey),
    control_kid: control.kid,
  };
  const parsed = parseIdentityFile(JSON.stringify(good));
  assert.equal(parsed.identity.kid, key.kid);
  for (
    const bad of [
      "{",
      JSON.stringify({ ...good, kind: "human" }),
      JSON.stringify({ ...good, kid: "0000000000000000" }),
      JSON.stringify({ ...good, public: b64(control.publicKey) }),
      JSON.stringify({ ...good, control_kid: key.kid }),
      JSON.stringify({ ...good, private: "!!" }),
      JSON.stringify({ ...good, name: undefined }),
    ]
  ) {
    assert.throws(
      () => parseIdentityFile(bad, "id.json"),
      (e: unknown) => e instanceof ControlClientError && e.code === "BAD_IDENTITY_FILE",
    );
  }
});
