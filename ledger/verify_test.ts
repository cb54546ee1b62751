import assert from "node:assert/strict";
import fc from "fast-check";
import { parseAnchor } from "./anchor.ts";
import { formatEntry, parseEntry } from "./entry.ts";
import { type TamperClass, verifyLedger, type VerifyReport } from "./verify.ts";
import { buildLedger, type Item, lineOf, rechain, sources } from "./_testing.ts";

interface Expect {
  class: TamperClass;
  /** Index of the first affected item in the mutated list, or "end" for truncation. */
  index: number | "end";
  seq: number;
}

interface Case {
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

function mutations(items: readonly Item[], anchors: readonly string[], p: number): Case[] {
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

function endCases(items: readonly Item[], anchors: readonly string[]): Case[] {
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

async function run(c: Case, tail = "\n"): Promise<VerifyReport> {
  return await verifyLedger(sources(c.items, tail), c.head ? { head: parseAnchor(c.head) } : {});
}

function check(c: Case, report: VerifyReport): void {
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

const LEDGERS: { name: string; n: number; rotateAt: number[] }[] = [
  { name: "1 entry", n: 1, rotateAt: [] },
  { name: "2 entries", n: 2, rotateAt: [] },
  { name: "3 entries", n: 3, rotateAt: [] },
  { name: "8 entries", n: 8, rotateAt: [] },
  { name: "33 entries", n: 33, rotateAt: [] },
  { name: "40 entries in 3 files", n: 40, rotateAt: [13, 27] },
];

function positions(n: number, rotateAt: number[]): number[] {
  const mid = Math.floor(n / 2);
  const cp = Math.ceil((2 * n) / 3); // an anchored checkpoint size
  const ps = [0, mid, n - 1, cp - 1, cp, cp + 1];
  for (const r of rotateAt) ps.push(r - 1, r, r + 1);
  return [...new Set(ps)].filter((p) => p >= 0 && p < n).sort((a, b) => a - b);
}

for (const l of LEDGERS) {
  Deno.test(`verifyLedger() passes an intact ledger of ${l.name} against every earlier anchor`, async () => {
    const { items, anchors } = buildLedger(l.n, l.rotateAt);
    for (let s = 0; s <= l.n; s++) {
      const report = await verifyLedger(sources(items), { head: parseAnchor(anchors[s]) });
      assert.ok(report.ok, `anchor ${s}: ${JSON.stringify(report.problem)}`);
      assert.equal(report.anchor, anchors[l.n]);
    }
  });

  Deno.test(`verifyLedger() names the class, line and seq of every mutation in ${l.name}`, async () => {
    const { items, anchors } = buildLedger(l.n, l.rotateAt);
    let count = 0;
    for (const p of positions(l.n, l.rotateAt)) {
      for (const c of mutations(items, anchors, p)) {
        check(c, await run(c));
        count++;
      }
    }
    for (const c of endCases(items, anchors)) {
      check(c, await run(c));
      count++;
    }
    // torn: the last line cut short without its newline
    const last = items[items.length - 1];
    const torn: Case = {
      name: "torn",
      items: [...items.slice(0, -1), { ...last, text: last.text.slice(0, -7) }],
      head: anchors[l.n],
      expect: { class: "torn", index: items.length - 1, seq: items.length - 1 },
    };
    check(torn, await run(torn, ""));
    assert.ok(count >= 5);
  });
}

Deno.test("verifyLedger() verifies the later files of a rotated set from their reference", async () => {
  const { items, anchors } = buildLedger(40, [13, 27]);
  const later = items.filter((it) => it.file !== "audit-1.jsonl");
  const report = await verifyLedger(sources(later), { head: parseAnchor(anchors[30]) });
  assert.ok(report.ok, JSON.stringify(report.problem));
  assert.equal(report.base?.size, 13);
  assert.equal(report.anchor, anchors[40]);
  // A missing middle file is a gap; files out of order are reordered.
  const noMiddle = items.filter((it) => it.file !== "audit-2.jsonl");
  const gap = await verifyLedger(sources(noMiddle));
  assert.deepEqual([gap.problem?.class, gap.problem?.file, gap.problem?.line, gap.problem?.seq], [
    "gap",
    "audit-3.jsonl",
    1,
    13,
  ]);
  const swapped = [
    ...items.filter((it) => it.file === "audit-2.jsonl"),
    ...items.filter((it) => it.file === "audit-1.jsonl"),
  ];
  const re = await verifyLedger(sources(swapped));
  assert.equal(re.problem?.class, "reordered");
  await assert.rejects(
    () => verifyLedger(sources(later), { head: parseAnchor(anchors[5]) }),
    /before the first entry/,
  );
});

Deno.test("verifyLedger() detects every random byte flip and names the flipped line", async () => {
  const ledgers = [buildLedger(12), buildLedger(20, [8])];
  await fc.assert(
    fc.asyncProperty(
      fc.nat({ max: 1 }),
      fc.nat(),
      fc.nat(),
      fc.integer({ min: 1, max: 255 }),
      async (which, lineSeed, byteSeed, xor) => {
        const { items, anchors } = ledgers[which];
        const i = lineSeed % items.length;
        const text = items[i].text;
        const at = byteSeed % text.length;
        const bytes = new TextEncoder().encode(text);
        bytes[at] ^= xor;
        // Build the flipped file from bytes, so invalid UTF-8 stays invalid.
        const srcs = sources(items).map((s) => {
          if (s.name !== items[i].file) return s;
          const lines = items.filter((it) => it.file === s.name).map((it) =>
            it === items[i] ? bytes : new TextEncoder().encode(it.text)
          );
          const buf = new Uint8Array(lines.reduce((a, b) => a + b.length + 1, 0));
          let o = 0;
          for (const b of lines) {
            buf.set(b, o);
            o += b.length;
            buf[o++] = 10;
          }
          return { name: s.name, data: buf };
        });
        const report = await verifyLedger(srcs, { head: parseAnchor(anchors[items.length]) });
        const want = lineOf(items, i);
        assert.ok(report.problem, `flip at line ${i} byte ${at} not detected`);
        assert.deepEqual(
          { file: report.problem.file, line: report.problem.line },
          want,
          `flip at item ${i} byte ${at} (^${xor}): ${report.problem.class} ${report.problem.message}`,
        );
      },
    ),
    { numRuns: 1500 },
  );
});

Deno.test("verifyLedger() never throws on arbitrary bytes and ignores chunk boundaries", async () => {
  const { items, anchors } = buildLedger(10);
  const intact = sources(items)[0].data as Uint8Array;
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        fc.uint8Array({ maxLength: 600 }),
        fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 8 })).map(([at, junk]) => {
          const p = at % intact.length;
          return new Uint8Array([...intact.subarray(0, p), ...junk, ...intact.subarray(p)]);
        }),
      ),
      fc.array(fc.integer({ min: 1, max: 97 }), { minLength: 1, maxLength: 8 }),
      async (bytes, cuts) => {
        const whole = await verifyLedger([{ name: "f", data: bytes }], {
          head: parseAnchor(anchors[10]),
        });
        async function* pieces(): AsyncGenerator<Uint8Array> {
          let at = 0;
          let k = 0;
          while (at < bytes.length) {
            const len = cuts[k++ % cuts.length];
            yield bytes.slice(at, at + len);
            at += len;
          }
        }
        const chunked = await verifyLedger([{ name: "f", data: pieces() }], {
          head: parseAnchor(anchors[10]),
        });
        assert.deepEqual(chunked, whole);
      },
    ),
    { numRuns: 300 },
  );
});
