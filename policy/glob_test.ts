import assert from "node:assert/strict";
import fc from "fast-check";
import { compileGlob, globProblem, globToRegExp, isNormalizedPath } from "./glob.ts";
import { referenceGlobMatch } from "./_reference_eval.ts";

const CASES: [string, string, boolean][] = [
  ["**/id_rsa", "id_rsa", true],
  ["**/id_rsa", "a/b/id_rsa", true],
  ["**/id_rsa", "a/id_rsa.pub", false],
  ["**/id_rsa", "id_rsa/inside", true],
  ["secrets/**", "secrets/a", true],
  ["secrets/**", "secrets/a/b/c", true],
  ["secrets/**", "secrets", false],
  ["secrets/**", "app/secrets/a", false],
  [".env", ".env", true],
  [".env", "config/.env", true],
  [".env", ".env.local", false],
  [".env", ".env/x", true],
  ["/root", "root", true],
  ["/root", "a/root", false],
  ["dir/", "dir", false],
  ["dir/", "dir/x", true],
  ["dir/", "a/dir/x", true],
  ["*.pem", "a/b/key.pem", true],
  ["*.pem", "key.pem.bak", false],
  ["*.pem", "certs.pem/x", true],
  ["config/*.yml", "config/a.yml", true],
  ["config/*.yml", "config/a/b.yml", false],
  ["config/*.yml", "x/config/a.yml", false],
  ["a/**/b", "a/b", true],
  ["a/**/b", "a/x/y/b", true],
  ["a/**/b", "a/x/y/c", false],
  ["x?y", "xzy", true],
  ["x?y", "x/y", false],
  ["[a-c]*", "bz", true],
  ["[a-c]*", "dz", false],
  ["src/[!t]*.ts", "src/u.ts", true],
  ["src/[!t]*.ts", "src/t.ts", false],
  ["\\*lit", "*lit", true],
  ["\\*lit", "xlit", false],
  ["[]x]", "]", true],
  ["[z-a]", "m", false],
  ["**", "anything/at/all", true],
  ["a/b", "a/b/c", true],
  ["a/b", "x/a/b", false],
];

Deno.test("compileGlob() follows gitignore semantics", () => {
  for (const [glob, path, want] of CASES) {
    assert.equal(compileGlob(glob).test(path), want, `${glob} vs ${path}`);
    assert.equal(globToRegExp(glob).test(path), want, `regexp ${glob} vs ${path}`);
    assert.equal(referenceGlobMatch(glob, path), want, `reference ${glob} vs ${path}`);
  }
});

Deno.test("globProblem() flags globs that can never match or are invalid", () => {
  assert.equal(globProblem("secrets/**"), null);
  assert.equal(globProblem("**/id_rsa"), null);
  for (const g of ["", "/", "a//b", "./a", "a/../b", "a/.", "[z-a]"]) {
    assert.equal(globProblem(g)?.kind, "never", g);
  }
  for (const g of ["!a", "[abc", "a\\"]) assert.equal(globProblem(g)?.kind, "invalid", g);
});

Deno.test("isNormalizedPath() accepts only normalized relative paths", () => {
  for (const p of ["a", "a/b", ".env", "a/.b", "..a", "a..", "a b/c", "é/ü"]) {
    assert.equal(isNormalizedPath(p), true, p);
  }
  for (
    const p of [
      "",
      "/a",
      "a/",
      "a//b",
      ".",
      "..",
      "./a",
      "a/./b",
      "a/..",
      "a\\b",
      "a\nb",
      "a\u0000b",
    ]
  ) {
    assert.equal(isNormalizedPath(p), false, JSON.stringify(p));
  }
});

const globChar = fc.constantFrom(
  "a",
  "b",
  "/",
  "*",
  "**",
  "?",
  "[",
  "]",
  "!",
  "^",
  "-",
  "\\",
  ".",
  "x",
);
const segment = fc.constantFrom(
  "a",
  "b",
  "ab",
  "x",
  ".a",
  "a.b",
  "]",
  "-",
  "*",
  "?",
  "[",
  "\\",
  "!",
  "ba",
  "aaa",
);

Deno.test("compileGlob() agrees with the reference matcher on random globs and paths", () => {
  fc.assert(
    fc.property(
      fc.array(globChar, { minLength: 1, maxLength: 8 }).map((xs) => xs.join("")),
      fc.array(segment, { minLength: 1, maxLength: 5 }).map((xs) => xs.join("/")),
      (glob, path) => {
        if (!isNormalizedPath(path)) return;
        assert.equal(
          compileGlob(glob).test(path),
          referenceGlobMatch(glob, path),
          `${glob} vs ${path}`,
        );
      },
    ),
    { numRuns: 20000 },
  );
});
