import assert from "node:assert/strict";
import fc from "fast-check";
import { concatBytes, sha256 } from "@infraveil/trust";
import {
  EMPTY_ROOT,
  leafHashesOf,
  leafHashOf,
  linesAndLeafHashes,
  nodeHashOf,
  plainSha256,
} from "./_hash.ts";

Deno.test("plainSha256() matches the reference SHA-256 for every length 0..300", () => {
  for (let n = 0; n <= 300; n++) {
    const msg = new Uint8Array(n).map((_, i) => (i * 31 + n) & 255);
    assert.deepEqual(plainSha256(msg), sha256(msg), `length ${n}`);
  }
  assert.deepEqual(EMPTY_ROOT, sha256(new Uint8Array(0)));
});

Deno.test("leafHashOf(), nodeHashOf() and leafHashesOf() match SHA-256 with RFC 6962 prefixes", () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 700 }), { minLength: 1, maxLength: 20 }),
      (lines) => {
        const buf = concatBytes(new Uint8Array([7, 7]), ...lines);
        const bounds = new Uint32Array(lines.length * 2);
        let at = 2;
        lines.forEach((l, i) => {
          bounds[2 * i] = at;
          bounds[2 * i + 1] = at + l.length;
          at += l.length;
        });
        const batch = leafHashesOf(buf, bounds, lines.length);
        lines.forEach((l, i) => {
          const want = sha256(concatBytes(new Uint8Array([0]), l));
          assert.deepEqual(leafHashOf(buf, bounds[2 * i], bounds[2 * i + 1]), want);
          assert.deepEqual(batch.subarray(32 * i, 32 * i + 32), want);
        });
      },
    ),
  );
  const l = sha256("l");
  const r = sha256("r");
  assert.deepEqual(nodeHashOf(l, r), sha256(concatBytes(new Uint8Array([1]), l, r)));
});

Deno.test("leafHashOf() handles a line larger than the initial memory", () => {
  const big = new Uint8Array(3 << 20).fill(0x61);
  assert.deepEqual(leafHashOf(big), sha256(concatBytes(new Uint8Array([0]), big)));
});

Deno.test("linesAndLeafHashes() finds every complete line after pos and hashes it", () => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fc.constant(10), fc.integer({ min: 0, max: 255 })), { maxLength: 400 }),
      fc.nat(),
      (list, at) => {
        const bytes = Uint8Array.from(list);
        const pos = bytes.length === 0 ? 0 : at % (bytes.length + 1);
        const { count, bounds, hashes } = linesAndLeafHashes(bytes, pos);
        const want: [number, number][] = [];
        for (
          let start = pos, nl = bytes.indexOf(10, start);
          nl >= 0;
          nl = bytes.indexOf(10, start)
        ) {
          want.push([start, nl]);
          start = nl + 1;
        }
        assert.equal(count, want.length);
        assert.equal(hashes.length, 32 * count);
        want.forEach(([s, e], i) => {
          assert.deepEqual([bounds[2 * i], bounds[2 * i + 1]], [s, e]);
          assert.deepEqual(
            hashes.subarray(32 * i, 32 * i + 32),
            sha256(concatBytes(new Uint8Array([0]), bytes.subarray(s, e))),
          );
        });
      },
    ),
    { numRuns: 500 },
  );
});
