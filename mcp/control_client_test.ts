import assert from "node:assert/strict";
import { ControlClientError } from "@infraveil/control/client";
import { encodeBase64Url, generateKeyPair, signEnvelope } from "@infraveil/trust";
import { createControlApi, mapControlError } from "./control_client.ts";
import { GovernedMcpError } from "./error.ts";
import { parseIdentityFile } from "./identity.ts";

const me = generateKeyPair();
const control = generateKeyPair();
const identity = parseIdentityFile(
  JSON.stringify({
    kind: "mcp",
    name: "claude",
    tenant: "acme",
    kid: me.kid,
    private: encodeBase64Url(me.privateKey),
    public: encodeBase64Url(me.publicKey),
    control_public_key: encodeBase64Url(control.publicKey),
    control_kid: control.kid,
  }),
  "claude.json",
);

Deno.test("mapControlError() sorts client failures into what the AI agent can act on", () => {
  const cases: [string, GovernedMcpError["code"]][] = [
    ["NETWORK", "CONTROL_UNREACHABLE"],
    ["BAD_RESPONSE", "UNVERIFIED_RESPONSE"],
    ["BAD_RESPONSE_SIGNATURE", "UNVERIFIED_RESPONSE"],
    ["REPLAYED_RESPONSE", "UNVERIFIED_RESPONSE"],
    ["STALE_RESPONSE", "UNVERIFIED_RESPONSE"],
    ["WRONG_REPLY", "UNVERIFIED_RESPONSE"],
    ["UNKNOWN_KEY", "CONTROL_REFUSED"],
    ["HUMAN_ONLY", "CONTROL_REFUSED"],
    ["FORBIDDEN", "CONTROL_REFUSED"],
    ["BAD_REQUEST", "BAD_ARGUMENTS"],
    ["NOT_FOUND", "NOT_FOUND"],
    ["RATE_LIMITED", "RATE_LIMITED"],
    ["INTERNAL", "CONTROL_ERROR"],
  ];
  for (const [code, want] of cases) {
    const mapped = mapControlError(new ControlClientError(code, `boom ${code}`));
    assert.equal(mapped.code, want, code);
    assert.match(mapped.message, new RegExp(`boom ${code} \\(${code}\\)`));
  }
  const expired = mapControlError(new ControlClientError("EXPIRED", "late"));
  assert.match(expired.message, /clock/);
  const field = mapControlError(
    new ControlClientError("BAD_REQUEST", "bad", { details: { field: "targets" } }),
  );
  assert.match(field.message, /\[field: targets\]/);
  assert.equal(mapControlError(new TypeError("x")).code, "CONTROL_ERROR");
});

Deno.test("createControlApi() bounds a stalled control plane with a timeout", async () => {
  const api = createControlApi({
    baseUrl: "http://control.test",
    identity,
    timeoutMs: 50,
    fetch: (_input, init) =>
      new Promise((_resolve, reject) => {
        init?.signal?.addEventListener("abort", () => reject(init.signal?.reason));
      }),
  });
  await assert.rejects(
    api.fleetStatus(),
    (e: unknown) => e instanceof GovernedMcpError && e.code === "CONTROL_UNREACHABLE",
  );
});

Deno.test("createControlApi() maps NOT_FOUND to undefined for lookups only", async () => {
  // A genuine, correctly addressed error reply signed by the pinned key.
  const fetchNotFound: typeof fetch = async (_input, init) => {
    const sent = JSON.parse(String(init?.body));
    const iat = Math.floor(Date.now() / 1000);
    const reply = signEnvelope({
      type: "error",
      tenant: "acme",
      aud: "acme/claude",
      iat,
      exp: iat + 60,
      nonce: crypto.randomUUID(),
      in_reply_to: sent.payload.nonce,
      error: { code: "NOT_FOUND", message: "Request req_x not found" },
    }, control);
    return await Promise.resolve(new Response(JSON.stringify(reply), { status: 404 }));
  };
  const api = createControlApi({ baseUrl: "http://control.test", identity, fetch: fetchNotFound });
  assert.equal(await api.getRequest("req_x"), undefined);
  assert.equal(await api.getTrace("0".repeat(32)), undefined);
  await assert.rejects(
    api.listRequests({}),
    (e: unknown) => e instanceof GovernedMcpError && e.code === "NOT_FOUND",
  );
});

Deno.test("createControlApi() never returns a reply signed by another key", async () => {
  const other = generateKeyPair();
  const forged: typeof fetch = (_input, init) => {
    const sent = JSON.parse(String(init?.body));
    const iat = Math.floor(Date.now() / 1000);
    const reply = signEnvelope({
      type: "fleet.status.result",
      tenant: "acme",
      aud: "acme/claude",
      iat,
      exp: iat + 60,
      nonce: crypto.randomUUID(),
      in_reply_to: sent.payload.nonce,
      result: {
        active_policy_hash: null,
        hosts: [],
        counts: { total: 0, stale: 0, policy_drift: 0 },
      },
    }, other);
    return Promise.resolve(new Response(JSON.stringify({ ...reply, kid: control.kid })));
  };
  const api = createControlApi({ baseUrl: "http://control.test", identity, fetch: forged });
  await assert.rejects(
    api.fleetStatus(),
    (e: unknown) => e instanceof GovernedMcpError && e.code === "UNVERIFIED_RESPONSE",
  );
});
