/**
 * Scenarios: heartbeats and stale detection, trace and finding ingestion in bounded batches
 * with per-tenant quotas, filtered paginated queries, and ledger checkpoint countersigning
 * after a consistency proof.
 *
 * @module
 */
import assert from "node:assert/strict";
import { hashLeaf, MerkleTree, signCheckpoint, verifyCheckpoint } from "@infraveil/ledger";
import { encodeHex, generateKeyPair } from "@infraveil/trust";
import { ControlClientError, type SpanInput } from "./client.ts";
import { type Backend, evidenceOf, scenario, world } from "./_testing.ts";

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

const hex = (n: number, len: number) => n.toString(16).padStart(len, "0");

function span(i: number, extra: Partial<SpanInput> = {}): SpanInput {
  return {
    trace_id: hex(Math.floor(i / 3) + 1, 32),
    span_id: hex(i + 1, 16),
    name: i % 2 ? "GET /api/users" : "POST /login",
    service: "api",
    start_ms: 1_780_000_000_000 + i * 1000,
    duration_ms: 5 + i,
    status: i % 4 === 0 ? 500 : 200,
    ...extra,
  };
}

/** Registers the fleet scenarios. */
export function fleetScenarios(b: Backend): void {
  scenario(b, "heartbeats register hosts; stale detection; policy drift", async () => {
    const w = await world(b);
    try {
      const hash = (await w.agents["web-1"].getActivePolicy()).hash!;
      const hb = await w.agents["web-1"].heartbeat({
        version: "1.2.0",
        policy_hash: hash,
        health: { proxy: "ok", ledger: "ok" },
        anchor: "0:" + "0".repeat(64),
      });
      assert.equal(hb.policy_current, true);
      assert.equal(hb.approvals_waiting, 0);
      w.clock.advance(60_000);
      await w.agents["web-2"].heartbeat({
        version: "1.1.0",
        policy_hash: "sha256:" + "1".repeat(64),
        health: "ok",
      });
      let fleet = await w.mcp.fleetStatus();
      assert.deepEqual(fleet.hosts.map((h) => [h.name, h.stale, h.policy_current]), [[
        "web-1",
        false,
        true,
      ], ["web-2", false, false]]);
      assert.deepEqual(fleet.counts, { total: 2, stale: 0, policy_drift: 1 });
      w.clock.advance(31_000);
      fleet = await w.mcp.fleetStatus();
      assert.deepEqual(fleet.hosts.map((h) => h.status), ["stale", "ok"]);
      assert.equal((await w.api("GET", "/v1/t/acme/fleet", w.users.carol)).json.counts.stale, 1);
      await rejects(w.agents["web-1"].heartbeat({ version: "1", anchor: "nope" }), "BAD_REQUEST");
      await w.mcp.requestRestart({ environment: "production", service: "api", targets: ["web-1"] });
      assert.equal((await w.agents["web-1"].heartbeat({ version: "1.2.0" })).approvals_waiting, 1);
    } finally {
      await w.close();
    }
  });

  scenario(b, "traces: bounded batches, quotas, filters, pagination, one trace", async () => {
    const w = await world(b);
    try {
      const spans = Array.from({ length: 12 }, (_, i) => span(i));
      assert.deepEqual(await w.agents["web-1"].shipTraces(spans), { accepted: 12, duplicates: 0 });
      assert.deepEqual(await w.agents["web-1"].shipTraces(spans.slice(0, 2)), {
        accepted: 0,
        duplicates: 2,
      });
      await w.agents["web-2"].shipTraces([span(100, { service: "db" })]);
      // Filters.
      assert.equal((await w.mcp.queryTraces({ host: "web-2" })).items.length, 1);
      assert.equal((await w.mcp.queryTraces({ min_status: 500 })).items.length, 4);
      assert.equal((await w.mcp.queryTraces({ name: "login", host: "web-1" })).items.length, 6);
      assert.equal(
        (await w.mcp.queryTraces({ since_ms: 1_780_000_010_000, host: "web-1" })).items.length,
        2,
      );
      // Pagination: newest first, no overlaps, all reached.
      const seen: string[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 10; page++) {
        const p = await w.mcp.queryTraces({ host: "web-1", limit: 5, cursor });
        seen.push(...p.items.map((s) => s.span_id));
        if (!p.next_cursor) break;
        cursor = p.next_cursor;
      }
      assert.equal(seen.length, 12);
      assert.equal(new Set(seen).size, 12);
      assert.equal(seen[0], hex(12, 16), "newest first");
      const t = await w.mcp.getTrace(hex(1, 32));
      assert.deepEqual(t.spans.map((s) => s.span_id), [hex(1, 16), hex(2, 16), hex(3, 16)]);
      await rejects(w.mcp.getTrace(hex(999, 32)), "NOT_FOUND");
      assert.equal(
        (await w.api("GET", `/v1/t/acme/traces?host=web-1&min_status=500`, w.users.carol)).json
          .items.length,
        3,
      );
      // Bad spans name the field; nothing of the batch is stored.
      const e = await w.agents["web-1"].shipTraces([span(50), { ...span(51), trace_id: "xyz" }])
        .catch((x) => x);
      assert.equal(e.code, "BAD_REQUEST");
      assert.match(e.message, /spans\[1\]\.trace_id/);
      assert.equal((await w.mcp.queryTraces({ host: "web-1", limit: 500 })).items.length, 12);
      await rejects(w.mcp.shipTraces([span(1)]), "FORBIDDEN");
      // Batch bound and quota.
      await w.api("PUT", "/v1/t/acme/settings", w.users.admin, { batch_max: 5, quota_spans: 16 });
      await rejects(
        w.agents["web-1"].shipTraces(Array.from({ length: 6 }, (_, i) => span(200 + i))),
        "PAYLOAD_TOO_LARGE",
      );
      await w.agents["web-1"].shipTraces([span(300), span(301)]);
      await rejects(
        w.agents["web-1"].shipTraces([span(302), span(303), span(304)]),
        "QUOTA_EXCEEDED",
      );
    } finally {
      await w.close();
    }
  });

  scenario(
    b,
    "findings: deduplicated per host and fingerprint, filtered and paginated, quota",
    async () => {
      const w = await world(b);
      try {
        const f = (i: number, severity: "low" | "high" | "critical" = "high") => ({
          fingerprint: `fp-${i}`,
          category: i % 2 ? "xss" : "auth",
          severity,
          title: `finding ${i}`,
          service: "api",
          observed_ms: 1_780_000_000_000 + i * 1000,
          detail: { path: `/x/${i}` },
        });
        assert.deepEqual(await w.agents["web-1"].shipFindings([f(1), f(2), f(3, "low")]), {
          accepted: 3,
          new: 3,
          updated: 0,
        });
        assert.deepEqual(await w.agents["web-1"].shipFindings([f(1)]), {
          accepted: 1,
          new: 0,
          updated: 1,
        });
        await w.agents["web-2"].shipFindings([f(1, "critical")]);
        let page = await w.mcp.listFindings({ host: "web-1" });
        assert.equal(page.items.length, 3);
        assert.equal(page.items.find((x) => x.fingerprint === "fp-1")?.count, 2);
        assert.equal((await w.mcp.listFindings({ severity: ["critical"] })).items.length, 1);
        assert.equal((await w.mcp.listFindings({ category: "auth" })).items.length, 1);
        page = await w.mcp.listFindings({ limit: 2 });
        assert.equal(page.items.length, 2);
        const rest = await w.mcp.listFindings({ limit: 2, cursor: page.next_cursor! });
        assert.equal(rest.items.length, 2);
        assert.equal(new Set([...page.items, ...rest.items].map((x) => x.id)).size, 4);
        assert.equal(
          (await w.api("GET", "/v1/t/acme/findings?severity=low,critical", w.users.carol)).json
            .items.length,
          2,
        );
        await rejects(
          w.agents["web-1"].shipFindings([{ ...f(9), severity: "bad" as "low" }]),
          "BAD_REQUEST",
        );
        await rejects(w.mcp.listFindings({ severity: ["bad" as "low"] }), "BAD_REQUEST");
        await w.api("PUT", "/v1/t/acme/settings", w.users.admin, { quota_findings: 5 });
        await rejects(w.agents["web-1"].shipFindings([f(10), f(11)]), "QUOTA_EXCEEDED");
      } finally {
        await w.close();
      }
    },
  );

  scenario(
    b,
    "ledger checkpoints are countersigned only after a consistency proof from the previous anchor",
    async () => {
      const w = await world(b);
      try {
        const key = w.agentKeys["web-1"];
        const tree = new MerkleTree();
        const grow = (n: number) => {
          for (let i = 0; i < n; i++) {
            tree.append(
              hashLeaf(new TextEncoder().encode(`line ${tree.size}`)),
            );
          }
        };
        const note = (size: number, signer = key) =>
          signCheckpoint({ origin: "infraveil/ledger/web-1", size, root: tree.root(size) }, {
            name: "web-1",
            key: signer,
          });
        grow(5);
        const first = await w.agents["web-1"].submitAnchor({ checkpoint: note(5) });
        assert.equal(first.anchor, `5:${encodeHex(tree.root(5))}`);
        assert.equal(first.previous, null);
        const cp = verifyCheckpoint(first.countersigned, [{
          name: "infraveil-control",
          publicKey: w.keys.publicKey,
        }]);
        assert.equal(cp.size, 5);
        grow(4);
        const proof = tree.consistencyProof(5, 9).map(encodeHex);
        const second = await w.agents["web-1"].submitAnchor({ checkpoint: note(9), proof });
        assert.equal(second.previous, first.anchor);
        assert.equal(
          (await w.mcp.fleetStatus()).hosts.length,
          0,
          "anchors alone do not register a host",
        );
        // A rewritten history: a different tree of size 12 cannot prove consistency with 9.
        const fork = new MerkleTree();
        for (let i = 0; i < 12; i++) fork.append(hashLeaf(new TextEncoder().encode(`forged ${i}`)));
        const forged = signCheckpoint({
          origin: "infraveil/ledger/web-1",
          size: 12,
          root: fork.root(12),
        }, { name: "web-1", key });
        await rejects(
          w.agents["web-1"].submitAnchor({
            checkpoint: forged,
            proof: fork.consistencyProof(9, 12).map(encodeHex),
          }),
          "BAD_CONSISTENCY",
        );
        // Going backwards, a bad proof, a checkpoint by another key: all refused.
        await rejects(w.agents["web-1"].submitAnchor({ checkpoint: note(5) }), "BAD_CONSISTENCY");
        grow(3);
        await rejects(
          w.agents["web-1"].submitAnchor({ checkpoint: note(12), proof: [] }),
          "BAD_CONSISTENCY",
        );
        await rejects(
          w.agents["web-1"].submitAnchor({
            checkpoint: note(12, generateKeyPair()),
            proof: tree.consistencyProof(9, 12).map(encodeHex),
          }),
          "BAD_CONSISTENCY",
        );
        const ok = await w.agents["web-1"].submitAnchor({
          checkpoint: note(12),
          proof: tree.consistencyProof(9, 12).map(encodeHex),
        });
        assert.equal(ok.previous, second.anchor);
        const ev = await evidenceOf(w.store, w.tenant);
        assert.equal(ev.filter((e) => e.type === "anchor.countersign").length, 3);
        assert.equal(ev.filter((e) => e.type === "anchor.rejected").length, 4);
      } finally {
        await w.close();
      }
    },
  );
}
