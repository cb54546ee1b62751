import assert from "node:assert/strict";
import fc from "fast-check";
import { buildGroupScanner, requiredLiterals } from "./_prefilter.ts";
import { compileRegex } from "./_regex.ts";
import { ANY_HIGH_BYTE, ANY_WIDE_CHAR, IDENTITY_UNLESS, TRANSFORMS } from "./_transforms.ts";

const lits = (src: string): string[] | undefined =>
  requiredLiterals(compileRegex(src, "test"))?.sort();

function fold(s: string): string {
  let o = "";
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i) & 0xff;
    if (c >= 65 && c <= 90) c += 32;
    o += String.fromCharCode(c);
  }
  return o;
}

Deno.test("requiredLiterals() finds the literals every match contains", () => {
  assert.deepEqual(lits("abc"), ["abc"]);
  assert.deepEqual(lits("(?i)union[\\s]+select"), ["select"]);
  assert.deepEqual(lits("foo|bar"), ["bar", "foo"]);
  assert.deepEqual(lits("[\\\\/;]\\.{2,3}x"), ["..x"]);
  assert.deepEqual(lits("(?i:AB)c"), ["abc"]);
  assert.deepEqual(lits("\\x{bc}[^>]*>"), ["\xbc"]);
  assert.deepEqual(lits("(a)\\1"), ["a"]);
  assert.deepEqual(lits("^GET /x$"), ["get /x"]);
});

Deno.test("requiredLiterals() gives up when a match may hold no literal", () => {
  assert.equal(lits("a*"), undefined);
  assert.equal(lits("a|.*"), undefined);
  assert.equal(lits("[^a]"), undefined);
  assert.equal(lits("\\w+"), undefined);
  assert.equal(lits("(?i)\\xe9"), undefined); // non-ASCII case folding is not modelled
  assert.equal(lits("x?"), undefined);
  assert.equal(lits("^$"), undefined);
});

// A small regex grammar over a tiny alphabet, so random strings often match. Groups nest at
// most two deep: deeper nested quantifiers (`(?:(?:(?:a+)+)+)+`) backtrack exponentially on
// the non-matching values, which made a run take minutes now and then.
const atom: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom("a", "b", "A", "-", "\\.", "\\d", "\\s", "\\w", ".", "[ab]", "[^a]", "[a-c]"),
  fc.constantFrom("^", "$", "\\b", "(?=a)", "(?!b)", "\\x41", "\\x{62}", "é"),
);
const regex: fc.Arbitrary<string> = fc.letrec<{ re: string; seq: string; item: string }>(
  (tie) => ({
    re: fc.array(tie("seq"), { minLength: 1, maxLength: 3 }).map((xs) => xs.join("|")),
    seq: fc.array(tie("item"), { minLength: 1, maxLength: 4 }).map((xs) => xs.join("")),
    item: fc.tuple(
      fc.oneof(
        { depthSize: "small", withCrossShrink: true, maxDepth: 2 },
        atom,
        tie("re").map((r) => `(?:${r})`),
      ),
      fc.constantFrom("", "", "", "*", "+", "?", "{2}", "{1,3}", "{2,}", "*?"),
    ).map(([a, q]) => (/^[\^$]|^\\b|^\(\?[=!]/.test(a) ? a : a + q)),
  }),
).re;

Deno.test("requiredLiterals() is sound: a value without the literals never matches", () => {
  fc.assert(
    fc.property(
      fc.tuple(fc.constantFrom("", "(?i)"), regex),
      fc.array(fc.stringMatching(/^[abAB.\- é\n9c]{0,8}$/), { minLength: 1, maxLength: 30 }),
      ([flags, src], values) => {
        let re: RegExp;
        try {
          re = compileRegex(flags + src, "fuzz");
        } catch {
          return; // not a valid pattern
        }
        const need = requiredLiterals(re);
        if (need === undefined) return;
        for (const v of values) {
          if (re.test(v)) {
            assert.ok(need.some((l) => fold(v).includes(l)), `${re} matched ${JSON.stringify(v)}`);
          }
        }
      },
    ),
    { numRuns: 1500 },
  );
});

Deno.test("the group scanner reports exactly the groups one of whose literals occurs", () => {
  fc.assert(
    fc.property(
      fc.array(fc.array(fc.stringMatching(/^[aAb\-.\xe9]{1,3}$/), { maxLength: 4 }), {
        minLength: 1,
        maxLength: 40,
      }),
      fc.stringMatching(/^[aAbB\-.\xe9\xc9x]{0,12}$/),
      (groups, value) => {
        for (const pack of [true, false]) {
          const sc = buildGroupScanner(groups, pack);
          // twice: the second scan must not be affected by the first one's bookkeeping
          for (const v of [value, value]) {
            const sat = sc.scan(v);
            groups.forEach((g, i) => {
              const hit = (sat[(i / 30) | 0] & (1 << (i % 30))) !== 0;
              assert.equal(hit, g.some((l) => fold(v).includes(fold(l))), `group ${i}`);
            });
          }
        }
      },
    ),
    { numRuns: 500 },
  );
});

Deno.test("IDENTITY_UNLESS: a transformation leaves values without its characters unchanged", () => {
  const alphabet = "aZ09 \t\n\r\f\v\0%+&\\\"'^,;/.*<-#!()\x80\xa0\xe9\u0100\u017f";
  for (const [name, unless] of Object.entries(IDENTITY_UNLESS)) {
    const t = TRANSFORMS[name];
    const excluded = (c: string): boolean =>
      unless.includes(c) || (unless.includes(ANY_HIGH_BYTE) && c >= "\x80" && c <= "\xff") ||
      (unless.includes(ANY_WIDE_CHAR) && c > "\xff") ||
      (unless.includes("A") && c >= "A" && c <= "Z") ||
      (unless.includes("a") && c >= "a" && c <= "z");
    const allowed = [...alphabet].filter((c) => !excluded(c));
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...allowed), { maxLength: 12 }), (cs) => {
        const s = cs.join("");
        assert.equal(t(s), s, `${name}(${JSON.stringify(s)})`);
      }),
      { numRuns: 300 },
    );
  }
});
