import assert from "node:assert/strict";
import { TRANSFORMS } from "./_transforms.ts";
import { compileRegex } from "./_regex.ts";

const t = (name: string, s: string): string => TRANSFORMS[name](s);

Deno.test("transformations decode like ModSecurity", () => {
  assert.equal(t("urldecodeuni", "a%27b+c%u0041%uff07%zz"), "a'b cA'%zz");
  assert.equal(t("htmlentitydecode", "&lt;a&#x41;&#66&quot;"), '<aAB"');
  assert.equal(t("jsdecode", "\\x41\\u0042\\103\\n"), "ABC\n");
  assert.equal(t("cssdecode", "\\61 b\\00003c"), "ab<");
  assert.equal(t("cmdline", 'C^md.exe /c "Dir" ,  x'), "cmd.exe/c dir x");
  assert.equal(t("normalizepath", "/a/./b/../../c//d"), "/c/d");
  assert.equal(t("normalizepathwin", "a\\..\\b"), "b");
  assert.equal(t("removecommentschar", "a/*b*/--c#"), "abc");
  assert.equal(t("replacecomments", "a/*x*/b/*y"), "a b ");
  assert.equal(t("base64decode", "YWJj"), "abc");
  assert.equal(t("hexencode", "\x00\xff"), "00ff");
  assert.equal(t("utf8tounicode", "\xc3\xa9"), "%u00e9");
  assert.equal(t("length", "abc"), "3");
  assert.equal(t("compresswhitespace", "a \t\n b"), "a b");
  assert.equal(t("lowercase", "AbC\xc0"), "abc\xc0");
});

Deno.test("compileRegex() maps inline flags and PCRE's $", () => {
  assert.ok(compileRegex("(?i)^abc$", "x").test("ABC\n"));
  assert.ok(compileRegex("^(?i)up", "x").test("UP"));
  assert.ok(!compileRegex("^a(?i)b|c", "x").test("A"));
  assert.ok(compileRegex("^a(?i)b|c", "x").test("aB"));
  assert.ok(compileRegex("^a(?i)b|c", "x").test("C"));
  assert.ok(compileRegex("[[:digit:]]+", "x").test("7"));
  assert.throws(() => compileRegex("(", "f.conf:9"), /f\.conf:9/);
});
