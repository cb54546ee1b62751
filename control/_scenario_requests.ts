/**
 * Scenarios: requests, decisions, folding, rate limits, approvals (N-of-M, distinct humans,
 * self-approval, expiry, racing), signed approvals (binding, single use), execution reports,
 * machine identities refused by every approval endpoint, and a crash between "approved" and
 * "recorded".
 *
 * @module
 */
import assert from "node:assert/strict";
import { verifyLedger } from "@infraveil/ledger";
import { generateKeyPair, signEnvelope } from "@infraveil/trust";
import { ControlClientError, verifySignedApproval } from "./client.ts";
import { type Backend, evidenceLines, evidenceOf, scenario, world } from "./_testing.ts";

const DEPLOY = {
  environment: "production",
  service: "api",
  targets: ["web-1"],
  files: ["src/app.ts"],
  params: { version: "1.4.2" },
};

async function rejects(p: Promise<unknown>, code: string): Promise<ControlClientError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ControlClientError, `expected ControlClientError, got ${e}`);
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected ${code}`);
}

/** Registers the request and approval scenarios. */
export function requestScenarios(b: Backend): void {
  scenario(
    b,
    "request.create decides at once: allowed, pending, denied — each evidenced",
    async () => {
      const w = await world(b);
      try {
        const allowed = await w.mcp.requestRestart({
          environment: "production",
          service: "api",
          targets: ["web-1"],
        });
        assert.equal(allowed.status, "allowed");
        assert.equal(allowed.approvals_needed, 0);
        const pending = await w.mcp.requestDeploy(DEPLOY);
        assert.equal(pending.status, "pending");
        assert.equal(pending.approvals_needed, 2);
        assert.match(pending.dashboard_url, new RegExp(`/requests/${pending.request_id}$`));
        const denied = await w.mcp.requestDeploy({ ...DEPLOY, files: [".env"] });
        assert.equal(denied.status, "denied");
        assert.ok(denied.reasons.some((r) => r.rule === "deploy.block_paths"));
        const deniedAction = await w.mcp.createRequest({
          action: "delete",
          environment: "production",
          targets: ["web-1"],
        });
        assert.equal(deniedAction.status, "denied");
        const ev = await evidenceOf(w.store, w.tenant);
        const decisions = ev.filter((e) => e.type === "request.decision");
        assert.deepEqual(decisions.map((e) => e.data.status), [
          "allowed",
          "pending",
          "denied",
          "denied",
        ]);
        assert.equal(decisions[0].actor, "mcp:claude");
        assert.equal(decisions[0].data.operator, "dave@acme.test");
        // Bad input names the field and leaves nothing behind.
        const before = ev.length;
        const e = await rejects(
          w.mcp.createRequest({ action: "deploy", targets: [] }),
          "BAD_REQUEST",
        );
        assert.match(e.message, /targets/);
        await rejects(w.mcp.createRequest({ action: "deploy", targets: ["web 1"] }), "BAD_REQUEST");
        assert.equal((await evidenceOf(w.store, w.tenant)).length, before);
      } finally {
        await w.close();
      }
    },
  );

  scenario(
    b,
    "an allowed request yields one signed approval per target host, usable once; results reported",
    async () => {
      const w = await world(b);
      try {
        const r = await w.mcp.requestRestart({
          environment: "production",
          service: "api",
          targets: ["web-2", "web-1"],
        });
        assert.equal(r.status, "allowed");
        const got1 = await w.agents["web-1"].fetchApprovedActions();
        assert.equal(got1.length, 1);
        const a = got1[0].approval;
        assert.equal(a.request_id, r.request_id);
        assert.equal(a.action_hash, r.action_hash);
        assert.deepEqual(a.targets, ["web-1", "web-2"]);
        assert.equal(a.basis, "policy");
        assert.deepEqual(await w.agents["web-1"].fetchApprovedActions(), [], "single use per host");
        const got2 = await w.agents["web-2"].fetchApprovedActions();
        assert.equal(got2.length, 1);
        // The approval is bound to its targets: another host cannot use it.
        await assert.rejects(
          verifySignedApproval(got1[0].envelope, {
            controlPublicKey: w.keys.publicKey,
            tenant: w.tenant,
            host: "web-3",
            now: w.clock.now,
            checkNonce: () => true,
          }),
          /does not name host "web-3"/,
        );
        // Tampering with the action breaks the signature.
        const forged = structuredClone(got1[0].envelope);
        forged.payload.action.targets = ["web-1", "web-2", "db-1"];
        forged.payload.targets = ["web-1", "web-2", "db-1"];
        await assert.rejects(
          verifySignedApproval(forged, {
            controlPublicKey: w.keys.publicKey,
            tenant: w.tenant,
            host: "db-1",
            now: w.clock.now,
            checkNonce: () => true,
          }),
          /signature/,
        );
        const rep1 = await w.agents["web-1"].reportExecution({
          approval_id: a.approval_id,
          status: "succeeded",
          output: "ok",
        });
        assert.equal(rep1.request_status, null);
        await rejects(
          w.agents["web-1"].reportExecution({ approval_id: a.approval_id, status: "succeeded" }),
          "CONFLICT",
        );
        const rep2 = await w.agents["web-2"].reportExecution({
          approval_id: a.approval_id,
          status: "failed",
          output: "boom",
        });
        assert.equal(rep2.request_status, "failed");
        const view = await w.mcp.getRequest(r.request_id);
        assert.equal(view.status, "failed");
        assert.equal(view.approval?.targets.length, 2);
        const types = (await evidenceOf(w.store, w.tenant)).map((e) => e.type);
        for (
          const t of [
            "request.decision",
            "approval.issued",
            "approval.claimed",
            "execution.report",
            "request.executed",
          ]
        ) {
          assert.ok(types.includes(t), `evidence has ${t}`);
        }
        // An agent that never claimed cannot report.
        const other = await w.mcp.requestRestart({
          environment: "production",
          service: "api",
          targets: ["web-1"],
        });
        const view2 = await w.mcp.getRequest(other.request_id);
        await rejects(
          w.agents["web-2"].reportExecution({
            approval_id: view2.approval!.approval_id,
            status: "succeeded",
          }),
          "CONFLICT",
        );
      } finally {
        await w.close();
      }
    },
  );

  scenario(
    b,
    "identical pending requests fold into one; requests are rate limited per identity",
    async () => {
      const w = await world(b);
      try {
        const a = await w.mcp.requestDeploy(DEPLOY);
        const b2 = await w.mcp.requestDeploy(DEPLOY);
        assert.equal(b2.request_id, a.request_id);
        assert.equal(b2.folded, true);
        const c = await w.mcp.requestDeploy({ ...DEPLOY, params: { version: "1.4.3" } });
        assert.notEqual(
          c.request_id,
          a.request_id,
          "a different exact action is a different request",
        );
        assert.equal(
          (await w.api("GET", `/v1/t/acme/requests?status=pending`, w.users.admin)).json.items
            .length,
          2,
        );
        const s = await w.api("PUT", "/v1/t/acme/settings", w.users.admin, {
          rate_limit_per_minute: 2,
        });
        assert.equal(s.status, 200, JSON.stringify(s.json));
        w.clock.advance(60_000);
        await w.mcp.requestRestart({
          environment: "production",
          service: "api",
          targets: ["web-1"],
        });
        await w.mcp.requestRestart({
          environment: "production",
          service: "api",
          targets: ["web-2"],
        });
        const e = await rejects(
          w.mcp.requestRestart({
            environment: "production",
            service: "api",
            targets: ["web-1", "web-2"],
          }),
          "RATE_LIMITED",
        );
        assert.equal(e.status, 429);
        w.clock.advance(60_000);
        await w.mcp.requestRestart({
          environment: "production",
          service: "api",
          targets: ["web-1", "web-2"],
        });
      } finally {
        await w.close();
      }
    },
  );

  scenario(
    b,
    "approvals: humans only, distinct, N-of-M, never the requester's operator; token approvals gated per environment",
    async () => {
      let proofs = 0;
      const w = await world(b, {
        deps: {
          verifyApprovalProof: ({ proof }) => {
            proofs++;
            return proof === "good-assertion" ? "passkey" : null;
          },
        },
      });
      try {
        const r = await w.mcp.requestDeploy(DEPLOY);
        const path = `/v1/t/acme/requests/${r.request_id}`;
        // Production refuses token-only approvals by default.
        let res = await w.api("POST", `${path}/approve`, w.users.alice, {});
        assert.equal(res.status, 403);
        assert.equal(res.json.error.code, "PROOF_REQUIRED");
        res = await w.api("POST", `${path}/approve`, w.users.alice, { proof: "bad" });
        assert.equal(res.json.error.code, "BAD_PROOF");
        res = await w.api("POST", `${path}/approve`, w.users.alice, { proof: "good-assertion" });
        assert.equal(res.status, 200, JSON.stringify(res.json));
        assert.equal(res.json.status, "pending");
        assert.equal(res.json.approvals_needed, 1);
        assert.equal(proofs, 2);
        // Same approver twice does not count twice.
        res = await w.api("POST", `${path}/approve`, w.users.alice, { proof: "good-assertion" });
        assert.equal(res.json.error.code, "ALREADY_VOTED");
        // The operator of the requesting MCP identity can never approve.
        res = await w.api("POST", `${path}/approve`, w.users.dave, { proof: "good-assertion" });
        assert.equal(res.json.error.code, "SELF_APPROVAL");
        // No grant, no approval.
        res = await w.api("POST", `${path}/approve`, w.users.carol, { proof: "good-assertion" });
        assert.equal(res.json.error.code, "NOT_ELIGIBLE");
        // No token, no approval.
        res = await w.api("POST", `${path}/approve`, null, { proof: "good-assertion" });
        assert.equal(res.status, 401);
        assert.deepEqual(
          await w.agents["web-1"].fetchApprovedActions(),
          [],
          "nothing to run while pending",
        );
        // Allow token approvals for production, then the second approver completes it.
        res = await w.api("PUT", "/v1/t/acme/settings", w.users.admin, {
          token_approvals: { production: true },
        });
        assert.equal(res.status, 200);
        res = await w.api("POST", `${path}/approve`, w.users.bob, { comment: "lgtm" });
        assert.equal(res.status, 200, JSON.stringify(res.json));
        assert.equal(res.json.status, "approved");
        assert.match(res.json.approval_id, /^apv_/);
        const got = await w.agents["web-1"].fetchApprovedActions();
        assert.equal(got.length, 1);
        assert.deepEqual(got[0].approval.approved_by.sort(), ["alice@acme.test", "bob@acme.test"]);
        assert.equal(got[0].approval.basis, "approvals");
        assert.deepEqual(got[0].approval.action.params, { version: "1.4.2" });
        const view = (await w.api("GET", path, w.users.carol)).json;
        assert.deepEqual(view.votes.map((v: { method: string }) => v.method).sort(), [
          "passkey",
          "token",
        ]);
        // Late votes are refused.
        res = await w.api("POST", `${path}/reject`, w.users.admin, {});
        assert.equal(res.json.error.code, "NOT_PENDING");
        const refused = (await evidenceOf(w.store, w.tenant)).filter((e) =>
          e.type === "approval.refused"
        );
        assert.deepEqual(refused.map((e) => e.data.code), [
          "PROOF_REQUIRED",
          "BAD_PROOF",
          "SELF_APPROVAL",
          "NOT_ELIGIBLE",
        ]);
      } finally {
        await w.close();
      }
    },
  );

  scenario(
    b,
    "agent and MCP identities are refused by every approval endpoint, and the attempt is evidenced",
    async () => {
      const w = await world(b);
      try {
        const r = await w.mcp.requestDeploy({
          ...DEPLOY,
          environment: "staging",
          targets: ["stage-1"],
        });
        assert.equal(r.status, "pending");
        // 1. A signed envelope from the MCP identity to the human approve endpoint.
        const now = Math.floor(w.clock.now() / 1000);
        for (
          const [key, name] of [[w.mcpKey, "claude"], [w.agentKeys["web-1"], "web-1"]] as const
        ) {
          for (const decision of ["approve", "reject"]) {
            const env = signEnvelope({
              type: `request.${decision}`,
              tenant: "acme",
              aud: "infraveil-control",
              iat: now,
              exp: now + 60,
              nonce: crypto.randomUUID(),
              iss: name,
              request_id: r.request_id,
            }, key);
            const res = await w.api(
              "POST",
              `/v1/t/acme/requests/${r.request_id}/${decision}`,
              null,
              env,
            );
            assert.equal(res.status, 403);
            assert.equal(res.json.error.code, "HUMAN_ONLY");
          }
        }
        // 2. The signed approve/reject message types.
        await rejects(w.mcp.call("request.approve", { request_id: r.request_id }), "HUMAN_ONLY");
        await rejects(
          w.agents["web-1"].call("request.reject", { request_id: r.request_id }),
          "HUMAN_ONLY",
        );
        const view = await w.mcp.getRequest(r.request_id);
        assert.equal(view.status, "pending");
        assert.equal(view.votes.length, 0);
        const refused = (await evidenceOf(w.store, w.tenant)).filter((e) =>
          e.type === "approval.refused"
        );
        assert.equal(refused.length, 6);
        assert.ok(refused.some((e) => e.actor === "mcp:claude"));
        assert.ok(refused.some((e) => e.actor === "agent:web-1"));
        assert.ok(refused.every((e) => e.data.code === "HUMAN_ONLY"));
      } finally {
        await w.close();
      }
    },
  );

  scenario(b, "a rejection ends the request; votes and pending requests expire", async () => {
    const w = await world(b);
    try {
      await w.api("PUT", "/v1/t/acme/settings", w.users.admin, {
        token_approvals: { production: true },
        approval_ttl_seconds: 600,
        request_ttl_seconds: 3600,
      });
      const r1 = await w.mcp.requestDeploy(DEPLOY);
      let res = await w.api("POST", `/v1/t/acme/requests/${r1.request_id}/reject`, w.users.bob, {
        comment: "no",
      });
      assert.equal(res.json.status, "rejected");
      res = await w.api("POST", `/v1/t/acme/requests/${r1.request_id}/approve`, w.users.alice, {});
      assert.equal(res.json.error.code, "NOT_PENDING");
      // Vote expiry: alice's approval stops counting.
      const r2 = await w.mcp.requestDeploy({ ...DEPLOY, params: { version: "2" } });
      res = await w.api("POST", `/v1/t/acme/requests/${r2.request_id}/approve`, w.users.alice, {});
      assert.equal(res.json.approvals_needed, 1);
      w.clock.advance(601_000);
      res = await w.api("POST", `/v1/t/acme/requests/${r2.request_id}/approve`, w.users.bob, {});
      assert.equal(res.json.status, "pending", "alice's vote expired");
      assert.equal(res.json.approvals_needed, 1);
      res = await w.api("POST", `/v1/t/acme/requests/${r2.request_id}/approve`, w.users.admin, {});
      assert.equal(res.json.status, "approved");
      // Request expiry.
      const r3 = await w.mcp.requestDeploy({ ...DEPLOY, params: { version: "3" } });
      w.clock.advance(3601_000);
      res = await w.api("POST", `/v1/t/acme/requests/${r3.request_id}/approve`, w.users.alice, {});
      assert.equal(res.json.error.code, "NOT_PENDING");
      assert.equal((await w.mcp.getRequest(r3.request_id)).status, "expired");
      // A new identical request is a new request once the old one expired.
      const r4 = await w.mcp.requestDeploy({ ...DEPLOY, params: { version: "3" } });
      assert.notEqual(r4.request_id, r3.request_id);
      assert.equal(r4.folded, false);
      const types = (await evidenceOf(w.store, w.tenant)).map((e) => e.type);
      assert.ok(types.includes("request.rejected"));
      assert.ok(types.includes("request.expired"));
    } finally {
      await w.close();
    }
  });

  scenario(
    b,
    "two approvals racing: the request is approved once and one signed approval exists",
    async () => {
      const w = await world(b);
      try {
        await w.api("PUT", "/v1/t/acme/settings", w.users.admin, {
          token_approvals: { production: true, staging: true },
        });
        for (let i = 0; i < 3; i++) {
          // N = 2 (production): alice and bob at the same time → approved, once.
          const r = await w.mcp.requestDeploy({ ...DEPLOY, params: { i } });
          const [x, y] = await Promise.all([
            w.api("POST", `/v1/t/acme/requests/${r.request_id}/approve`, w.users.alice, {}),
            w.api("POST", `/v1/t/acme/requests/${r.request_id}/approve`, w.users.bob, {}),
          ]);
          assert.equal(x.status, 200);
          assert.equal(y.status, 200);
          assert.deepEqual([x.json.status, y.json.status].sort(), ["approved", "pending"]);
          // N = 1 (staging): two approvers racing → one approves, the other finds it decided.
          const s = await w.mcp.requestDeploy({
            ...DEPLOY,
            environment: "staging",
            targets: ["stage-1"],
            params: { i },
          });
          const [p, q] = await Promise.all([
            w.api("POST", `/v1/t/acme/requests/${s.request_id}/approve`, w.users.alice, {}),
            w.api("POST", `/v1/t/acme/requests/${s.request_id}/approve`, w.users.bob, {}),
          ]);
          const outcomes = [p.json.status ?? p.json.error.code, q.json.status ?? q.json.error.code]
            .sort();
          assert.deepEqual(outcomes, ["NOT_PENDING", "approved"]);
        }
        const issued = (await evidenceOf(w.store, w.tenant)).filter((e) =>
          e.type === "approval.issued"
        );
        assert.equal(issued.length, 6);
        assert.equal(new Set(issued.map((e) => e.data.request_id)).size, 6);
        assert.equal((await w.agents["web-1"].fetchApprovedActions()).length, 3);
        assert.equal((await w.agents["stage-1"].fetchApprovedActions()).length, 3);
      } finally {
        await w.close();
      }
    },
  );

  scenario(
    b,
    "a crash between approved and recorded loses nothing: the change and its evidence commit together",
    async () => {
      let armed = false;
      const w = await world(b, {
        deps: {
          fault: (point) => {
            if (armed && point === "vote.approved") throw new Error("simulated crash");
          },
        },
      });
      try {
        await w.api("PUT", "/v1/t/acme/settings", w.users.admin, {
          token_approvals: { staging: true },
        });
        const r = await w.mcp.requestDeploy({
          ...DEPLOY,
          environment: "staging",
          targets: ["stage-1"],
        });
        const before = await evidenceOf(w.store, w.tenant);
        armed = true;
        const crashed = await w.api(
          "POST",
          `/v1/t/acme/requests/${r.request_id}/approve`,
          w.users.alice,
          {},
        );
        assert.equal(crashed.status, 500);
        // Nothing half-done: still pending, no vote, no evidence, no approval.
        const view = await w.mcp.getRequest(r.request_id);
        assert.equal(view.status, "pending");
        assert.equal(view.votes.length, 0);
        assert.equal(view.approval, null);
        assert.equal((await evidenceOf(w.store, w.tenant)).length, before.length);
        armed = false;
        const ok = await w.api(
          "POST",
          `/v1/t/acme/requests/${r.request_id}/approve`,
          w.users.alice,
          {},
        );
        assert.equal(ok.json.status, "approved");
        const after = await evidenceOf(w.store, w.tenant);
        const tail = after.slice(before.length).map((e) => e.type);
        assert.deepEqual(tail, ["request.approve", "request.approved", "approval.issued"]);
        // The log still verifies end to end.
        const lines = await evidenceLines(w.store, w.tenant);
        const report = await verifyLedger([{
          name: "evidence",
          data: new TextEncoder().encode(lines.join("\n") + "\n"),
        }]);
        assert.ok(report.ok, report.problem?.message);
        assert.equal((await w.agents["stage-1"].fetchApprovedActions()).length, 1);
      } finally {
        await w.close();
      }
    },
  );

  scenario(b, "requests are visible only to their requester among machine identities", async () => {
    const w = await world(b);
    try {
      const r = await w.mcp.requestDeploy(DEPLOY);
      const other = generateKeyPair();
      await w.store.tx(async (t) => {
        const { enrollIdentity } = await import("./tenant.ts");
        await enrollIdentity(t, "acme", {
          name: "cursor",
          kind: "mcp",
          publicKey: other.publicKey,
          operator: "carol@acme.test",
          actor: "control",
          now: w.clock.now(),
          via: "test",
        });
      });
      const cursor = w.client({ name: "cursor", kind: "mcp", key: other });
      await rejects(cursor.getRequest(r.request_id), "NOT_FOUND");
      assert.equal((await cursor.listRequests()).items.length, 0);
      assert.equal((await w.mcp.listRequests()).items.length, 1);
      const page1 = await w.mcp.listRequests({ limit: 1 });
      assert.equal(page1.next_cursor !== null, true);
    } finally {
      await w.close();
    }
  });
}
