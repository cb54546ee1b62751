import assert from "node:assert/strict";
import fc from "fast-check";
import { actionSchema, readActions, validateAction } from "./action.ts";
import { isNormalizedPath } from "./glob.ts";

Deno.test("validateAction() accepts the documented example", () => {
  assert.deepEqual(
    validateAction({
      agent: "deployer",
      action: "deploy",
      environment: "production",
      service: "web",
      targets: ["web-1"],
      files: ["src/app.ts"],
      category: "auth",
      reason: "fix",
    }),
    [],
  );
});

Deno.test("validateAction() names every violation by JSON path", () => {
  const errs = validateAction({
    agent: "",
    action: "Deploy!",
    targets: ["a", "a", 3],
    files: ["ok", "../x", "/abs", 4],
    category: "bad cat",
    extra: 1,
    "we ird": 2,
  });
  assert.deepEqual(errs.map((e) => e.path), [
    "$.extra",
    '$["we ird"]',
    "$.agent",
    "$.action",
    "$.category",
    "$.targets[1]",
    "$.targets[2]",
    "$.files[1]",
    "$.files[2]",
    "$.files[3]",
  ]);
  assert.deepEqual(validateAction([]).map((e) => e.path), ["$"]);
  assert.deepEqual(validateAction({}).map((e) => e.path), ["$.agent", "$.action"]);
  assert.deepEqual(validateAction({ agent: "a", action: "deploy" }).map((e) => e.path), [
    "$.files",
  ]);
  assert.deepEqual(validateAction({ agent: "a", action: "remediate" }, "$[3]").map((e) => e.path), [
    "$[3].category",
  ]);
});

Deno.test("actionSchema's file pattern, the validator and the evaluator agree on paths", () => {
  const props = actionSchema.properties as Record<string, { items?: { pattern?: string } }>;
  const re = new RegExp(props.files.items!.pattern!);
  fc.assert(
    fc.property(
      fc.array(fc.constantFrom("a", "/", ".", "..", "\\", "\n", "b.c", ""), { maxLength: 6 }).map((
        x,
      ) => x.join("")),
      (p) => {
        if (p === "" || p.length > 4096) return;
        assert.equal(re.test(p), isNormalizedPath(p), JSON.stringify(p));
        assert.equal(
          validateAction({ agent: "a", action: "deploy", files: [p] }).length === 0,
          isNormalizedPath(p),
        );
      },
    ),
    { numRuns: 5000 },
  );
  assert.deepEqual(actionSchema.required, ["agent", "action"]);
  assert.equal(actionSchema.additionalProperties, false);
});

Deno.test("readActions() reads one object, an array, or JSON Lines", () => {
  assert.deepEqual(readActions('{"agent":"a","action":"read"}').items.map((i) => i.label), ["$"]);
  assert.deepEqual(readActions('[{"a":1},{"b":2}]').items.map((i) => i.path), ["$[0]", "$[1]"]);
  const jsonl = readActions('{"a":1}\n\n{"b":2}\n');
  assert.deepEqual(jsonl.items.map((i) => i.label), ["line 1", "line 3"]);
  assert.match(readActions('{"a":1}\n{"b":\n').error!, /line 2/);
  assert.match(readActions("").error!, /empty/);
  assert.match(readActions("[]").error!, /empty/);
  assert.match(readActions("{nope").error!, /invalid JSON/);
});
