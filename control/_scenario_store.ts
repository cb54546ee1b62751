/**
 * Scenarios: migrations, tenant scoping at the storage layer, single-use claims, and several
 * control-plane instances sharing one database (PostgreSQL).
 *
 * @module
 */
import assert from "node:assert/strict";
import { signEnvelope } from "@infraveil/trust";
import { createControlApp } from "./app.ts";
import { ControlClient } from "./client.ts";
import { MIGRATIONS } from "./_migrations.ts";
import { type Backend, BASE, evidenceLines, scenario, world } from "./_testing.ts";

/** Registers the storage scenarios (both backends). */
export function storeScenarios(b: Backend): void {
  scenario(b, "migrations are versioned, recorded and applied once", async () => {
    const db = await b.open();
    try {
      assert.deepEqual(await db.store.migrations(), MIGRATIONS.map((m) => m.version));
      const again = await db.another();
      assert.deepEqual(await again.migrations(), MIGRATIONS.map((m) => m.version));
    } finally {
      await db.cleanup();
    }
  });

  scenario(
    b,
    "storage is tenant-scoped: the same ids in two tenants never meet; claims and nonces are single-use",
    async () => {
      const w = await world(b);
      try {
        const { initTenant } = await import("./tenant.ts");
        await initTenant(w.store, {
          tenant: "globex",
          adminEmail: "a@globex.test",
          now: w.clock.now,
        });
        const r = await w.mcp.requestRestart({
          environment: "production",
          service: "api",
          targets: ["web-1"],
        });
        await w.store.tx(async (t) => {
          assert.equal(await t.getRequest("globex", r.request_id), null);
          assert.ok(await t.getRequest("acme", r.request_id));
          assert.equal((await t.listRequests("globex", { limit: 10 })).length, 0);
          assert.equal(await t.getIdentityByKid("globex", w.mcpKey.kid), null);
          assert.equal(await t.insertNonce("acme", "n", 1), true);
          assert.equal(await t.insertNonce("acme", "n", 1), false);
          assert.equal(await t.insertNonce("globex", "n", 1), true, "nonces are per tenant");
          const a = await t.getSignedApprovalByRequest("acme", r.request_id);
          assert.ok(a);
          assert.equal(
            await t.claimApprovalTarget("globex", a.id, "web-1", w.clock.now(), "k"),
            false,
          );
          assert.equal(
            await t.claimApprovalTarget("acme", a.id, "web-1", w.clock.now(), "k"),
            true,
          );
          assert.equal(
            await t.claimApprovalTarget("acme", a.id, "web-1", w.clock.now(), "k"),
            false,
          );
        });
        // A failed transaction leaves nothing behind.
        await assert.rejects(w.store.tx(async (t) => {
          await t.insertNonce("acme", "rolled-back", 1);
          throw new Error("boom");
        }));
        assert.equal(await w.store.tx((t) => t.insertNonce("acme", "rolled-back", 1)), true);
      } finally {
        await w.close();
      }
    },
  );
}

/** Registers the scenarios of concurrent signed calls (group commit on SQLite). */
export function concurrencyScenarios(b: Backend): void {
  scenario(
    b,
    "concurrent signed calls: each is judged alone; a replay, a forgery and a refusal change nothing of the others",
    async () => {
      const w = await world(b);
      try {
        await w.api("PUT", "/v1/t/acme/settings", w.users.admin, { rate_limit_per_minute: 1000 });
        const now = Math.floor(w.clock.now() / 1000);
        const message = (i: number, extra: Record<string, unknown> = {}) =>
          signEnvelope({
            type: "request.create",
            tenant: "acme",
            aud: "infraveil-control",
            iat: now,
            exp: now + 60,
            nonce: `n-${i}`,
            iss: "claude",
            action: "deploy",
            environment: "production",
            service: "api",
            targets: ["web-1"],
            files: ["a.ts"],
            params: { i },
            ...extra,
          }, w.mcpKey);
        const good = Array.from({ length: 12 }, (_, i) => message(i));
        const forged = { ...message(100), sig: message(101).sig };
        const refused = message(102, { targets: ["db-1"] }); // host of another service
        const bodies = [...good, good[3], forged, refused, good[7]].map((m) => JSON.stringify(m));
        // Sent together, so SQLite runs them as one group commit.
        const replies = await Promise.all(bodies.map(async (body) => {
          const res = await w.app.request("/v1/t/acme/signed/request.create", {
            method: "POST",
            body,
          });
          const json = await res.json();
          return { status: res.status, code: json.payload?.error?.code ?? null, json };
        }));
        // A message sent twice at once (the same nonce) is accepted once, whichever copy wins:
        // the other is a replay.
        for (const [a, b] of [[3, 12], [7, 15]]) {
          assert.deepEqual(
            [replies[a], replies[b]].map((r) => `${r.status} ${r.code}`).sort(),
            ["200 null", "401 REPLAYED"],
          );
        }
        const ok = [...replies.slice(0, 12), replies[12], replies[15]].filter((r) =>
          r.status === 200
        );
        assert.equal(ok.length, 12, JSON.stringify(replies.map((r) => r.code)));
        const ids = ok.map((r) => r.json.payload.result.request_id as string);
        assert.equal(new Set(ids).size, 12);
        assert.deepEqual(replies.slice(13, 15).map((r) => [r.status, r.code]), [
          [401, "BAD_SIGNATURE"],
          [403, "FORBIDDEN"],
        ]);
        await w.store.tx(async (t) => {
          for (const id of ids) assert.ok(await t.getRequest("acme", id), id);
          assert.equal((await t.listRequests("acme", { limit: 100 })).length, 12);
          // The refused message keeps its nonce; the forged one left none.
          assert.equal(await t.insertNonce("acme", "n-102", now + 60), false);
          assert.equal(await t.insertNonce("acme", "n-100", now + 60), true);
        });
        const lines = await evidenceLines(w.store, "acme");
        const types = lines.map((l) => JSON.parse(l).type as string);
        assert.equal(types.filter((t) => t === "request.decision").length, 12);
        assert.equal(types.filter((t) => t === "auth.failure").length, 3);
        const { verifyLedger } = await import("@infraveil/ledger");
        const report = await verifyLedger([{
          name: "e",
          data: new TextEncoder().encode(lines.join("\n") + "\n"),
        }]);
        assert.ok(report.ok, report.problem?.message);
        // Identical requests racing: one is created, the others fold into it (on PostgreSQL
        // the losers' inserts, sent with their COMMIT, fail and their transactions rerun).
        const same = Array.from(
          { length: 6 },
          (_, i) => JSON.stringify(message(200 + i, { params: { same: true } })),
        );
        const folds = await Promise.all(same.map(async (body) => {
          const res = await w.app.request("/v1/t/acme/signed/request.create", {
            method: "POST",
            body,
          });
          assert.equal(res.status, 200);
          return (await res.json()).payload.result;
        }));
        assert.equal(new Set(folds.map((f) => f.request_id)).size, 1);
        assert.deepEqual(folds.map((f) => f.folded).sort(), [false, true, true, true, true, true]);
        const after = (await evidenceLines(w.store, "acme")).map((l) => JSON.parse(l));
        assert.equal(
          after.filter((e) =>
            e.type === "request.folded" && e.data.request_id === folds[0].request_id
          )
            .length,
          5,
        );
        // A grouped transaction that throws undoes only its own changes.
        const results = await Promise.allSettled([
          w.store.tx((t) => t.insertNonce("acme", "g-1", 1), { group: true }),
          w.store.tx(async (t) => {
            await t.insertNonce("acme", "g-2", 1);
            throw new Error("boom");
          }, { group: true }),
          w.store.tx((t) => t.insertNonce("acme", "g-3", 1), { group: true }),
        ]);
        assert.deepEqual(results.map((r) => r.status), ["fulfilled", "rejected", "fulfilled"]);
        await w.store.tx(async (t) => {
          assert.equal(await t.insertNonce("acme", "g-1", 1), false);
          assert.equal(await t.insertNonce("acme", "g-2", 1), true);
          assert.equal(await t.insertNonce("acme", "g-3", 1), false);
        });
      } finally {
        await w.close();
      }
    },
  );
}

/** Registers the scenarios of several instances on one database (PostgreSQL only). */
export function multiInstanceScenarios(b: Backend): void {
  scenario(b, "two instances on one database never hand out one approval twice", async () => {
    const w = await world(b);
    try {
      const store2 = await w.db.another();
      const app2 = createControlApp({ store: store2, keys: w.keys, now: w.clock.now });
      const fetch2: typeof fetch = (input, init) =>
        Promise.resolve(app2.request(String(input), init));
      const web1b = new ControlClient({
        baseUrl: BASE,
        identity: {
          tenant: "acme",
          name: "web-1",
          kind: "agent",
          kid: w.agentKeys["web-1"].kid,
          privateKey: w.agentKeys["web-1"].privateKey,
        },
        controlPublicKey: w.keys.publicKey,
        fetch: fetch2,
        now: w.clock.now,
      });
      await w.api("PUT", "/v1/t/acme/settings", w.users.admin, { rate_limit_per_minute: 1000 });
      let total = 0;
      for (let round = 0; round < 5; round++) {
        for (let i = 0; i < 4; i++) {
          const r = await w.mcp.requestRestart({
            environment: "production",
            service: "api",
            targets: ["web-1"],
            params: { round, i },
          });
          assert.equal(r.status, "allowed");
        }
        const [x, y, z] = await Promise.all([
          w.agents["web-1"].fetchApprovedActions(),
          web1b.fetchApprovedActions(),
          web1b.fetchApprovedActions(),
        ]);
        const ids = [...x, ...y, ...z].map((a) => a.approval.approval_id);
        assert.equal(ids.length, 4, `round ${round}: each approval handed out exactly once`);
        assert.equal(new Set(ids).size, 4);
        total += ids.length;
      }
      assert.equal(total, 20);
      // Racing approvals on two instances: approved once, one signed approval.
      await w.api("PUT", "/v1/t/acme/settings", w.users.admin, {
        token_approvals: { production: true, staging: true },
      });
      for (const env of ["production", "staging"]) {
        const r = await w.mcp.requestDeploy({
          environment: env,
          service: "api",
          targets: [env === "production" ? "web-1" : "stage-1"],
          files: ["a.ts"],
        });
        const approve2 = (token: string) =>
          Promise.resolve(app2.request(`/v1/t/acme/requests/${r.request_id}/approve`, {
            method: "POST",
            headers: { authorization: `Bearer ${token}` },
            body: "{}",
          })).then((res) => res.json());
        const results = await Promise.all([
          w.api("POST", `/v1/t/acme/requests/${r.request_id}/approve`, w.users.alice, {}).then((
            x,
          ) => x.json),
          approve2(w.users.bob.token),
        ]);
        const outcomes = results.map((x: { status?: string; error?: { code: string } }) =>
          x.status ?? x.error!.code
        ).sort();
        assert.deepEqual(
          outcomes,
          env === "production" ? ["approved", "pending"] : ["NOT_PENDING", "approved"],
        );
      }
      const claimed = [
        ...await w.agents["web-1"].fetchApprovedActions(),
        ...await web1b.fetchApprovedActions(),
        ...await w.agents["stage-1"].fetchApprovedActions(),
      ];
      assert.equal(claimed.length, 2);
      // A nonce used on one instance is a replay on the other.
      const now = Math.floor(w.clock.now() / 1000);
      const env = signEnvelope({
        type: "fleet.status",
        tenant: "acme",
        aud: "infraveil-control",
        iat: now,
        exp: now + 60,
        nonce: "shared",
      }, w.mcpKey);
      const send = (app: typeof app2) =>
        Promise.resolve(
          app.request("/v1/t/acme/signed/fleet.status", {
            method: "POST",
            body: JSON.stringify(env),
          }),
        )
          .then((r) => r.status);
      const statuses = (await Promise.all([send(w.app), send(app2)])).sort();
      assert.deepEqual(statuses, [200, 401]);
      // Both instances append to one evidence log that still verifies.
      const { verifyLedger } = await import("@infraveil/ledger");
      const lines = await evidenceLines(w.store, "acme");
      const report = await verifyLedger([{
        name: "e",
        data: new TextEncoder().encode(lines.join("\n") + "\n"),
      }]);
      assert.ok(report.ok, report.problem?.message);
    } finally {
      await w.close();
    }
  });

  scenario(b, "instances starting together apply each migration once", async () => {
    const db = await b.open();
    try {
      const stores = await Promise.all([db.another(), db.another(), db.another()]);
      for (const s of stores) {
        assert.deepEqual(
          await s.migrations(),
          MIGRATIONS.map((m) => m.version),
        );
      }
    } finally {
      await db.cleanup();
    }
  });
}
