/**
 * Scenarios for the security review's findings: labels bound to enrolled hosts, small-order
 * keys, operator matching, token approvals off by default, unauthenticated error replies, and
 * nonces consumed before the handler runs.
 *
 * @module
 */
import assert from "node:assert/strict";
import { encodeBase64Url, generateKeyPair, signEnvelope } from "@infraveil/trust";
import { type ControlClient, ControlClientError, enrollWithToken } from "./client.ts";
import { ControlError } from "./error.ts";
import { tokenApprovalsAllowed } from "./_requests.ts";
import { DEFAULT_SETTINGS } from "./store.ts";
import { decodePublicKey, enrollIdentity, revokeIdentity } from "./tenant.ts";
import { type Backend, BASE, evidenceOf, scenario, type World, world } from "./_testing.ts";

/** The Ed25519 identity point: a small-order "public key" under which forgeries verify. */
const IDENTITY_POINT = new Uint8Array(32);
IDENTITY_POINT[0] = 1;

async function rejects(p: Promise<unknown>, code: string, message?: RegExp): Promise<Error> {
  try {
    await p;
  } catch (e) {
    assert.ok(
      e instanceof ControlClientError || e instanceof ControlError,
      `expected a control error, got ${e}`,
    );
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    return e;
  }
  assert.fail(`expected ${code}`);
}

/** Enrolls an agent host through an enrollment token made by the admin. */
async function enrollHost(
  w: World,
  name: string,
  labels: Record<string, string>,
): Promise<ControlClient> {
  const key = generateKeyPair();
  const tok = await w.api("POST", `/v1/t/${w.tenant}/enrollment-tokens`, w.users.admin, {
    name,
    kind: "agent",
    ...labels,
  });
  assert.equal(tok.status, 201, JSON.stringify(tok.json));
  await enrollWithToken({
    baseUrl: BASE,
    tenant: w.tenant,
    name,
    kind: "agent",
    token: tok.json.token,
    key,
    controlPublicKey: w.keys.publicKey,
    fetch: w.fetch,
    now: w.clock.now,
  });
  return w.client({ name, kind: "agent", key });
}

const DEPLOY = {
  environment: "production",
  service: "api",
  targets: ["web-1"],
  files: ["src/app.ts"],
  params: { version: "1.4.2" },
};

/** Registers the security scenarios. */
export function securityScenarios(b: Backend): void {
  scenario(
    b,
    "requests are bound to the enrolled environment and service of every target host",
    async () => {
      const w = await world(b);
      try {
        // A host's labels are recorded at enrollment (an agent needs an environment).
        const noEnv = await w.api("POST", `/v1/t/acme/enrollment-tokens`, w.users.admin, {
          name: "stage-9",
          kind: "agent",
        });
        assert.equal(noEnv.status, 400, JSON.stringify(noEnv.json));
        assert.match(noEnv.json.error.message, /environment/);
        const mcpEnv = await w.api("POST", `/v1/t/acme/enrollment-tokens`, w.users.admin, {
          name: "bot",
          kind: "mcp",
          operator: w.users.dave.email,
          environment: "production",
        });
        assert.equal(mcpEnv.status, 400, JSON.stringify(mcpEnv.json));
        const stage = await enrollHost(w, "stage-7", { environment: "staging", service: "api" });
        const ids = await w.api("GET", `/v1/t/acme/identities`, w.users.admin);
        const row = ids.json.items.find((i: { name: string }) => i.name === "stage-7");
        assert.equal(row.environment, "staging");
        assert.equal(row.service, "api");
        // Heartbeats cannot relabel a host.
        await rejects(
          stage.call("heartbeat", { version: "1.0.0", environment: "production" }),
          "BAD_REQUEST",
        );

        // The exploit: a staging-labelled deploy (1 approval) aimed at a production host.
        const e = await rejects(
          w.mcp.requestDeploy({ ...DEPLOY, environment: "staging" }),
          "FORBIDDEN",
          /web-1.*production.*staging|web-1.*staging.*production/,
        );
        assert.ok(e);
        await rejects(
          w.mcp.checkPolicy({ action: "deploy", ...DEPLOY, environment: "staging" }),
          "FORBIDDEN",
        );
        // Another service's label on the same host.
        await rejects(
          w.mcp.requestDeploy({ ...DEPLOY, service: "db" }),
          "FORBIDDEN",
          /web-1.*"api".*"db"|web-1.*db.*api/,
        );
        // A production deploy aimed at a staging host.
        await rejects(
          w.mcp.requestDeploy({ ...DEPLOY, targets: ["web-1", "stage-7"] }),
          "FORBIDDEN",
          /stage-7/,
        );
        // Targets that are not enrolled hosts of the tenant (unknown, or an MCP identity).
        await rejects(
          w.mcp.requestDeploy({ ...DEPLOY, targets: ["ghost-1"] }),
          "FORBIDDEN",
          /ghost-1.*not an enrolled host/,
        );
        await rejects(
          w.mcp.requestDeploy({ ...DEPLOY, targets: ["claude"] }),
          "FORBIDDEN",
          /claude/,
        );
        // No request was stored for any of these.
        const decisions = (await evidenceOf(w.store, w.tenant)).filter((x) =>
          x.type === "request.decision"
        );
        assert.equal(decisions.length, 0);
        // Matching labels pass; a request naming no service is bound by environment only.
        const ok = await w.mcp.requestDeploy({
          ...DEPLOY,
          environment: "staging",
          targets: ["stage-7"],
        });
        assert.equal(ok.status, "pending");
        const { service: _s, ...noService } = DEPLOY;
        assert.equal((await w.mcp.requestDeploy(noService)).status, "pending");
      } finally {
        await w.close();
      }
    },
  );

  scenario(
    b,
    "break-glass scope names environments: a session for staging does not cover production",
    async () => {
      const w = await world(b);
      try {
        const open = await w.api("POST", `/v1/t/acme/breakglass`, w.users.olga, {
          justification: "staging outage, a fix must go out now",
          scope: { actions: ["deploy"], services: ["*"], environments: ["staging"] },
        });
        assert.equal(open.status, 201, JSON.stringify(open.json));
        assert.deepEqual(open.json.scope.environments, ["staging"]);
        const staging = await w.mcp.requestDeploy({
          ...DEPLOY,
          environment: "staging",
          targets: ["stage-1"],
        });
        assert.equal(staging.status, "allowed");
        assert.equal(staging.break_glass, open.json.id);
        const prod = await w.mcp.requestDeploy(DEPLOY);
        assert.equal(prod.break_glass, null);
        assert.equal(prod.status, "pending");
        const bad = await w.api("POST", `/v1/t/acme/breakglass`, w.users.olga, {
          justification: "staging outage, a fix must go out now",
          scope: { actions: ["deploy"], services: ["*"], environments: [] },
        });
        assert.equal(bad.status, 400);
      } finally {
        await w.close();
      }
    },
  );

  scenario(
    b,
    "enrollment and rotation refuse small-order public keys (the identity point)",
    async () => {
      const w = await world(b);
      try {
        assert.throws(
          () => decodePublicKey(encodeBase64Url(IDENTITY_POINT), "public"),
          (e: unknown) => e instanceof ControlError && /small-order|not a valid/.test(e.message),
        );
        await rejects(
          w.store.tx((t) =>
            enrollIdentity(t, w.tenant, {
              name: "web-9",
              kind: "agent",
              environment: "production",
              publicKey: IDENTITY_POINT,
              operator: null,
              actor: "control",
              now: w.clock.now(),
              via: "test",
            })
          ),
          "BAD_REQUEST",
          /small-order|not a valid/,
        );
        const rot = await rejects(
          w.mcp.call("identity.rotate", {
            new_public: encodeBase64Url(IDENTITY_POINT),
            proof: encodeBase64Url(new Uint8Array(64)),
          }),
          "BAD_REQUEST",
          /new_public/,
        );
        assert.ok(rot);
        const ids = (await w.api("GET", `/v1/t/acme/identities`, w.users.admin)).json.items;
        assert.ok(
          ids.every((i: { public_key: string }) =>
            i.public_key !== encodeBase64Url(IDENTITY_POINT)
          ),
        );
      } finally {
        await w.close();
      }
    },
  );

  scenario(
    b,
    "operators: case-insensitive exclusion, must be an existing user; emails stored lowercase",
    async () => {
      const w = await world(b);
      try {
        // Unknown operator: refused at token creation and at direct enrollment.
        const tok = await w.api("POST", `/v1/t/acme/enrollment-tokens`, w.users.admin, {
          name: "bot",
          kind: "mcp",
          operator: "nobody@acme.test",
        });
        assert.equal(tok.status, 400, JSON.stringify(tok.json));
        assert.match(tok.json.error.message, /nobody@acme\.test.*not a user/);
        await rejects(
          w.store.tx((t) =>
            enrollIdentity(t, w.tenant, {
              name: "bot",
              kind: "mcp",
              publicKey: generateKeyPair().publicKey,
              operator: "ghost@acme.test",
              actor: "control",
              now: w.clock.now(),
              via: "test",
            })
          ),
          "BAD_REQUEST",
          /ghost@acme\.test/,
        );
        // Emails are stored lowercase.
        const added = await w.api("POST", `/v1/t/acme/users`, w.users.admin, {
          email: "Eve@ACME.Test",
          roles: ["approver"],
        });
        assert.equal(added.status, 201, JSON.stringify(added.json));
        assert.equal(added.json.email, "eve@acme.test");
        const dup = await w.api("POST", `/v1/t/acme/users`, w.users.admin, {
          email: "EVE@acme.test",
        });
        assert.equal(dup.status, 409);
        // An operator written in another case still excludes that user: claude is
        // re-enrolled, operated by "Alice@ACME.test".
        const key = generateKeyPair();
        await w.store.tx(async (t) => {
          await revokeIdentity(t, w.tenant, "claude", "control", w.clock.now());
          const row = await enrollIdentity(t, w.tenant, {
            name: "claude",
            kind: "mcp",
            publicKey: key.publicKey,
            operator: "Alice@ACME.test",
            actor: "control",
            now: w.clock.now(),
            via: "test",
          });
          assert.equal(row.operator, "alice@acme.test");
        });
        const bot = w.client({ name: "claude", kind: "mcp", key });
        const r = await bot.requestDeploy({ ...DEPLOY, environment: "production" });
        const res = await w.api(
          "POST",
          `/v1/t/acme/requests/${r.request_id}/approve`,
          w.users.alice,
          {},
        );
        assert.equal(res.json.error?.code, "SELF_APPROVAL", JSON.stringify(res.json));
        const approvers = await w.api(
          "GET",
          `/v1/t/acme/requests/${r.request_id}/approvers`,
          w.users.admin,
        );
        assert.ok(
          !JSON.stringify(approvers.json).includes(w.users.alice.id),
          JSON.stringify(approvers.json),
        );
      } finally {
        await w.close();
      }
    },
  );

  scenario(
    b,
    "token approvals are off for every environment unless the tenant opts in",
    async () => {
      const w = await world(b);
      try {
        const fresh = {
          name: "x",
          createdAt: 0,
          activePolicyHash: null,
          settings: { ...DEFAULT_SETTINGS },
        };
        for (const env of ["production", "staging", "prod", "Production", "dev", null]) {
          assert.equal(tokenApprovalsAllowed(fresh, env), false, String(env));
        }
        assert.equal(tokenApprovalsAllowed(fresh, "policy"), false);
        await enrollHost(w, "stage-7", { environment: "staging", service: "api" });
        let res = await w.api("PUT", "/v1/t/acme/settings", w.users.admin, { token_approvals: {} });
        assert.equal(res.status, 200, JSON.stringify(res.json));
        const r = await w.mcp.requestDeploy({
          ...DEPLOY,
          environment: "staging",
          targets: ["stage-7"],
        });
        const path = `/v1/t/acme/requests/${r.request_id}/approve`;
        res = await w.api("POST", path, w.users.alice, {});
        assert.equal(res.json.error?.code, "PROOF_REQUIRED", JSON.stringify(res.json));
        res = await w.api("PUT", "/v1/t/acme/settings", w.users.admin, {
          token_approvals: { staging: true },
        });
        assert.equal(res.status, 200);
        res = await w.api("POST", path, w.users.alice, {});
        assert.equal(res.json.status, "approved", JSON.stringify(res.json));
      } finally {
        await w.close();
      }
    },
  );

  scenario(
    b,
    "signed error replies to unauthenticated calls go to <tenant>/unknown with in_reply_to null",
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
        };
        const send = async (env: unknown, path = "signed/fleet.status") => {
          const res = await w.app.request(`/v1/t/acme/${path}`, {
            method: "POST",
            body: JSON.stringify(env),
          });
          return { status: res.status, body: await res.json() };
        };
        // Forged: the claimed iss and nonce (a victim's) are not echoed in a signed reply.
        const forged = await send(
          signEnvelope({ ...base, nonce: "victim-nonce", iss: "claude" }, generateKeyPair()),
        );
        assert.equal(forged.body.payload.error.code, "UNKNOWN_KEY");
        assert.equal(forged.body.payload.aud, "acme/unknown");
        assert.equal(forged.body.payload.in_reply_to, null);
        const tampered = signEnvelope({ ...base, nonce: "victim-2", iss: "claude" }, w.mcpKey);
        tampered.payload.nonce = "victim-3";
        const t2 = await send(tampered);
        assert.equal(t2.body.payload.aud, "acme/unknown");
        assert.equal(t2.body.payload.in_reply_to, null);
        // An enrollment with a bad token: the sender proved only that it holds some key.
        const key = generateKeyPair();
        const enroll = await send(
          signEnvelope({
            ...base,
            type: "enroll",
            nonce: "victim-4",
            iss: "web-1",
            token: "ive_bad.bad",
            name: "web-1",
            kind: "agent",
            public: encodeBase64Url(key.publicKey),
          }, key),
          "enroll",
        );
        assert.equal(enroll.body.payload.error.code, "TOKEN_USED");
        assert.equal(enroll.body.payload.aud, "acme/unknown");
        assert.equal(enroll.body.payload.in_reply_to, null);
        // Authenticated failures are still addressed to the caller and echo its nonce.
        const authed = await send(
          signEnvelope({ ...base, type: "heartbeat", nonce: "mine", iss: "claude" }, w.mcpKey),
          "signed/heartbeat",
        );
        assert.equal(authed.body.payload.error.code, "FORBIDDEN");
        assert.equal(authed.body.payload.aud, "acme/claude");
        assert.equal(authed.body.payload.in_reply_to, "mine");
        // No identity can be enrolled under the name unauthenticated refusals go to.
        const reserved = await w.api("POST", `/v1/t/acme/enrollment-tokens`, w.users.admin, {
          name: "unknown",
          kind: "agent",
          environment: "production",
        });
        assert.equal(reserved.status, 400, JSON.stringify(reserved.json));
        assert.match(reserved.json.error.message, /reserved/);
        // Clients still report the server's code for an unauthenticated refusal.
        const stranger = w.client({ name: "claude", kind: "mcp", key: generateKeyPair() });
        await rejects(stranger.fleetStatus(), "UNKNOWN_KEY");
        await rejects(
          enrollWithToken({
            baseUrl: BASE,
            tenant: "acme",
            name: "web-3",
            kind: "agent",
            token: "ive_bad.bad",
            key: generateKeyPair(),
            controlPublicKey: w.keys.publicKey,
            fetch: w.fetch,
            now: w.clock.now,
          }),
          "TOKEN_USED",
        );
      } finally {
        await w.close();
      }
    },
  );

  scenario(
    b,
    "a signed message refused by its handler has consumed its nonce: sending it again is REPLAYED",
    async () => {
      const w = await world(b);
      try {
        const now = Math.floor(w.clock.now() / 1000);
        const send = async (env: unknown, type: string) => {
          const res = await w.app.request(`/v1/t/acme/signed/${type}`, {
            method: "POST",
            body: JSON.stringify(env),
          });
          return (await res.json()).payload.error?.code as string | undefined;
        };
        const claims = {
          tenant: "acme",
          aud: "infraveil-control",
          iat: now,
          exp: now + 60,
          iss: "claude",
        };
        const invalid = signEnvelope({
          ...claims,
          type: "request.create",
          nonce: "n-invalid",
          action: "deploy",
          targets: [],
        }, w.mcpKey);
        assert.equal(await send(invalid, "request.create"), "BAD_REQUEST");
        assert.equal(await send(invalid, "request.create"), "REPLAYED");
        // Rate limited: the refused message cannot be sent again once the window passes.
        const res = await w.api("PUT", "/v1/t/acme/settings", w.users.admin, {
          rate_limit_per_minute: 1,
        });
        assert.equal(res.status, 200);
        const restart = (nonce: string) =>
          signEnvelope({
            ...claims,
            type: "request.create",
            nonce,
            action: "restart",
            environment: "production",
            service: "api",
            targets: ["web-1"],
          }, w.mcpKey);
        assert.equal(await send(restart("n-1"), "request.create"), undefined);
        const limited = restart("n-2");
        assert.equal(await send(limited, "request.create"), "RATE_LIMITED");
        w.clock.advance(30_000);
        assert.equal(await send(limited, "request.create"), "REPLAYED");
        // A message of the wrong type for its endpoint is consumed too.
        const wrong = signEnvelope({ ...claims, type: "fleet.status", nonce: "n-type" }, w.mcpKey);
        assert.equal(await send(wrong, "findings.list"), "WRONG_TYPE");
        assert.equal(await send(wrong, "fleet.status"), "REPLAYED");
      } finally {
        await w.close();
      }
    },
  );

  scenario(
    b,
    "a signed call's fields are its own: a __proto__ field is an unknown field, not a prototype",
    async () => {
      const w = await world(b);
      try {
        const now = Math.floor(w.clock.now() / 1000);
        // An own "__proto__" key, as JSON.parse makes it: every field hidden inside it would
        // otherwise be read through the body's prototype, past the unknown-field check.
        const payload = JSON.parse(
          JSON.stringify({
            type: "request.create",
            tenant: "acme",
            aud: "infraveil-control",
            iat: now,
            exp: now + 60,
            nonce: "proto-1",
            action: "restart",
            targets: ["web-1"],
          }).replace("{", '{"__proto__":{"environment":"production","service":"api"},'),
        );
        assert.ok(Object.hasOwn(payload, "__proto__"));
        for (const attempt of [1, 2]) {
          // The second time through the early verification (the key row is known by then).
          // Spreading keeps "__proto__" an own field, so it is signed and sent.
          const env = signEnvelope({ ...payload, nonce: `proto-${attempt}` }, w.mcpKey);
          assert.match(JSON.stringify(env), /"__proto__":\{"environment"/);
          const res = await w.app.request("/v1/t/acme/signed/request.create", {
            method: "POST",
            body: JSON.stringify(env),
          });
          const json = await res.json();
          assert.equal(res.status, 400, JSON.stringify(json));
          assert.equal(json.payload.error.code, "BAD_REQUEST");
          assert.match(json.payload.error.message, /unknown field "__proto__"/);
        }
      } finally {
        await w.close();
      }
    },
  );

  scenario(
    b,
    "a revoked key's calls are refused and stop paying for the early check",
    async () => {
      const w = await world(b);
      try {
        const message = (nonce: string) => {
          const now = Math.floor(w.clock.now() / 1000);
          return signEnvelope({
            type: "request.status",
            tenant: "acme",
            aud: "infraveil-control",
            iat: now,
            exp: now + 60,
            nonce,
            request_id: "none",
          }, w.mcpKey);
        };
        const send = async (env: unknown): Promise<{ code?: string; aud: string }> => {
          const res = await w.app.request("/v1/t/acme/signed/request.status", {
            method: "POST",
            body: JSON.stringify(env),
          });
          const json = await res.json();
          return { code: json.payload.error?.code, aud: json.payload.aud };
        };
        // The key is known (authenticated once), then revoked.
        assert.notEqual((await send(message("warm"))).code, "UNKNOWN_KEY");
        const revoked = await w.api(
          "POST",
          "/v1/t/acme/identities/claude/revoke",
          w.users.admin,
          {},
        );
        assert.equal(revoked.status, 200, JSON.stringify(revoked.json));
        const store = w.store as { tx: (...args: unknown[]) => Promise<unknown> };
        const tx = store.tx.bind(store);
        let transactions = 0;
        store.tx = (...args: unknown[]) => {
          transactions++;
          return tx(...args);
        };
        try {
          const first = await send(message("r-0"));
          assert.equal(first.code, "UNKNOWN_KEY");
          assert.equal(first.aud, "acme/unknown");
          const afterFirst = transactions;
          for (let i = 1; i <= 4; i++) {
            assert.equal((await send(message(`r-${i}`))).code, "UNKNOWN_KEY");
          }
          // Judged in one transaction and evidenced in one: the stale early check is not
          // retried once the rows were seen to change.
          assert.ok(
            transactions - afterFirst <= 4 * 2,
            `${transactions - afterFirst} transactions`,
          );
        } finally {
          store.tx = tx;
        }
      } finally {
        await w.close();
      }
    },
  );
}
