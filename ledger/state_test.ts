import assert from "node:assert/strict";
import fc from "fast-check";
import { formatAnchor, parseAnchor } from "./anchor.ts";
import { LedgerError } from "./error.ts";
import { LedgerState } from "./state.ts";
import { verifyLedger } from "./verify.ts";

Deno.test("LedgerState: a store that keeps lines and state JSON exports a file the verifier accepts", async () => {
  // A database-backed evidence log: each append loads the saved state, appends, saves both.
  const table: string[] = [];
  let saved = JSON.stringify(LedgerState.empty());
  for (let i = 0; i < 25; i++) {
    const state = LedgerState.fromJSON(JSON.parse(saved));
    const out = state.append(
      { type: "evidence.approval", actor: "control", data: { request: `r${i}` } },
      { now: () => Date.UTC(2026, 0, 1, 0, 0, i) },
    );
    table.push(out.line);
    saved = JSON.stringify(out.state);
  }
  const exported = new TextEncoder().encode(table.join("\n") + "\n");
  const final = LedgerState.fromJSON(JSON.parse(saved));
  const report = await verifyLedger([{ name: "tenant-a.jsonl", data: exported }], {
    head: parseAnchor(final.anchor()),
  });
  assert.ok(report.ok, JSON.stringify(report.problem));
  assert.equal(report.anchor, final.anchor());
  assert.deepEqual(report.state, final.toJSON());
});

Deno.test("LedgerState.append() is pure: the old state is unchanged", () => {
  const s0 = LedgerState.empty();
  const a = s0.append({ type: "x" });
  assert.equal(s0.size, 0);
  assert.equal(a.state.size, 1);
  assert.equal(a.entry.prev, "0".repeat(64));
  assert.equal(a.state.prev.length, 64);
});

Deno.test("LedgerState.fromJSON() rejects inconsistent saved states", () => {
  assert.throws(
    () => LedgerState.fromJSON({ size: 3, prev: "a".repeat(64), frontier: ["b".repeat(64)] }),
    LedgerError,
  );
  assert.throws(
    () => LedgerState.fromJSON({ size: 0, prev: "a".repeat(64), frontier: [] }),
    /empty/,
  );
  assert.throws(
    () => LedgerState.fromJSON({ size: 1, prev: "xyz", frontier: ["b".repeat(64)] }),
    /prev/,
  );
});

Deno.test("parseAnchor() accepts only SIZE:ROOTHEX and round-trips", () => {
  const root = "0123456789abcdef".repeat(4);
  assert.equal(formatAnchor(parseAnchor(`42:${root}`)), `42:${root}`);
  for (
    const bad of [
      `042:${root}`,
      `42:${root.toUpperCase()}`,
      `42:${root.slice(1)}`,
      `-1:${root}`,
      `42 :${root}`,
      `42:${root}\n`,
      "",
    ]
  ) {
    assert.throws(
      () => parseAnchor(bad),
      (e) => e instanceof LedgerError && e.code === "BAD_ANCHOR",
      bad,
    );
  }
  fc.assert(fc.property(fc.string(), (s) => {
    try {
      assert.equal(formatAnchor(parseAnchor(s)), s);
    } catch (e) {
      assert.ok(e instanceof LedgerError);
    }
  }));
});
