import assert from "node:assert/strict";
import fc from "fast-check";
import { compilePolicy } from "./compile.ts";
import { PolicyError } from "./error.ts";
import { evaluate } from "./evaluate.ts";
import { explainAction } from "./explain.ts";
import { formatPolicy } from "./format.ts";
import { lintPolicy } from "./lint.ts";
import { parsePolicy } from "./parse.ts";
import { validateAction } from "./action.ts";
import { randomAction, randomPolicyText, rng } from "./_random.ts";
import type { PolicyAction } from "./types.ts";

const EXAMPLE = Deno.readTextFileSync(new URL("./testdata/production.policy", import.meta.url));

/** Run f; anything thrown must be a PolicyError. */
function onlyOwnErrors(f: () => void): void {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof PolicyError, `threw ${e}`);
  }
}

function everything(text: string): void {
  const parsed = parsePolicy(text, { file: "f.policy" });
  const diags = lintPolicy(parsed);
  for (const d of diags) {
    assert.ok(d.line >= 1 && d.col >= 1 && /^PL\d{3}$/.test(d.code), JSON.stringify(d));
  }
  onlyOwnErrors(() => formatPolicy(text));
  onlyOwnErrors(() => {
    const c = compilePolicy(parsed);
    evaluate(c, { agent: "deployer", action: "deploy", files: ["a"] });
  });
}

Deno.test("parse, lint, fmt and compile never throw anything but PolicyError on random text", () => {
  fc.assert(fc.property(fc.string({ maxLength: 300 }), everything), { numRuns: 3000 });
  const alphabet = fc.constantFrom(
    'policy "p" {',
    "}",
    "{",
    "\n",
    "version 1",
    " ",
    '"',
    "agent",
    "allow",
    ",",
    "..",
    "#",
    "\\",
    "é",
    "\u0000",
    "deploy",
    "block_paths",
  );
  fc.assert(fc.property(fc.array(alphabet, { maxLength: 60 }).map((x) => x.join("")), everything), {
    numRuns: 3000,
  });
});

Deno.test("parse and lint never throw on mutated valid policies", () => {
  fc.assert(
    fc.property(
      fc.integer(),
      fc.array(fc.tuple(fc.nat(), fc.string({ maxLength: 3 }), fc.nat(5)), { maxLength: 6 }),
      (seed, edits) => {
        let text = seed % 3 === 0 ? EXAMPLE : randomPolicyText(rng(seed));
        for (const [pos, s, del] of edits) {
          const i = pos % (text.length + 1);
          text = text.slice(0, i) + s + text.slice(i + del);
        }
        everything(text);
      },
    ),
    { numRuns: 2000 },
  );
});

Deno.test("evaluate, explain and validateAction never throw on arbitrary JSON actions", () => {
  const compiled = compilePolicy(parsePolicy(EXAMPLE));
  const key = fc.constantFrom(
    "agent",
    "action",
    "environment",
    "service",
    "targets",
    "files",
    "category",
    "reason",
    "__proto__",
    "x",
  );
  const value = fc.oneof(
    fc.jsonValue({ maxDepth: 2 }),
    fc.constantFrom("deployer", "deploy", "remediate", "production", ["a"], ["secrets/x", ".env"]),
  );
  const action = fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.dictionary(key, value, { maxKeys: 8 }));
  fc.assert(
    fc.property(action, fc.boolean(), (a, breakGlass) => {
      validateAction(a);
      const d = evaluate(compiled, a as unknown as PolicyAction, { now: 0, breakGlass });
      assert.ok(["allow", "approval_required", "deny"].includes(d.decision));
      assert.ok(d.reasons.length > 0);
      explainAction(compiled, a as unknown as PolicyAction, { now: 0 });
    }),
    { numRuns: 5000 },
  );
});

Deno.test("explainAction() agrees with evaluate(): every deny reason is a true step", () => {
  for (let p = 0; p < 300; p++) {
    const r = rng(p);
    const parsed = parsePolicy(randomPolicyText(r), { file: "f" });
    if (lintPolicy(parsed).some((d) => d.severity === "error")) continue;
    const c = compilePolicy(parsed);
    for (let i = 0; i < 20; i++) {
      const a = randomAction(r, parsed.policy);
      if (validateAction(a).length) continue;
      const e = explainAction(c, a, { now: Date.parse("2026-12-21T00:00:00Z") });
      for (const x of e.decision.reasons) {
        if (x.effect !== "deny" && x.effect !== "allow" && x.effect !== "approval") continue;
        assert.ok(
          e.steps.some((s) =>
            s.rule === x.rule && s.result && s.line === x.line && s.col === x.col
          ),
          `${x.rule}@${x.line}:${x.col} missing from explain`,
        );
      }
    }
  }
});
