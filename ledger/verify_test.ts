import assert from "node:assert/strict";
import fc from "fast-check";
import { parseAnchor } from "./anchor.ts";
import { verifyLedger, type VerifyReport } from "./verify.ts";
import { buildLedger, lineOf, sources } from "./_testing.ts";
import { type Case, check, endCases, mutations, positions } from "./_testing_mutations.ts";

async function run(c: Case, tail = "\n"): Promise<VerifyReport> {
  return await verifyLedger(sources(c.items, tail), c.head ? { head: parseAnchor(c.head) } : {});
}

const LEDGERS: { name: string; n: number; rotateAt: number[] }[] = [
  { name: "1 entry", n: 1, rotateAt: [] },
  { name: "2 entries", n: 2, rotateAt: [] },
  { name: "3 entries", n: 3, rotateAt: [] },
  { name: "8 entries", n: 8, rotateAt: [] },
  { name: "33 entries", n: 33, rotateAt: [] },
  { name: "40 entries in 3 files", n: 40, rotateAt: [13, 27] },
];

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
        // Zeros (as a writer preallocates them), anywhere, and maybe bytes after them.
        fc.tuple(fc.nat(), fc.nat(300), fc.uint8Array({ maxLength: 4 })).map(
          ([at, zeros, junk]) => {
            const p = at % (intact.length + 1);
            return new Uint8Array([...intact.subarray(0, p), ...new Uint8Array(zeros), ...junk]);
          },
        ),
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

Deno.test("verifyLedger() takes zeros after the last line as padding, and nothing after them", async () => {
  const { items, anchors } = buildLedger(10);
  const intact = sources(items)[0].data as Uint8Array;
  const head = parseAnchor(anchors[10]);
  const cat = (...parts: Uint8Array[]) => new Uint8Array(parts.flatMap((p) => [...p]));
  const text = (s: string) => new TextEncoder().encode(s);
  for (const zeros of [1, 7, 4096]) {
    const padded = await verifyLedger([{ name: "f", data: cat(intact, new Uint8Array(zeros)) }], {
      head,
    });
    assert.ok(padded.ok, JSON.stringify(padded.problem));
    assert.equal(padded.files[0].padding, zeros);
    assert.equal(padded.anchor, anchors[10]);
    // Anything but zeros after them: the last "line" is not an entry.
    const after = await verifyLedger([{
      name: "f",
      data: cat(intact, new Uint8Array(zeros), text("{}")),
    }], { head });
    assert.equal(after.problem?.class, "torn");
    assert.equal(after.problem?.line, 11);
    const line = await verifyLedger([{
      name: "f",
      data: cat(intact, new Uint8Array(zeros), text("{}\n")),
    }], { head });
    assert.equal(line.problem?.class, "malformed");
    assert.equal(line.problem?.offset, intact.length);
    // A torn line in the zeros: torn, at its own offset, with the zeros after it as padding.
    const torn = await verifyLedger([{
      name: "f",
      data: cat(intact, text('{"actor":"x"'), new Uint8Array(zeros)),
    }], { head });
    assert.equal(torn.problem?.class, "torn");
    assert.equal(torn.problem?.offset, intact.length);
    assert.equal(torn.files[0].padding, zeros);
  }
  // Zeros in the middle of the file are no padding.
  const middle = cat(intact.subarray(0, 500), new Uint8Array(64), intact.subarray(500));
  const report = await verifyLedger([{ name: "f", data: middle }], { head });
  assert.ok(!report.ok);
  assert.equal(report.files[0].padding, undefined);
});
