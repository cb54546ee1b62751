/**
 * Scenarios: signed-message checks (forged, tampered, replayed, expired, not yet valid,
 * wrong tenant, wrong audience, wrong type), each recorded as evidence; cross-tenant access on
 * every kind of endpoint; enrollment tokens; key rotation and revocation; bearer tokens.
 *
 * @module
 */
import assert from "node:assert/strict";
import { encodeBase64Url, generateKeyPair, signEnvelope } from "@infraveil/trust";
import { ControlClientError, enrollWithToken } from "./client.ts";
import { type Backend, BASE, evidenceOf, scenario, world } from "./_testing.ts";
import { initTenant } from "./tenant.ts";

async function rejects(p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ControlClientError, `expected ControlClientError, got ${e}`);
    assert.equal(e.code, code, e.message);
    return;
  }
  assert.fail(`expected ${code}`);
}

/** Registers the authentication scenarios. */
export function authScenarios(b: Backend): void {
  scenario(
    b,
    "signed messages: forged, tampered, replayed, expired, early, wrong tenant/audience/type are refused and evidenced",
    async () => {
      const w = await world(b);
      try {
        const now = Math.floor(w.clock.now() / 1000);
        const base = {
          type: "fleet.status",
          tenant: "acme",
          aud: "infraveil-control",
          iat: now,
          exp: now + 60,
          iss: "claude",
        };
        const send = async (env: unknown, type = "fleet.status", tenant = "acme") => {
          const res = await w.app.request(`/v1/t/${tenant}/signed/${type}`, {
            method: "POST",
            body: JSON.stringify(env),
          });
          const body = await res.json();
          return {
            status: res.status,
            code: body.payload?.error?.code as string | undefined,
            body,
          };
        };
        const cases: [string, unknown, string, string?][] = [
          [
            "forged (unknown key)",
            signEnvelope({ ...base, nonce: "n1" }, generateKeyPair()),
            "UNKNOWN_KEY",
          ],
          ["tampered", {
            ...signEnvelope({ ...base, nonce: "n2" }, w.mcpKey),
            payload: { ...base, nonce: "n2", iss: "x" },
          }, "BAD_SIGNATURE"],
          [
            "expired",
            signEnvelope({ ...base, nonce: "n3", iat: now - 600, exp: now - 300 }, w.mcpKey),
            "EXPIRED",
          ],
          [
            "not yet valid",
            signEnvelope({ ...base, nonce: "n4", iat: now + 600, exp: now + 660 }, w.mcpKey),
            "NOT_YET_VALID",
          ],
          [
            "too long-lived",
            signEnvelope({ ...base, nonce: "n5", exp: now + 3600 }, w.mcpKey),
            "BAD_LIFETIME",
          ],
          [
            "wrong tenant",
            signEnvelope({ ...base, nonce: "n6", tenant: "globex" }, w.mcpKey),
            "WRONG_TENANT",
          ],
          [
            "wrong audience",
            signEnvelope({ ...base, nonce: "n7", aud: "infraveil-agent" }, w.mcpKey),
            "WRONG_AUDIENCE",
          ],
          [
            "wrong type",
            signEnvelope({ ...base, nonce: "n8", type: "heartbeat" }, w.mcpKey),
            "WRONG_TYPE",
          ],
          ["malformed", { payload: base, kid: w.mcpKey.kid }, "MALFORMED"],
        ];
        for (const [what, env, code] of cases) {
          const r = await send(env);
          assert.equal(r.code, code, `${what}: ${JSON.stringify(r.body)}`);
          assert.ok(r.status >= 400);
          // Even errors are signed by the control plane and echo the nonce.
          assert.equal(r.body.kid, w.keys.kid);
        }
        const ok = signEnvelope({ ...base, nonce: "fresh" }, w.mcpKey);
        assert.equal((await send(ok)).status, 200);
        assert.equal((await send(ok)).code, "REPLAYED");
        // Not JSON at all.
        const res = await w.app.request("/v1/t/acme/signed/fleet.status", {
          method: "POST",
          body: "{",
        });
        assert.equal(res.status, 400);
        const failures = (await evidenceOf(w.store, w.tenant)).filter((e) =>
          e.type === "auth.failure"
        );
        assert.deepEqual(
          failures.map((e) => e.data.code),
          [...cases.map((c) => c[2]), "REPLAYED", "MALFORMED"],
        );
        assert.equal(failures[1].actor, `key:${w.mcpKey.kid}`);
        // An agent-only endpoint refuses an MCP identity.
        await rejects(w.mcp.heartbeat({ version: "1" }), "FORBIDDEN");
        await rejects(w.mcp.call("nope"), "NOT_FOUND");
      } finally {
        await w.close();
      }
    },
  );

  scenario(
    b,
    "cross-tenant: keys, tokens and records of one tenant are invisible to another",
    async () => {
      const w = await world(b);
      try {
        const g = await initTenant(w.store, {
          tenant: "globex",
          adminEmail: "admin@globex.test",
          now: w.clock.now,
        });
        const signup = await w.api("POST", "/v1/signup", null, {
          tenant: "globex",
          token: g.signupToken,
        });
        const gAdmin = {
          id: signup.json.user_id,
          email: "admin@globex.test",
          token: signup.json.token,
        };
        // acme's MCP key on globex's endpoints: unknown there.
        const asGlobex = w.client({ name: "claude", kind: "mcp", key: w.mcpKey, tenant: "globex" });
        await rejects(asGlobex.fleetStatus(), "UNKNOWN_KEY");
        await rejects(
          asGlobex.createRequest({ action: "restart", targets: ["web-1"] }),
          "UNKNOWN_KEY",
        );
        await rejects(
          w.client({ name: "web-1", kind: "agent", key: w.agentKeys["web-1"], tenant: "globex" })
            .heartbeat({ version: "1" }),
          "UNKNOWN_KEY",
        );
        // Signed for globex, sent to acme's path: refused by the tenant check.
        const now = Math.floor(w.clock.now() / 1000);
        const env = signEnvelope({
          type: "fleet.status",
          tenant: "globex",
          aud: "infraveil-control",
          iat: now,
          exp: now + 60,
          nonce: "x",
        }, w.mcpKey);
        const res = await w.app.request("/v1/t/acme/signed/fleet.status", {
          method: "POST",
          body: JSON.stringify(env),
        });
        assert.equal((await res.json()).payload.error.code, "WRONG_TENANT");
        // acme data, globex token.
        const r = await w.mcp.requestDeploy({
          environment: "production",
          service: "api",
          targets: ["web-1"],
          files: ["a.ts"],
        });
        await w.agents["web-1"].heartbeat({ version: "1" });
        for (
          const path of [
            `/v1/t/acme/requests/${r.request_id}`,
            `/v1/t/acme/requests`,
            `/v1/t/acme/fleet`,
            `/v1/t/acme/evidence`,
            `/v1/t/acme/policies`,
            `/v1/t/acme/authority`,
            `/v1/t/acme/breakglass`,
            `/v1/t/acme/findings`,
            `/v1/t/acme/traces`,
            `/v1/t/acme/me`,
          ]
        ) {
          const x = await w.api("GET", path, gAdmin);
          assert.equal(x.status, 401, `${path}: ${JSON.stringify(x.json)}`);
        }
        for (
          const [method, path] of [
            ["POST", `/v1/t/acme/requests/${r.request_id}/approve`],
            ["POST", `/v1/t/acme/breakglass`],
            ["POST", `/v1/t/acme/policies`],
            ["PUT", `/v1/t/acme/settings`],
            ["POST", `/v1/t/acme/users`],
            ["POST", `/v1/t/acme/enrollment-tokens`],
            ["POST", `/v1/t/acme/authority/groups`],
          ]
        ) {
          const x = await w.api(method, path, gAdmin, {});
          assert.ok(x.status === 401 || x.status === 400, `${method} ${path}: ${x.status}`);
          if (x.status === 400) assert.notEqual(x.json.error.code, "OK");
        }
        // globex's own view is empty; the same request id is not found there.
        assert.equal(
          (await w.api("GET", `/v1/t/globex/requests/${r.request_id}`, gAdmin)).status,
          404,
        );
        assert.equal((await w.api("GET", "/v1/t/globex/fleet", gAdmin)).json.hosts.length, 0);
        assert.equal((await w.api("GET", "/v1/t/globex/requests", gAdmin)).json.items.length, 0);
        assert.equal(
          (await w.api(
            "GET",
            `/v1/t/globex/requests/${r.request_id}/why/${w.users.alice.email}`,
            gAdmin,
          )).status,
          404,
        );
        // Unknown tenants.
        assert.equal((await w.api("GET", "/v1/t/nope/me", w.users.admin)).status, 404);
        await rejects(
          w.client({ name: "claude", kind: "mcp", key: w.mcpKey, tenant: "nope" }).fleetStatus(),
          "UNKNOWN_TENANT",
        );
        // Evidence logs are separate.
        const gEvidence = await evidenceOf(w.store, "globex");
        assert.ok(gEvidence.every((e) => !JSON.stringify(e).includes(r.request_id)));
        assert.ok(
          gEvidence.some((e) => e.type === "auth.failure"),
          "failures on globex's path are globex's evidence",
        );
      } finally {
        await w.close();
      }
    },
  );

  scenario(
    b,
    "enrollment tokens are one-time and bound to a name and kind; rotation and revocation take effect at once",
    async () => {
      const w = await world(b);
      try {
        const mk = await w.api("POST", "/v1/t/acme/enrollment-tokens", w.users.admin, {
          name: "web-3",
          kind: "agent",
          environment: "production",
          service: "api",
        });
        assert.equal(mk.status, 201, JSON.stringify(mk.json));
        assert.equal(mk.json.control_kid, w.keys.kid);
        const key = generateKeyPair();
        const opts = {
          baseUrl: BASE,
          tenant: "acme",
          name: "web-3",
          kind: "agent" as const,
          token: mk.json.token,
          key,
          controlPublicKey: w.keys.publicKey,
          fetch: w.fetch,
          now: w.clock.now,
        };
        // Wrong name with a valid token: refused, and the token survives.
        await rejects(enrollWithToken({ ...opts, name: "web-9" }), "FORBIDDEN");
        const out = await enrollWithToken(opts);
        assert.equal(out.kid, key.kid);
        await rejects(enrollWithToken({ ...opts, key: generateKeyPair() }), "TOKEN_USED");
        await rejects(
          enrollWithToken({
            ...opts,
            token: "ive_0123456789abcdef.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
          }),
          "TOKEN_USED",
        );
        const web3 = w.client({ name: "web-3", kind: "agent", key });
        assert.equal((await web3.heartbeat({ version: "1" })).active_policy_hash !== null, true);
        // Non-admins cannot mint enrollment tokens.
        assert.equal(
          (await w.api("POST", "/v1/t/acme/enrollment-tokens", w.users.alice, {
            name: "x",
            kind: "agent",
          })).status,
          403,
        );
        // MCP tokens need an operator.
        assert.equal(
          (await w.api("POST", "/v1/t/acme/enrollment-tokens", w.users.admin, {
            name: "m",
            kind: "mcp",
          })).status,
          400,
        );
        // Rotation: the old key stops working, the new one works.
        const next = generateKeyPair();
        const rot = await web3.rotateKey(next);
        assert.equal(rot.kid, next.kid);
        await rejects(web3.heartbeat({ version: "1" }), "UNKNOWN_KEY");
        const web3b = w.client({ name: "web-3", kind: "agent", key: next });
        await web3b.heartbeat({ version: "2" });
        // A rotation whose proof is not by the new key is refused.
        await rejects(
          web3b.call("identity.rotate", {
            new_public: encodeBase64Url(generateKeyPair().publicKey),
            proof: "AAAA",
          }),
          "BAD_PROOF",
        );
        // Revocation.
        const rev = await w.api("POST", "/v1/t/acme/identities/web-3/revoke", w.users.admin);
        assert.equal(rev.json.revoked, next.kid);
        await rejects(web3b.heartbeat({ version: "2" }), "UNKNOWN_KEY");
        const ids = (await w.api("GET", "/v1/t/acme/identities", w.users.admin)).json.items
          .filter((i: { name: string }) => i.name === "web-3").map((i: { status: string }) =>
            i.status
          ).sort();
        assert.deepEqual(ids, ["revoked", "rotated"]);
        const types = (await evidenceOf(w.store, w.tenant)).map((e) => e.type);
        for (
          const t of [
            "identity.enrollment_token",
            "identity.enroll",
            "identity.rotate",
            "identity.revoke",
          ]
        ) {
          assert.ok(types.includes(t), t);
        }
      } finally {
        await w.close();
      }
    },
  );

  scenario(
    b,
    "bearer tokens: stored hashed, revocable, expiring; sign-up links are one-time",
    async () => {
      const w = await world(b);
      try {
        const mk = await w.api("POST", "/v1/t/acme/tokens", w.users.alice, {
          label: "cli",
          ttl_seconds: 3600,
        });
        assert.equal(mk.status, 201);
        const tok = { ...w.users.alice, token: mk.json.token };
        assert.equal((await w.api("GET", "/v1/t/acme/me", tok)).json.email, "alice@acme.test");
        const stored = await w.store.tx((t) => t.getToken("acme", mk.json.id));
        assert.ok(stored && !mk.json.token.includes(stored.hash) && stored.hash.length === 64);
        w.clock.advance(3601_000);
        assert.equal((await w.api("GET", "/v1/t/acme/me", tok)).status, 401);
        const mk2 = await w.api("POST", "/v1/t/acme/tokens", w.users.alice, {});
        assert.equal(
          (await w.api("DELETE", `/v1/t/acme/tokens/${mk2.json.id}`, w.users.alice)).status,
          200,
        );
        assert.equal(
          (await w.api("GET", "/v1/t/acme/me", { ...tok, token: mk2.json.token })).status,
          401,
        );
        assert.equal(
          (await w.api("GET", "/v1/t/acme/me", {
            ...tok,
            token: mk2.json.token.slice(0, -2) + "AA",
          })).status,
          401,
        );
        const u = await w.api("POST", "/v1/t/acme/users", w.users.admin, {
          email: "eve@acme.test",
        });
        const token = new URL(u.json.signup_url).searchParams.get("token");
        assert.equal(
          (await w.api("POST", "/v1/signup", null, { tenant: "acme", token })).status,
          200,
        );
        assert.equal(
          (await w.api("POST", "/v1/signup", null, { tenant: "acme", token })).status,
          401,
        );
        assert.equal(
          (await w.api("POST", "/v1/t/acme/users", w.users.alice, { email: "x@acme.test" })).status,
          403,
        );
      } finally {
        await w.close();
      }
    },
  );
}
