import assert from "node:assert/strict";
import fc from "fast-check";
import canonicalize from "canonicalize";
import { canonicalJson } from "./canonical.ts";
import { TrustError } from "./error.ts";

Deno.test("canonicalJson() matches RFC 8785 examples", () => {
  // RFC 8785 §3.2.2.3 number serialization samples.
  const numbers: [number, string][] = [
    [0, "0"],
    [-0, "0"],
    [1e21, "1e+21"],
    [1e-7, "1e-7"],
    [333333333.33333329, "333333333.3333333"],
    [1E30, "1e+30"],
    [4.50, "4.5"],
    [2e-3, "0.002"],
    [0.000000000000000000000000001, "1e-27"],
    [9007199254740991, "9007199254740991"],
  ];
  for (const [n, s] of numbers) assert.equal(canonicalJson(n), s);
  assert.equal(
    canonicalJson({
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "1": "One",
      "\u0080": "Control",
    }),
    '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u20ac":"Euro Sign"}',
  );
  assert.equal(
    canonicalJson({ b: [1, { d: 1, c: 2 }], a: "\u000f" }),
    '{"a":"\\u000f","b":[1,{"c":2,"d":1}]}',
  );
});

Deno.test("canonicalJson() refuses values JSON cannot hold exactly", () => {
  for (
    const v of [NaN, Infinity, undefined, () => 1, 1n, new Date(0), new Map(), "\ud800", {
      x: [undefined],
    }]
  ) {
    assert.throws(
      () => canonicalJson(v),
      (e: unknown) => e instanceof TrustError && e.code === "NOT_CANONICAL",
    );
  }
});

Deno.test("canonicalJson() is idempotent and independent of key order (property)", () => {
  fc.assert(
    fc.property(fc.jsonValue(), (v) => {
      const once = canonicalJson(v);
      assert.equal(canonicalJson(JSON.parse(once)), once);
      // Reverse every object's key order: same canonical form.
      const reversed = JSON.parse(
        once,
        (_k, val) =>
          val && typeof val === "object" && !Array.isArray(val)
            ? Object.fromEntries(Object.entries(val).reverse())
            : val,
      );
      assert.equal(canonicalJson(reversed), once);
    }),
    { numRuns: 500 },
  );
});

Deno.test("canonicalJson() writes each number in its shortest round-trip form (property)", () => {
  fc.assert(
    fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (n) => {
      const s = canonicalJson(n);
      assert.equal(Number(s), Object.is(n, -0) ? 0 : n);
      assert.equal(s, Object.is(n, -0) ? "0" : String(n));
    }),
    { numRuns: 2000 },
  );
});

Deno.test("canonicalJson() agrees with npm:canonicalize on JSON values (property)", () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 6 }), fc.string({ unit: "grapheme" }), (v, k) => {
      const withKey = { [k]: v, a: [v, { [k]: 1 }] };
      assert.equal(canonicalJson(v), canonicalize(v));
      assert.equal(canonicalJson(withKey), canonicalize(withKey));
    }),
    { numRuns: 1000 },
  );
});

Deno.test("canonicalJson() names what it refuses and where", () => {
  const cases: [unknown, RegExp][] = [
    [{ a: [1, { b: NaN }] }, /\$\.a\[1\]\.b is not finite/],
    [{ x: "ok", y: ["\udc00"] }, /\$\.y\[0\] contains a lone surrogate/],
    [{ ["\ud800"]: 1 }, /Key at \$ contains a lone surrogate/],
    [{ d: new Date(0) }, /\$\.d is not a plain object/],
    [[1, undefined], /\$\[1\] has type undefined/],
  ];
  for (const [v, message] of cases) {
    assert.throws(
      () => canonicalJson(v),
      (e: unknown) =>
        e instanceof TrustError && e.code === "NOT_CANONICAL" && message.test(e.message),
    );
  }
  let deep: unknown = 1;
  for (let i = 0; i < 300; i++) deep = [deep];
  assert.throws(() => canonicalJson(deep), /nested too deeply/);
  // Keys sort by UTF-16 code units, so an astral character sorts before U+FFFF.
  assert.equal(canonicalJson({ "\uffff": 1, "\u{1f600}": 2 }), '{"\u{1f600}":2,"\uffff":1}');
});
