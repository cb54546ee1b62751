import assert from "node:assert/strict";
import fc from "fast-check";
import { parseActions, parseSecLang, parseTargets } from "./parser.ts";
import { CrsError } from "./_errors.ts";

Deno.test("parseSecLang() joins continued lines and keeps the starting line number", () => {
  const d = parseSecLang(
    '# c\n\nSecRule ARGS "@rx a\\"b" \\\n    "id:1,\\\n    phase:2"\nSecMarker END',
    "f.conf",
  );
  assert.equal(d.length, 2);
  assert.equal(d[0].line, 3);
  assert.deepEqual(d[0].args, ["ARGS", '@rx a"b', "id:1,    phase:2"]);
  assert.deepEqual(d[1].args, ["END"]);
});

Deno.test("parseSecLang() names file:line of an unterminated quote", () => {
  assert.throws(() => parseSecLang('\nSecRule ARGS "@rx a', "bad.conf"), (e: unknown) => {
    assert.ok(e instanceof CrsError);
    assert.equal(e.code, "PARSE");
    assert.match(e.message, /bad\.conf:2/);
    return true;
  });
});

Deno.test("parseSecLang() throws nothing but CrsError on arbitrary input", () => {
  fc.assert(fc.property(fc.string(), (s) => {
    try {
      parseSecLang(s, "x");
    } catch (e) {
      assert.ok(e instanceof CrsError);
    }
  }));
});

Deno.test("parseActions() keeps commas inside quoted values", () => {
  const a = parseActions("id:1,msg:'a, b',t:none,setvar:'tx.x=+%{tx.y}',chain", "f:1");
  assert.deepEqual(a.map((x) => [x.name, x.value]), [
    ["id", "1"],
    ["msg", "a, b"],
    ["t", "none"],
    ["setvar", "tx.x=+%{tx.y}"],
    ["chain", undefined],
  ]);
});

Deno.test("parseTargets() handles exclusions, counts, regex and XML selectors", () => {
  const t = parseTargets("ARGS|!ARGS:/^a|b$/|&TX:x|XML:/*|XML://@*|REQUEST_HEADERS:'User-Agent'");
  assert.deepEqual(t.map((x) => [x.name, x.selector, x.exclude, x.count]), [
    ["ARGS", undefined, false, false],
    ["ARGS", "/^a|b$/", true, false],
    ["TX", "x", false, true],
    ["XML", "/*", false, false],
    ["XML", "//@*", false, false],
    ["REQUEST_HEADERS", "User-Agent", false, false],
  ]);
});
