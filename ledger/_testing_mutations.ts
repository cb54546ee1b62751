/**
 * Test helpers: every tamper class applied around a position of a built ledger, with the
 * class, line and seq the verifier must name.
 *
 * @module
 */
import assert from "node:assert/strict";
import { formatEntry, parseEntry } from "./entry.ts";
import type { TamperClass, VerifyReport } from "./verify.ts";
import { type Item, lineOf, rechain } from "./_testing.ts";

/** What the verifier must report. */
export interface Expect {
  class: TamperClass;
  /** Index of the first affected item in the mutated list, or "end" for truncation. */
  index: number | "end";
  seq: number;
}

/** One mutated ledger. */
export interface Case {
  name: string;
  items: Item[];
  expect: Expect | null; // null: must verify
  head?: string;
}

function editActor(text: string): string {
  const out = text.replace(/^\{"actor":"[^"]*"/, '{"actor":"mallory"');
  assert.notEqual(out, text);
  return out;
}

/** Mutations of `items` at position `p` with what the verifier must report. */
export function mutations(items: readonly Item[], anchors: readonly string[], p: number): Case[] {
  const n = items.length;
  const full = anchors[n];
  const cases: Case[] = [];
  const without = (i: number) => items.filter((_, k) => k !== i);
  const insertAt = (i: number, item: Item) => [...items.slice(0, i), item, ...items.slice(i)];
  const tagBefore = (i: number) => (i > 0 ? items[i - 1].file : items[0].file);

  // edited
  {
    const m = items.map((it, k) => (k === p ? { ...it, text: editActor(it.text) } : it));
    cases.push({
      name: `edited@${p}`,
      items: m,
      head: full,
      expect: p < n - 1
        ? { class: "edited", index: p, seq: p }
        : { class: "rewritten", index: p, seq: p },
    });
    if (p < n - 1) {
      cases.push({
        name: `edited@${p} (no anchor)`,
        items: m,
        expect: { class: "edited", index: p, seq: p },
      });
    }
  }
  // deleted
  {
    const m = without(p);
    cases.push({
      name: `deleted@${p}`,
      items: m,
      head: full,
      expect: p < n - 1
        ? { class: "deleted", index: p, seq: p }
        : { class: "truncated", index: "end", seq: p },
    });
  }
  // reordered
  if (n >= 2) {
    const q = Math.min(p, n - 2);
    const m = items.map((it) => ({ ...it }));
    [m[q].text, m[q + 1].text] = [m[q + 1].text, m[q].text];
    cases.push({
      name: `reordered@${q}`,
      items: m,
      head: full,
      expect: { class: "reordered", index: q, seq: q },
    });
  }
  // inserted: a copy of another line
  {
    const j = p >= 2 ? p - 2 : p + 2 < n ? p + 2 : -1;
    if (j >= 0) {
      const m = insertAt(p, { file: tagBefore(p), text: items[j].text });
      cases.push({
        name: `inserted-copy@${p}`,
        items: m,
        head: full,
        expect: { class: "inserted", index: p, seq: p },
      });
    }
  }
  // inserted: a forged entry that fits the chain at its position
  {
    const original = parseEntry(items[p].text);
    const forged = formatEntry({
      ...original,
      actor: "mallory",
      type: "action.execute",
      data: { forged: true },
    });
    const m = insertAt(p, { file: tagBefore(p), text: forged });
    cases.push({
      name: `inserted-forged@${p}`,
      items: m,
      head: full,
      expect: { class: "inserted", index: p, seq: p },
    });
  }
  // gap: deleted and the chain recomputed
  {
    const m = rechain(without(p));
    cases.push({
      name: `gap@${p}`,
      items: m,
      head: full,
      expect: p < n - 1
        ? { class: "gap", index: p, seq: p }
        : { class: "truncated", index: "end", seq: p },
    });
  }
  // malformed
  {
    const m = items.map((
      it,
      k,
    ) => (k === p ? { ...it, text: it.text.slice(0, 20) + "garbage" } : it));
    cases.push({
      name: `malformed@${p}`,
      items: m,
      head: full,
      expect: { class: "malformed", index: p, seq: p },
    });
  }
  // rewritten: edited and every later hash recomputed
  {
    const m = rechain(items.map((it, k) => (k === p ? { ...it, text: editActor(it.text) } : it)));
    cases.push({ name: `rewritten@${p} (bare chain)`, items: m, expect: null });
    cases.push({
      name: `rewritten@${p}`,
      items: m,
      head: full,
      expect: { class: "rewritten", index: n - 1, seq: n - 1 },
    });
    for (const s of [p, p + 1, Math.ceil((p + n) / 2)]) {
      if (s < 1 || s > n) continue;
      cases.push({
        name: `rewritten@${p} vs anchor ${s}`,
        items: m,
        head: anchors[s],
        expect: p < s ? { class: "rewritten", index: s - 1, seq: s - 1 } : null,
      });
    }
  }
  return cases;
}

/** Truncation and an insertion at the end. */
export function endCases(items: readonly Item[], anchors: readonly string[]): Case[] {
  const n = items.length;
  const cases: Case[] = [];
  const k = n >= 4 ? 3 : 1;
  cases.push({
    name: `truncated by ${k}`,
    items: items.slice(0, n - k),
    head: anchors[n],
    expect: { class: "truncated", index: "end", seq: n - k },
  });
  if (n >= 3) {
    cases.push({
      name: "inserted-copy@end",
      items: [...items, { ...items[n - 3] }],
      head: anchors[n],
      expect: { class: "inserted", index: n, seq: n },
    });
  }
  return cases;
}

/** Asserts that a report names what the case expects. */
export function check(c: Case, report: VerifyReport): void {
  if (c.expect === null) {
    assert.ok(report.ok, `${c.name}: flagged ${JSON.stringify(report.problem)}`);
    return;
  }
  const p = report.problem;
  assert.ok(p, `${c.name}: not detected`);
  const where = c.expect.index === "end"
    ? (() => {
      const last = c.items[c.items.length - 1];
      const line = c.items.filter((it) => it.file === last?.file).length + 1;
      return { file: last?.file ?? "", line };
    })()
    : lineOf(c.items, c.expect.index);
  assert.deepEqual(
    { class: p.class, file: p.file, line: p.line, seq: p.seq },
    { class: c.expect.class, file: where.file, line: where.line, seq: c.expect.seq },
    `${c.name}: ${p.message}`,
  );
}

/** Positions to mutate: ends, middle, around an anchor and around rotations. */
export function positions(n: number, rotateAt: number[]): number[] {
  const mid = Math.floor(n / 2);
  const cp = Math.ceil((2 * n) / 3); // an anchored checkpoint size
  const ps = [0, mid, n - 1, cp - 1, cp, cp + 1];
  for (const r of rotateAt) ps.push(r - 1, r, r + 1);
  return [...new Set(ps)].filter((p) => p >= 0 && p < n).sort((a, b) => a - b);
}
