import assert from "node:assert/strict";
import { lintPolicy } from "./lint.ts";
import { parsePolicy } from "./parse.ts";

const lint = (body: string, head = "  version 1\n") =>
  lintPolicy(parsePolicy(`policy "p" {\n${head}${body}}\n`, { file: "t.policy" })).map((d) =>
    `${d.code}:${d.severity[0]}@${d.line}:${d.col}`
  );

Deno.test("lintPolicy() requires a supported version", () => {
  assert.deepEqual(lint('  agent "a" {\n    allow restart\n  }\n', ""), ["PL110:e@1:1"]);
  assert.deepEqual(lint('  agent "a" {\n    allow restart\n  }\n', "  version 2\n"), [
    "PL111:e@2:3",
  ]);
});

Deno.test("lintPolicy() flags duplicate agents, environments and keys", () => {
  assert.deepEqual(lint('  agent "a" {\n  }\n  agent "a" {\n  }\n'), ["PL201:e@5:3"]);
  const two = lintPolicy(
    parsePolicy('policy "p" {\n  version 1\n}\npolicy "p" {\n  version 1\n}\n'),
  );
  assert.deepEqual(two.map((d) => [d.code, d.line]), [["PL219", 1], ["PL202", 4], ["PL219", 4]]);
  assert.deepEqual(lint("  deploy {\n    max_files 1\n    max_files 2\n  }\n"), [
    "PL219:w@1:1",
    "PL104:e@5:5",
  ]);
  assert.deepEqual(lint("  deploy {\n  }\n  deploy {\n  }\n"), ["PL219:w@1:1", "PL104:e@5:3"]);
});

Deno.test("lintPolicy() flags an action both allowed and denied", () => {
  assert.deepEqual(
    lint('  agent "a" {\n    allow restart, deploy\n    deny deploy\n  }\n  deploy {\n  }\n'),
    [
      "PL203:e@4:20",
    ],
  );
});

Deno.test("lintPolicy() flags unknown action names with a suggestion", () => {
  const d = lintPolicy(
    parsePolicy(
      'policy "p" {\n  version 1\n  agent "a" {\n    allow restrat\n    deny nuke\n    action deplyo {\n    }\n  }\n}\n',
    ),
  );
  assert.deepEqual(d.map((x) => x.code), ["PL205", "PL205", "PL205"]);
  assert.match(d[0].message, /did you mean "restart"/);
});

Deno.test("lintPolicy() flags globs that can never match and invalid globs", () => {
  assert.deepEqual(
    lint('  deploy {\n    block_paths "", "a//b", "../x", "[z-a]", "!keep", "[ab"\n  }\n'),
    [
      "PL219:w@1:1",
      "PL204:e@4:17",
      "PL204:e@4:21",
      "PL204:e@4:29",
      "PL204:e@4:37",
      "PL216:e@4:46",
      "PL216:e@4:55",
    ],
  );
});

Deno.test("lintPolicy() checks approvals, freezes and overrides", () => {
  assert.deepEqual(lint('  approvals 0\n  agent "a" {\n  }\n'), ["PL210:e@3:3"]);
  assert.deepEqual(
    lint('  freeze "2026-12-27T00:00:00Z" .. "2026-12-24T00:00:00Z"\n  agent "a" {\n  }\n'),
    [
      "PL209:e@3:3",
    ],
  );
  assert.deepEqual(lint('  deploy {\n    approvals 2\n  }\n  agent "a" {\n  }\n'), ["PL211:w@4:5"]);
  assert.deepEqual(lint('  deploy {\n    max_files 0\n  }\n  agent "a" {\n  }\n'), ["PL215:w@4:5"]);
  assert.deepEqual(
    lint(
      '  agent "a" {\n    allow restart\n    action deploy {\n    }\n    action restart {\n      max_files 3\n    }\n    action restart {\n    }\n  }\n',
    ),
    ["PL212:w@5:5", "PL213:w@8:7", "PL207:e@10:5"],
  );
  assert.deepEqual(lint('  agent "a" {\n    allow deploy\n  }\n'), ["PL214:w@4:11"]);
  assert.deepEqual(lint('  agent "a" {\n    allow restart, restart\n  }\n'), ["PL206:w@4:20"]);
});

Deno.test("lintPolicy() flags a file without policy blocks", () => {
  assert.deepEqual(lintPolicy(parsePolicy("# nothing\n")).map((d) => d.code), ["PL200"]);
});
