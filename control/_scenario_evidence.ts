/**
 * Scenarios for the evidence log's two steps (records written with their change, chained by
 * one sequencer: in the transaction on SQLite, in the background on PostgreSQL; every read
 * chaining first) and for the other per-request bookkeeping: nonces and rate-limit counts.
 *
 * @module
 */
import assert from "node:assert/strict";
import { LedgerError, verifyLedger } from "@infraveil/ledger";
import { appendEvidence, evidenceHead } from "./evidence.ts";
import type { RequestRow } from "./store.ts";
import { type Backend, evidenceLines, evidenceOf, scenario, world } from "./_testing.ts";

async function verifies(lines: string[]): Promise<void> {
  const report = await verifyLedger([{
    name: "evidence",
    data: new TextEncoder().encode(lines.join("\n") + "\n"),
  }]);
  assert.ok(report.ok, report.problem?.message);
}

/** Registers the evidence scenarios. */
export function evidenceScenarios(b: Backend): void {
  scenario(
    b,
    "concurrent changes of one tenant: every record is chained once, in a log that verifies",
    async () => {
      const w = await world(b);
      try {
        const before = (await evidenceOf(w.store, w.tenant)).length;
        const created = await Promise.all(
          Array.from({ length: 24 }, (_, i) =>
            w.mcp.requestDeploy({
              environment: "production",
              service: "api",
              targets: ["web-1"],
              files: ["src/app.ts"],
              params: { i },
            })),
        );
        // The background sequencer (PostgreSQL) chains them without any read asking.
        for (let i = 0; i < 100; i++) {
          if ((await w.store.tx((t) => t.listPendingEvidence(w.tenant, 1))).length === 0) break;
          await new Promise((r) => setTimeout(r, 20));
        }
        assert.equal((await w.store.tx((t) => t.listPendingEvidence(w.tenant, 1))).length, 0);
        const lines = await evidenceLines(w.store, w.tenant);
        await verifies(lines);
        const entries = lines.slice(before).map((l) => JSON.parse(l));
        assert.deepEqual(entries.map((e) => e.seq), entries.map((_, i) => before + i));
        const decided = entries.filter((e) => e.type === "request.decision")
          .map((e) => e.data.request_id).sort();
        assert.deepEqual(decided, created.map((r) => r.request_id).sort());
        const head = await w.store.tx((t) => evidenceHead(t, w.tenant));
        assert.equal(head.size, lines.length);
      } finally {
        await w.close();
      }
    },
  );

  scenario(
    b,
    "identical requests racing: one request and one decision record; the others fold",
    async () => {
      const w = await world(b);
      try {
        const before = (await evidenceOf(w.store, w.tenant)).length;
        const deploy = {
          environment: "production",
          service: "api",
          targets: ["web-1"],
          files: ["src/app.ts"],
          params: { v: "race" },
        };
        const out = await Promise.all(Array.from({ length: 8 }, () => w.mcp.requestDeploy(deploy)));
        assert.equal(new Set(out.map((r) => r.request_id)).size, 1);
        assert.equal(out.filter((r) => !r.folded).length, 1);
        const entries = (await evidenceOf(w.store, w.tenant)).slice(before);
        assert.equal(entries.filter((e) => e.type === "request.decision").length, 1);
        assert.equal(entries.filter((e) => e.type === "request.folded").length, 7);
        await verifies(await evidenceLines(w.store, w.tenant));
        // The loser of an insert race records nothing (one statement on PostgreSQL).
        const row = (id: string): RequestRow => ({
          id,
          kind: "action",
          action: { action: "restart" },
          actionHash: "sha256:race",
          requester: "claude",
          requesterKind: "mcp",
          operator: null,
          environment: "production",
          service: "api",
          targets: ["web-1"],
          status: "pending",
          decision: {},
          approvalsRequired: 1,
          policyHash: null,
          breakGlass: null,
          createdAt: 0,
          updatedAt: 0,
          expiresAt: 1,
        });
        const record = (n: number) => ({ ts: 0, type: "test.note", actor: "test", data: `${n}` });
        await w.store.tx(async (t) => {
          assert.equal(await t.insertRequestWithEvidence(w.tenant, row("req_a"), record(1)), true);
          assert.equal(await t.insertRequestWithEvidence(w.tenant, row("req_b"), record(2)), false);
        });
        const notes = (await evidenceOf(w.store, w.tenant)).filter((e) => e.type === "test.note");
        assert.deepEqual(notes.map((e) => e.data), [1]);
      } finally {
        await w.close();
      }
    },
  );

  scenario(
    b,
    "a record committed by another instance and not yet chained is chained by the next read",
    async () => {
      const w = await world(b);
      const other = await w.db.another();
      try {
        const size = (await w.store.tx((t) => evidenceHead(t, w.tenant))).size;
        await other.tx((t) =>
          appendEvidence(t, w.tenant, {
            type: "test.note",
            actor: "test",
            data: { n: 1 },
          }, w.clock.now())
        );
        const pending = await w.store.tx((t) => t.listPendingEvidence(w.tenant, 10));
        // SQLite chains in the committing transaction; PostgreSQL leaves it to the sequencer,
        // which waits a little before it runs: the read below comes first.
        assert.equal(pending.length, b.name === "sqlite" ? 0 : 1);
        const head = await w.store.tx((t) => evidenceHead(t, w.tenant));
        assert.equal(head.size, size + 1);
        assert.equal(
          (await w.store.tx((t) => t.listPendingEvidence(w.tenant, 10))).length,
          0,
        );
        const last = (await evidenceOf(w.store, w.tenant)).at(-1);
        assert.equal(last?.type, "test.note");
        assert.equal(last?.seq, size);
        await verifies(await evidenceLines(w.store, w.tenant));
      } finally {
        await other.close();
        await w.close();
      }
    },
  );

  scenario(
    b,
    "a record that cannot be a ledger line fails its change's transaction: nothing commits",
    async () => {
      const w = await world(b);
      try {
        const before = await evidenceLines(w.store, w.tenant);
        await assert.rejects(
          w.store.tx(async (t) => {
            await t.insertGroup(w.tenant, "never-created");
            await appendEvidence(t, w.tenant, {
              type: "test.note",
              actor: "test",
              data: { text: "lone \ud800 surrogate" },
            }, w.clock.now());
          }),
          (e) => e instanceof LedgerError && e.code === "BAD_ENTRY",
        );
        const groups = (await w.store.tx((t) => t.loadAuthority(w.tenant))).groups;
        assert.ok(!groups.includes("never-created"));
        assert.deepEqual(await evidenceLines(w.store, w.tenant), before);
      } finally {
        await w.close();
      }
    },
  );

  scenario(
    b,
    "a savepoint rolled back undoes the evidence recorded under it with the change",
    async () => {
      const w = await world(b);
      try {
        const before = (await evidenceOf(w.store, w.tenant)).length;
        await w.store.tx(async (t) => {
          const note = (n: number) =>
            appendEvidence(t, w.tenant, { type: "test.note", actor: "test", data: { n } }, 0);
          await note(1);
          await assert.rejects(
            t.nested(async () => {
              await t.insertGroup(w.tenant, "undone");
              await note(2);
              throw new Error("refused");
            }),
            /refused/,
          );
          assert.equal(await t.nested(() => note(3).then(() => "kept")), "kept");
        });
        const after = (await evidenceOf(w.store, w.tenant)).slice(before);
        assert.deepEqual(after.map((e) => e.data.n), [1, 3]);
        const groups = (await w.store.tx((t) => t.loadAuthority(w.tenant))).groups;
        assert.ok(!groups.includes("undone"));
      } finally {
        await w.close();
      }
    },
  );

  scenario(b, "rate-limit hits from concurrent transactions all count, per window", async () => {
    const w = await world(b);
    try {
      const hit = (window: number) =>
        w.store.tx((t) => t.hitRateLimit(w.tenant, "request:mcp:x", window));
      await Promise.all(Array.from({ length: 20 }, () => hit(60_000)));
      assert.equal(await hit(60_000), 21);
      assert.equal(await hit(120_000), 1, "a new window starts from zero");
      assert.equal(await w.store.tx((t) => t.hitRateLimit(w.tenant, "request:mcp:y", 120_000)), 1);
    } finally {
      await w.close();
    }
  });

  scenario(b, "nonces are single-use per tenant and expiry", async () => {
    const w = await world(b);
    try {
      await w.store.tx(async (t) => {
        assert.equal(await t.insertNonce(w.tenant, "n-1", 100), true);
        assert.equal(await t.insertNonce(w.tenant, "n-1", 100), false, "a replay is refused");
        // Another expiry is another signed message (a replay cannot change `exp`).
        assert.equal(await t.insertNonce(w.tenant, "n-1", 101), true);
        assert.equal(await t.purgeNonces(w.tenant, 101), 1);
        assert.equal(await t.insertNonce(w.tenant, "n-1", 101), false);
      });
    } finally {
      await w.close();
    }
  });
}
