import assert from "node:assert/strict";
import fc from "fast-check";
import { hasKeyPrefix, keyPrefixOf } from "./_keys.ts";

Deno.test("keyPrefixOf() takes only ^literal selectors with flag i", () => {
  assert.equal(keyPrefixOf(/^header_name_920450_/i), "header_name_920450_");
  assert.equal(keyPrefixOf(/^Abc/i), "abc");
  assert.equal(keyPrefixOf(/^abc/), undefined);
  assert.equal(keyPrefixOf(/^abc/iu), undefined);
  assert.equal(keyPrefixOf(/^abc/im), undefined);
  assert.equal(keyPrefixOf(/paramcounter_.*/i), undefined);
  assert.equal(keyPrefixOf(/^a.c/i), undefined);
  assert.equal(keyPrefixOf(/^a-c/i), undefined);
});

Deno.test("hasKeyPrefix() answers exactly like the selector regex", () => {
  const keyChar = fc.constantFrom(
    "a",
    "A",
    "h",
    "H",
    "k",
    "K",
    "s",
    "S",
    "i",
    "I",
    "_",
    "0",
    "9",
    "-",
    ".",
    "\u212a",
    "\u017f",
    "\u0130",
    "\u0131",
    "\xe9",
    "\xc9",
    "\xff",
  );
  const word = fc.array(keyChar, { maxLength: 8 }).map((a) => a.join(""));
  fc.assert(
    fc.property(fc.stringMatching(/^[A-Za-z0-9_]{1,5}$/), word, fc.boolean(), (lit, rest, pre) => {
      const re = new RegExp(`^${lit}`, "i");
      const prefix = keyPrefixOf(re)!;
      for (const k of [rest, pre ? lit.toUpperCase() + rest : lit.toLowerCase() + rest]) {
        assert.equal(hasKeyPrefix(k, prefix), re.test(k), `${re} ${JSON.stringify(k)}`);
      }
    }),
    { numRuns: 3000 },
  );
});
