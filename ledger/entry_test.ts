import assert from "node:assert/strict";
import fc from "fast-check";
import { canonicalJson } from "@infraveil/trust";
import {
  formatEntry,
  GENESIS_PREV,
  type JsonValue,
  type LedgerEntry,
  parseEntry,
  scanEntryLine,
  type ScannedLine,
} from "./entry.ts";
import { LedgerError } from "./error.ts";

const enc = new TextEncoder();

function entryOf(data: JsonValue, seq = 7): LedgerEntry {
  return {
    v: 1,
    seq,
    ts: "2026-01-02T03:04:05.678Z",
    type: "action.execute",
    actor: "agent:web-1",
    data,
    prev: "ab".repeat(32),
  };
}

function scan(bytes: Uint8Array): ScannedLine {
  const out: ScannedLine = { error: "", seq: -1, prevOffset: -1, rotate: false };
  scanEntryLine(bytes, 0, bytes.length, out);
  return out;
}

function slowOk(text: string): boolean {
  try {
    parseEntry(text);
    return true;
  } catch (e) {
    assert.ok(e instanceof LedgerError, String(e));
    return false;
  }
}

Deno.test("formatEntry() writes canonical JSON that parseEntry() and scanEntryLine() accept", () => {
  fc.assert(
    fc.property(fc.jsonValue(), fc.nat({ max: Number.MAX_SAFE_INTEGER }), (data, seq) => {
      const entry = entryOf(data as JsonValue, seq);
      const line = formatEntry(entry);
      assert.equal(line, canonicalJson(JSON.parse(line)));
      const back = parseEntry(line);
      assert.equal(canonicalJson(back.data), canonicalJson(data));
      const bytes = enc.encode(line);
      const s = scan(bytes);
      assert.equal(s.error, "", line);
      assert.equal(s.seq, seq);
      assert.equal(
        new TextDecoder().decode(bytes.subarray(s.prevOffset, s.prevOffset + 64)),
        entry.prev,
      );
    }),
    { numRuns: 300 },
  );
});

Deno.test("scanEntryLine() accepts exactly what parseEntry() accepts, for mutated lines", () => {
  const base = [
    formatEntry(entryOf({ a: [1, 2.5, -3e-7, 'x\u0001\n"\\é😀'], b: { c: null, d: true } })),
    formatEntry(entryOf({ "10": 1, "9": 2, "é": 3, "a\nb": 4 })),
    formatEntry({ ...entryOf(12345678901234567890), prev: GENESIS_PREV }),
  ];
  fc.assert(
    fc.property(
      fc.constantFrom(...base),
      fc.nat(),
      fc.integer({ min: 0, max: 255 }),
      fc.constantFrom("flip", "insert", "delete"),
      (line, where, byte, how) => {
        const bytes = enc.encode(line);
        const at = where % bytes.length;
        let mutated: Uint8Array;
        if (how === "flip") {
          mutated = bytes.slice();
          mutated[at] = byte;
        } else if (how === "insert") {
          mutated = new Uint8Array([...bytes.subarray(0, at), byte, ...bytes.subarray(at)]);
        } else {
          mutated = new Uint8Array([...bytes.subarray(0, at), ...bytes.subarray(at + 1)]);
        }
        const fast = scan(mutated).error === "";
        let text: string | null = null;
        try {
          text = new TextDecoder("utf-8", { fatal: true }).decode(mutated);
        } catch { /* invalid UTF-8 */ }
        const slow = text !== null && slowOk(text);
        assert.equal(fast, slow, `fast ${fast} slow ${slow}: ${text ?? "(invalid UTF-8)"}`);
      },
    ),
    { numRuns: 10000 },
  );
  for (const line of base) assert.equal(scan(enc.encode(line)).error, "");
});

Deno.test("scanEntryLine() reads nothing outside its line: the bytes around it change nothing", () => {
  const base = [
    formatEntry(entryOf({ a: [1, 2.5, -3e-7, 'x\u0001\n"\\é😀'], b: { c: null, d: true } })),
    formatEntry(entryOf({ "10": 1, "é": 3, "a\nb": 4 })),
    formatEntry(entryOf(-0.5)),
  ];
  fc.assert(
    fc.property(
      fc.constantFrom(...base),
      fc.nat(),
      fc.nat({ max: 12 }),
      fc.uint8Array({ maxLength: 8 }),
      fc.uint8Array({ minLength: 1, maxLength: 8 }),
      (line, where, cut, before, after) => {
        // The line, cut short at some point (most cuts are invalid), between arbitrary bytes.
        const bytes = enc.encode(line);
        const end = Math.max(0, bytes.length - (where % bytes.length) * (cut > 6 ? 0 : 1));
        const alone = bytes.slice(0, end);
        const framed = new Uint8Array([...before, ...alone, ...after]);
        const a = scan(alone);
        const b: ScannedLine = { error: "", seq: -1, prevOffset: -1, rotate: false };
        scanEntryLine(framed, before.length, before.length + end, b);
        assert.equal(b.error, a.error);
        if (!a.error) {
          assert.deepEqual(
            [b.seq, b.prevOffset - before.length, b.rotate],
            [a.seq, a.prevOffset, a.rotate],
          );
        }
      },
    ),
    { numRuns: 5000 },
  );
});

Deno.test("scanEntryLine() accepts every character formatEntry() allows in type", () => {
  const line = formatEntry({ ...entryOf(null), type: "AZaz09._:/-" });
  assert.equal(scan(enc.encode(line)).error, "");
});

Deno.test("scanEntryLine() never throws on arbitrary bytes", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
      scan(bytes);
    }),
    { numRuns: 2000 },
  );
});

Deno.test("formatEntry() rejects invalid fields, naming them", () => {
  assert.throws(() => formatEntry({ ...entryOf(null), type: "has space" }), /field type/);
  assert.throws(() => formatEntry({ ...entryOf(null), actor: "" }), /field actor/);
  assert.throws(() => formatEntry({ ...entryOf(null), ts: "yesterday" }), /field ts/);
  assert.throws(() => formatEntry({ ...entryOf(null), prev: "AB".repeat(32) }), /field prev/);
  assert.throws(() => formatEntry({ ...entryOf(null), seq: -1 }), /field seq/);
  assert.throws(() => formatEntry(entryOf({ n: NaN } as unknown as JsonValue)), /field data/);
  assert.throws(() => formatEntry(entryOf("x".repeat(1 << 20))), /too large/);
});

Deno.test("parseEntry() rejects non-canonical and incomplete lines", () => {
  const line = formatEntry(entryOf({ b: 1, a: 2 }));
  assert.equal(parseEntry(line).seq, 7);
  assert.throws(() => parseEntry(line.replace('{"a":2,"b":1}', '{"b":1,"a":2}')), /canonical/);
  assert.throws(() => parseEntry(line.replace(',"v":1', "")), /fields/);
  assert.throws(() => parseEntry(line + " "), /canonical/);
  assert.throws(() => parseEntry("[]"), /object/);
});

Deno.test("formatEntry() serializes data exactly as trust's canonicalJson() and refuses the same values", () => {
  const weird = fc.oneof(
    fc.jsonValue(),
    fc.anything(),
    fc.constantFrom<unknown>(
      NaN,
      -0,
      1e21,
      [1, , 2],
      { a: undefined },
      "\ud800",
      { "\udc00": 1 },
      new Date(0),
      Object.create(null),
    ),
  );
  fc.assert(
    fc.property(weird, (data) => {
      let want: string | null = null;
      try {
        want = canonicalJson(data);
      } catch { /* refused */ }
      let got: string | null = null;
      try {
        got = JSON.stringify(parseEntry(formatEntry(entryOf(data as JsonValue))).data) === undefined
          ? null
          : formatEntry(entryOf(data as JsonValue));
      } catch (e) {
        assert.ok(e instanceof LedgerError, String(e));
      }
      if (want === null) assert.equal(got, null);
      else assert.ok(got !== null && got.includes(`"data":${want},"prev"`), `${want} vs ${got}`);
    }),
    { numRuns: 2000 },
  );
  let deep: JsonValue = 1;
  for (let i = 0; i < 300; i++) deep = [deep];
  assert.throws(() => formatEntry(entryOf(deep)), /field data/);
});
