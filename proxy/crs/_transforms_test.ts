import assert from "node:assert/strict";
import fc from "fast-check";
import { cmdLineChars, normalizePath, normalizePathWin, TRANSFORMS } from "./_transforms.ts";
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

// The fast paths of cmdLine and normalizePath(Win) against the plain implementations.

/** normalizePath as first written (no fast paths): the reference. */
function normalizePathReference(s: string): string {
  if (s.indexOf("/") < 0 && s.indexOf(".") < 0) return s;
  const abs = s.startsWith("/");
  const trailing = s.endsWith("/") || s.endsWith("/.") || s.endsWith("/..");
  const out: string[] = [];
  for (const p of s.split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!abs) out.push("..");
      continue;
    }
    out.push(p);
  }
  let r = (abs ? "/" : "") + out.join("/");
  if (trailing && out.length > 0) r += "/";
  return r;
}

const pathChars = fc.stringMatching(/^[/.\\a]{0,12}$/);
const cmdChars = fc.array(
  fc.constantFrom(
    " ",
    ",",
    ";",
    "\t",
    "\r",
    "\n",
    "\\",
    '"',
    "'",
    "^",
    "/",
    "(",
    "A",
    "z",
    "Z",
    "\xc0",
    "\xff",
    "\u0130",
    "\u0100",
    "1",
  ),
  { maxLength: 20 },
).map((a) => a.join(""));

Deno.test("cmdLine() equals the character-by-character implementation", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        cmdChars,
        fc.string({ maxLength: 30 }),
        fc.string({ unit: "binary", maxLength: 30 }),
      ),
      (s) => {
        assert.equal(t("cmdline", s), cmdLineChars(s));
      },
    ),
    { numRuns: 3000 },
  );
  for (const long of ["A ;x".repeat(1000), "A ".repeat(3000), "b\u0100".repeat(3000)]) {
    assert.equal(t("cmdline", long), cmdLineChars(long));
  }
});

Deno.test("normalizePath() and normalizePathWin() equal the plain implementation", () => {
  fc.assert(
    fc.property(fc.oneof(pathChars, fc.string({ maxLength: 20 })), (s) => {
      assert.equal(normalizePath(s), normalizePathReference(s));
      assert.equal(normalizePathWin(s), normalizePathReference(s.replace(/\\/g, "/")));
    }),
    { numRuns: 5000 },
  );
  for (
    const s of ["/", "/a/", "/a", ".", "..", "/.", "/..", "/...", "/.a/", "//", "a/.", "/a//b"]
  ) {
    assert.equal(normalizePath(s), normalizePathReference(s), s);
  }
});
