/**
 * Scenarios: the authority graph (who can approve, why, groups, nesting, delegation with
 * expiry), break-glass (holders, scope, notification, expiry, closing, post-review), policy
 * versions and their approval-gated activation, and the evidence export verifying as a ledger.
 *
 * @module
 */
import assert from "node:assert/strict";
import { parseAnchor, verifyLedger } from "@infraveil/ledger";
import { policyHash } from "@infraveil/policy";
import { type Backend, evidenceOf, FakeClock, scenario, TEST_POLICY, world } from "./_testing.ts";

const DEPLOY = {
  environment: "production",
  service: "api",
  targets: ["web-1"],
  files: ["src/app.ts"],
};

/** Registers the governance scenarios. */
export function governanceScenarios(b: Backend): void {
  scenario(
    b,
    "authority graph: who can approve request R, and why user U can (groups, nesting, delegation)",
    async () => {
      const w = await world(b);
      try {
        const r = await w.mcp.requestDeploy(DEPLOY);
        const who = await w.api(
          "GET",
          `/v1/t/acme/requests/${r.request_id}/approvers`,
          w.users.carol,
        );
        assert.equal(who.status, 200);
        assert.deepEqual(
          who.json.approvers.map((a: { email: string }) => a.email),
          ["admin@acme.test", "alice@acme.test", "bob@acme.test"],
          "dave operates the requesting identity and is excluded",
        );
        assert.match(
          who.json.approvers[1].path_text,
          /^alice@acme\.test → role approver → grant \* on \*\/\*$/,
        );
        let why = await w.api(
          "GET",
          `/v1/t/acme/requests/${r.request_id}/why/dave@acme.test`,
          w.users.carol,
        );
        assert.equal(why.json.can_approve, false);
        assert.match(why.json.reason, /operator/);
        why = await w.api(
          "GET",
          `/v1/t/acme/requests/${r.request_id}/why/carol@acme.test`,
          w.users.carol,
        );
        assert.equal(why.json.can_approve, false);
        // carol ∈ oncall ⊂ sre; sre holds role deployer; deployer may approve deploys on production/api.
        const admin = w.users.admin;
        for (
          const [path, body] of [
            ["/v1/t/acme/authority/groups", { name: "sre" }],
            ["/v1/t/acme/authority/groups", { name: "oncall" }],
            ["/v1/t/acme/authority/members", {
              group: "sre",
              member_kind: "group",
              member: "oncall",
            }],
            ["/v1/t/acme/authority/members", {
              group: "oncall",
              member_kind: "user",
              member: "carol@acme.test",
            }],
            ["/v1/t/acme/authority/assignments", {
              subject_kind: "group",
              subject: "sre",
              role: "deployer",
            }],
            ["/v1/t/acme/authority/grants", {
              role: "deployer",
              action: "deploy",
              environment: "production",
              service: "api",
            }],
          ] as const
        ) {
          const res = await w.api("POST", path, admin, body);
          assert.equal(res.status, 200, `${path}: ${JSON.stringify(res.json)}`);
        }
        why = await w.api(
          "GET",
          `/v1/t/acme/requests/${r.request_id}/why/carol@acme.test`,
          w.users.alice,
        );
        assert.equal(why.json.can_approve, true);
        assert.deepEqual(why.json.path.map((s: { type: string }) => s.type), [
          "user",
          "member_of",
          "member_of",
          "role",
          "grant",
        ]);
        assert.equal(
          why.json.path_text,
          "carol@acme.test → group oncall → group sre → role deployer → grant deploy on production/api",
        );
        // The grant is narrow: a deploy of another service is not covered.
        const other = await w.mcp.requestDeploy({ ...DEPLOY, service: "db", targets: ["db-1"] });
        why = await w.api(
          "GET",
          `/v1/t/acme/requests/${other.request_id}/why/carol@acme.test`,
          w.users.alice,
        );
        assert.equal(why.json.can_approve, false);
        // Delegation with expiry: bob delegates to olga for an hour.
        const d = await w.api("POST", "/v1/t/acme/authority/delegations", w.users.bob, {
          to: "olga@acme.test",
          ttl_seconds: 3600,
        });
        assert.equal(d.status, 200, JSON.stringify(d.json));
        why = await w.api(
          "GET",
          `/v1/t/acme/requests/${other.request_id}/why/olga@acme.test`,
          w.users.alice,
        );
        assert.equal(why.json.can_approve, true);
        assert.equal(why.json.path[1].type, "delegation");
        assert.match(why.json.path_text, /delegated by bob@acme\.test/);
        // Non-admins cannot change the graph; delegations always expire.
        assert.equal(
          (await w.api("POST", "/v1/t/acme/authority/groups", w.users.alice, { name: "x" })).status,
          403,
        );
        assert.equal(
          (await w.api("POST", "/v1/t/acme/authority/delegations", w.users.bob, {
            to: "olga@acme.test",
          })).status,
          400,
        );
        w.clock.advance(3601_000);
        why = await w.api(
          "GET",
          `/v1/t/acme/requests/${other.request_id}/why/olga@acme.test`,
          w.users.alice,
        );
        assert.equal(why.json.can_approve, false, "delegation expired");
        // Removing the grant removes the path.
        const grant = (await w.api("GET", "/v1/t/acme/authority", w.users.alice)).json.grants.find((
          g: { role: string },
        ) => g.role === "deployer");
        assert.equal(
          (await w.api("DELETE", `/v1/t/acme/authority/grants/${grant.id}`, admin)).status,
          200,
        );
        const r2 = await w.mcp.requestDeploy({ ...DEPLOY, reason: "again" });
        why = await w.api(
          "GET",
          `/v1/t/acme/requests/${r2.request_id}/why/carol@acme.test`,
          w.users.alice,
        );
        assert.equal(why.json.can_approve, false);
        const changes = (await evidenceOf(w.store, w.tenant)).filter((e) =>
          e.type === "authority.change"
        );
        assert.equal(changes.length, 8);
      } finally {
        await w.close();
      }
    },
  );

  scenario(
    b,
    "break-glass: holders only; scoped requests skip approval, never evidence; notify; close, expiry, post-review",
    async () => {
      const w = await world(b);
      try {
        const open = (user = w.users.olga, body: unknown = {
          justification: "database failover, api is down",
          scope: { actions: ["deploy", "restart"], services: ["api"] },
        }) => w.api("POST", "/v1/t/acme/breakglass", user, body);
        let res = await open(w.users.alice);
        assert.equal(res.status, 403);
        res = await open(w.users.olga, {
          justification: "x",
          scope: { actions: ["deploy"], services: ["api"] },
        });
        assert.equal(res.status, 400, "a justification is required");
        res = await open(w.users.olga, {
          justification: "database failover, api is down",
          scope: { actions: ["deploy"], services: ["api"] },
          duration_seconds: 999_999,
        });
        assert.equal(res.status, 400, "duration is capped");
        assert.equal(w.notifications.length, 0);
        res = await open();
        assert.equal(res.status, 201, JSON.stringify(res.json));
        const session = res.json;
        assert.equal(Date.parse(session.expires_at) - w.clock.now(), 3600_000, "1 h by default");
        assert.equal(w.notifications.length, 1);
        assert.equal(w.notifications[0].type, "breakglass.opened");
        assert.equal(w.notifications[0].holder, "olga@acme.test");
        // In scope: allowed without approvals, with a signed approval of basis break-glass.
        const r = await w.mcp.requestDeploy(DEPLOY);
        assert.equal(r.status, "allowed");
        assert.equal(r.break_glass, session.id);
        const [got] = await w.agents["web-1"].fetchApprovedActions();
        assert.equal(got.approval.basis, "break-glass");
        assert.equal(got.approval.break_glass, session.id);
        // Out of scope, or denied by policy: unchanged.
        assert.equal(
          (await w.mcp.requestDeploy({ ...DEPLOY, service: "db", targets: ["db-1"] })).status,
          "pending",
        );
        assert.equal((await w.mcp.requestDeploy({ ...DEPLOY, files: [".env"] })).status, "denied");
        // Closing by hand ends it; then a review by someone else is required.
        res = await w.api("POST", `/v1/t/acme/breakglass/${session.id}/close`, w.users.olga, {
          reason: "fixed",
        });
        assert.equal(res.json.active, false);
        assert.equal(res.json.ended_by, "hand");
        assert.equal(res.json.review_required, true);
        assert.equal(
          (await w.mcp.requestDeploy({ ...DEPLOY, params: { v: 2 } })).status,
          "pending",
        );
        let pending =
          (await w.api("GET", "/v1/t/acme/breakglass?review=pending", w.users.admin)).json.items;
        assert.deepEqual(pending.map((s: { id: string }) => s.id), [session.id]);
        assert.equal(
          (await w.api("POST", `/v1/t/acme/breakglass/${session.id}/review`, w.users.olga, {
            review: "mine",
          })).status,
          403,
        );
        res = await w.api("POST", `/v1/t/acme/breakglass/${session.id}/review`, w.users.alice, {
          review: "justified; follow-up ticket OPS-1",
        });
        assert.equal(res.status, 200);
        assert.equal(res.json.review_required, false);
        pending =
          (await w.api("GET", "/v1/t/acme/breakglass?review=pending", w.users.admin)).json.items;
        assert.equal(pending.length, 0);
        // Expiry ends a session too, and it then awaits review.
        res = await open(w.users.olga, {
          justification: "restart storm on api nodes",
          scope: { actions: ["restart"], services: ["*"] },
          duration_seconds: 120,
        });
        assert.equal(res.status, 201);
        const second = res.json.id;
        w.clock.advance(121_000);
        const view = (await w.api("GET", "/v1/t/acme/breakglass", w.users.admin)).json.items
          .find((s: { id: string }) => s.id === second);
        assert.equal(view.ended_by, "expiry");
        assert.equal(view.review_required, true);
        assert.equal(
          (await w.api("POST", `/v1/t/acme/breakglass/${view.id}/close`, w.users.olga, {})).status,
          409,
        );
        const types = (await evidenceOf(w.store, w.tenant)).map((e) => e.type);
        for (
          const t of [
            "breakglass.refused",
            "breakglass.open",
            "breakglass.close",
            "breakglass.review",
          ]
        ) {
          assert.ok(types.includes(t), t);
        }
        const decision = (await evidenceOf(w.store, w.tenant)).find((e) =>
          e.type === "request.decision" && e.data.break_glass
        );
        assert.equal(decision?.data.break_glass, session.id);
      } finally {
        await w.close();
      }
    },
  );

  scenario(
    b,
    "break-glass lifts a freeze window for actions in scope; a failing notify hook is evidenced",
    async () => {
      const clock = new FakeClock(Date.parse("2030-01-01T10:00:00Z"));
      const w = await world(b, {
        clock,
        deps: { notify: () => Promise.reject(new Error("pager down")) },
      });
      try {
        const restart = { environment: "production", service: "api", targets: ["web-1"] };
        assert.equal((await w.mcp.requestRestart(restart)).status, "denied");
        const res = await w.api("POST", "/v1/t/acme/breakglass", w.users.olga, {
          justification: "incident during the freeze",
          scope: { actions: ["restart"], services: ["api"] },
        });
        assert.equal(res.status, 201);
        const r = await w.mcp.requestRestart({ ...restart, reason: "again" });
        assert.equal(r.status, "allowed");
        const types = (await evidenceOf(w.store, w.tenant)).map((e) => e.type);
        assert.ok(types.includes("breakglass.notify_failed"));
      } finally {
        await w.close();
      }
    },
  );

  scenario(
    b,
    "policy versions: activation is an approval-gated change; agents learn the hash from heartbeats",
    async () => {
      const w = await world(b);
      try {
        const first = await w.agents["web-1"].heartbeat({
          version: "1.0.0",
          policy_hash: policyHash(TEST_POLICY),
        });
        assert.equal(first.active_policy_hash, policyHash(TEST_POLICY));
        assert.equal(first.policy_current, true);
        const next = TEST_POLICY.replace("approvals 2", "approvals 3");
        const bad = await w.api("POST", "/v1/t/acme/policies", w.users.admin, { text: "policy {" });
        assert.equal(bad.status, 422);
        assert.equal(bad.json.error.code, "INVALID_POLICY");
        const p = await w.api("POST", "/v1/t/acme/policies", w.users.admin, { text: next });
        assert.equal(p.status, 201, JSON.stringify(p.json));
        assert.equal(p.json.policy_hash, policyHash(next));
        const again = await w.api("POST", "/v1/t/acme/policies", w.users.admin, { text: next });
        assert.equal(again.json.request_id, p.json.request_id, "folded");
        const path = `/v1/t/acme/requests/${p.json.request_id}/approve`;
        let res = await w.api("POST", path, w.users.admin, {});
        assert.equal(res.json.error.code, "SELF_APPROVAL");
        res = await w.api("POST", path, w.users.alice, {});
        assert.equal(
          res.json.error.code,
          "PROOF_REQUIRED",
          "policy activation refuses token approvals by default",
        );
        assert.equal(
          (await w.agents["web-1"].heartbeat({ version: "1.0.0" })).active_policy_hash,
          policyHash(TEST_POLICY),
        );
        await w.api("PUT", "/v1/t/acme/settings", w.users.admin, {
          token_approvals: { policy: true },
        });
        res = await w.api("POST", path, w.users.alice, {});
        assert.equal(res.json.status, "approved");
        const hb = await w.agents["web-1"].heartbeat({
          version: "1.0.0",
          policy_hash: policyHash(TEST_POLICY),
        });
        assert.equal(hb.active_policy_hash, policyHash(next));
        assert.equal(hb.policy_current, false);
        assert.equal((await w.agents["web-1"].getActivePolicy()).text, next);
        assert.equal(
          (await w.mcp.requestDeploy(DEPLOY)).approvals_needed,
          3,
          "the new version decides",
        );
        const list = (await w.api("GET", "/v1/t/acme/policies", w.users.carol)).json;
        assert.equal(list.active, policyHash(next));
        assert.deepEqual(list.items.map((x: { status: string }) => x.status).sort(), [
          "active",
          "superseded",
        ]);
        const check = await w.mcp.checkPolicy({ action: "deploy", ...DEPLOY });
        assert.equal(check.decision, "approval_required");
        assert.equal(check.policy_hash, policyHash(next));
        const types = (await evidenceOf(w.store, w.tenant)).map((e) => e.type);
        assert.ok(types.includes("policy.propose"));
        assert.equal(types.filter((t) => t === "policy.activate").length, 2);
      } finally {
        await w.close();
      }
    },
  );

  scenario(
    b,
    "evidence: the tenant's log exports as a ledger that verifies, and its head matches",
    async () => {
      const w = await world(b);
      try {
        await w.api("PUT", "/v1/t/acme/settings", w.users.admin, {
          token_approvals: { staging: true },
        });
        const r = await w.mcp.requestDeploy({
          ...DEPLOY,
          environment: "staging",
          targets: ["stage-1"],
        });
        await w.api("POST", `/v1/t/acme/requests/${r.request_id}/approve`, w.users.alice, {});
        const [a] = await w.agents["stage-1"].fetchApprovedActions();
        await w.agents["stage-1"].reportExecution({
          approval_id: a.approval.approval_id,
          status: "succeeded",
        });
        assert.equal((await w.api("GET", "/v1/t/acme/evidence", w.users.alice)).status, 403);
        const res = await w.app.request("/v1/t/acme/evidence", {
          headers: { authorization: `Bearer ${w.users.admin.token}` },
        });
        assert.equal(res.status, 200);
        const text = await res.text();
        const head = (await w.api("GET", "/v1/t/acme/evidence/head", w.users.alice)).json;
        const report = await verifyLedger([{
          name: "acme.jsonl",
          data: new TextEncoder().encode(text),
        }], {
          head: parseAnchor(head.anchor),
        });
        assert.ok(report.ok, report.problem?.message);
        assert.equal(report.size, head.size);
        const chain = text.trim().split("\n").map((l) => JSON.parse(l).type);
        for (
          const t of [
            "tenant.create",
            "policy.activate",
            "request.decision",
            "request.approve",
            "request.approved",
            "approval.issued",
            "approval.claimed",
            "execution.report",
            "request.executed",
          ]
        ) {
          assert.ok(chain.includes(t), t);
        }
        // Tampering with one line is caught by the verifier.
        const lines = text.trim().split("\n");
        lines[5] = lines[5].replace('"actor":"', '"actor":"x');
        const bad = await verifyLedger([{
          name: "acme.jsonl",
          data: new TextEncoder().encode(lines.join("\n") + "\n"),
        }]);
        assert.equal(bad.ok, false);
      } finally {
        await w.close();
      }
    },
  );
}
