import assert from "node:assert/strict";
import { findImports, importPlan, planModules } from "./_loader.ts";
import { AgentError } from "./error.ts";

const enc = new TextEncoder();
const specifiers = (source: string) => findImports(source).map((s) => s.specifier);

Deno.test("findImports() finds static, side-effect, re-export and literal dynamic imports", () => {
  const source = `
import a from "./a.ts";
import { b, c as d } from './b.ts';
import * as e from "./e.ts";
import "./side.ts";
export { f } from "./f.ts";
export * from "./g.ts";
import type { T } from "./types.ts";
import json from "./data.json" with { type: "json" };
const lazy = await import("./lazy.ts");
import {
  multi,
} from "./multi.ts";`;
  assert.deepEqual(specifiers(source), [
    "./a.ts",
    "./b.ts",
    "./e.ts",
    "./side.ts",
    "./f.ts",
    "./g.ts",
    "./types.ts",
    "./data.json",
    "./lazy.ts",
    "./multi.ts",
  ]);
});

Deno.test("findImports() ignores look-alikes in comments, strings, templates and regexes", () => {
  const source = `
// import x from "./comment.ts";
/* import "./block.ts"; */
const s = 'import "./string.ts"';
const t = \`import("./template.ts") \${ { a: "from" }.a } still "./template2.ts"\`;
const r = /from "\\.\\/regex.ts"/;
const o = { from: "./prop.ts", import: "./prop2.ts" };
loader.import("./member.ts");
const ratio = a / b / "./division.ts".length;
import real from "./real.ts";`;
  assert.deepEqual(specifiers(source), ["./real.ts"]);
});

Deno.test("findImports() finds an import inside a template expression", () => {
  const source = 'const m = `${await import("./in-template.ts")}`; import x from "./after.ts";';
  assert.deepEqual(specifiers(source), ["./in-template.ts", "./after.ts"]);
});

function files(entries: Record<string, string>): Map<string, Uint8Array> {
  return new Map(Object.entries(entries).map(([k, v]) => [k, enc.encode(v)]));
}

function loadCode(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof AgentError) return `${e.code}: ${e.message}`;
    throw e;
  }
  return "OK";
}

Deno.test("planModules() orders dependencies first and resolves ../ within the bundle", () => {
  const plan = planModules(
    files({
      "main.ts": `import "./lib/a.ts"; import "./shared.ts";`,
      "lib/a.ts": `import { s } from "../shared.ts";`,
      "shared.ts": `export const s = 1;`,
      "unused.ts": `import "npm:never-loaded";`,
    }),
    "main.ts",
  );
  assert.deepEqual(plan.modules.map((m) => m.path), ["shared.ts", "lib/a.ts", "main.ts"]);
});

Deno.test("planModules() refuses imports from outside the bundle, cycles and missing files", () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ "main.ts": `import "npm:chalk";` }, /only its own files/],
    [{ "main.ts": `import "https://example.com/x.ts";` }, /only its own files/],
    [{ "main.ts": `import "@infraveil/trust";` }, /only its own files/],
    [{ "main.ts": `import "/etc/passwd";` }, /only its own files/],
    [{ "main.ts": `import "../outside.ts";` }, /leaves the bundle/],
    [
      { "main.ts": `import "./a.ts";`, "a.ts": `import "./main.ts";` },
      /cycle main\.ts → a\.ts → main\.ts/,
    ],
    [{ "main.ts": `import "./missing.ts";` }, /not in the bundle/],
    [{ "main.ts": `import "./data.bin";`, "data.bin": "x" }, /not a module/],
    [{ "main.ts": `import "./\\u0061.ts";`, "a.ts": "" }, /escape/],
    [{ "main.ts": `import "./a.ts?x";`, "a.ts": "" }, /not acceptable/],
  ];
  for (const [entries, pattern] of cases) {
    const out = loadCode(() => planModules(files(entries), "main.ts"));
    assert.match(out, /^LOAD_FAILED/, JSON.stringify(entries));
    assert.match(out, pattern, JSON.stringify(entries));
  }
  assert.equal(
    loadCode(() => planModules(files({ "main.ts": `import "node:path";` }), "main.ts")),
    "OK",
  );
});

Deno.test("importPlan() imports a module graph from memory, sharing one instance per file", async () => {
  const plan = planModules(
    files({
      "main.ts": `import { count } from "./lib/counter.ts";
import { again } from "./lib/again.ts";
import data from "./data.json" with { type: "json" };
import { join } from "node:path";
export function start(): string { return [count(), again(), data.n, join("a", "b")].join(","); }`,
      "lib/counter.ts": `let n = 0; export const count = (): number => ++n;`,
      "lib/again.ts": `import { count } from "./counter.ts"; export const again = () => count();`,
      "data.json": `{"n": 7}`,
    }),
    "main.ts",
  );
  const mod = await importPlan(plan);
  assert.equal((mod.start as () => string)(), "1,2,7,a/b");
});

Deno.test("importPlan() reports a module that does not compile as LOAD_FAILED", async () => {
  const plan = planModules(files({ "main.ts": `export const = ;` }), "main.ts");
  await assert.rejects(
    importPlan(plan),
    (e) => e instanceof AgentError && e.code === "LOAD_FAILED",
  );
});

Deno.test("findImports() and planModules() never throw anything but AgentError", async () => {
  const fc = (await import("fast-check")).default;
  const pieces = fc.constantFrom(
    "import",
    "from",
    "export",
    "(",
    ")",
    "{",
    "}",
    "`",
    "${",
    "'",
    '"',
    "/",
    "//",
    "/*",
    "*/",
    "\\",
    "\n",
    " ",
    "./a.ts",
    "x",
    ".",
    "=",
    "return",
  );
  fc.assert(
    fc.property(fc.array(pieces, { maxLength: 40 }), (parts) => {
      const source = parts.join("");
      for (const site of findImports(source)) {
        if (site.start < 0 || site.end > source.length || site.start >= site.end) return false;
      }
      try {
        planModules(files({ "main.ts": source, "a.ts": "export {};" }), "main.ts");
      } catch (e) {
        return e instanceof AgentError;
      }
      return true;
    }),
    { numRuns: 3000 },
  );
});
