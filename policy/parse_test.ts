import assert from "node:assert/strict";
import { parsePolicy } from "./parse.ts";
import { lintPolicy } from "./lint.ts";

const EXAMPLE = Deno.readTextFileSync(new URL("./testdata/production.policy", import.meta.url));
const codes = (text: string) =>
  lintPolicy(parsePolicy(text, { file: "t.policy" })).filter((d) => d.severity === "error")
    .map((d) => `${d.code}@${d.line}:${d.col}`);

Deno.test("parsePolicy() parses the reference example into the model, lint clean", () => {
  const { policy, diagnostics } = parsePolicy(EXAMPLE, { file: "production.policy" });
  assert.deepEqual(diagnostics, []);
  assert.deepEqual(lintPolicy({ policy, diagnostics }), []);
  const p = policy.policies[0];
  assert.equal(p.environment, "production");
  assert.equal(p.version?.value, 1);
  assert.equal(p.deploy?.requireApproval?.value, true);
  assert.deepEqual(p.deploy?.blockPaths.map((g) => g.value), [".env", "secrets/**", "**/id_rsa"]);
  assert.deepEqual(p.deploy?.blockPaths.map((g) => [g.loc.line, g.loc.col]), [[5, 17], [5, 25], [
    5,
    39,
  ]]);
  assert.equal(p.deploy?.maxFiles?.value, 50);
  const a = p.agents[0];
  assert.equal(a.name, "deployer");
  assert.deepEqual(a.allow.map((x) => x.value), ["restart", "deploy", "rollback"]);
  assert.deepEqual(a.deny.map((x) => x.value), ["delete", "db_migrate", "drop_table"]);
  assert.equal(a.blastRadius?.value, "single_host");
  assert.deepEqual(p.remediation?.blockCategories.map((x) => x.value), [
    "auth",
    "crypto",
    "billing",
  ]);
  assert.equal(p.remediation?.requireApproval?.value, true);
  assert.equal(p.remediation?.loc.file, "production.policy");
});

Deno.test("parsePolicy() accepts comments, continuation lines, one-line blocks and freezes", () => {
  const text = `# top
policy "p" { // trailing
  version 1
  approvals 2
  freeze "2026-12-24T00:00:00Z" .. "2026-12-27T00:00:00+01:00" "holidays"
  deploy {
    block_paths ".env",
      "secrets/**", # why
      "**/id_rsa"
  }
  action deploy { approvals 3 }
  agent "a" {
    allow deploy
    action deploy {
      max_files 2
      blast_radius fleet
    }
  }
}
`;
  const { policy, diagnostics } = parsePolicy(text);
  assert.deepEqual(diagnostics, []);
  const p = policy.policies[0];
  assert.equal(p.approvals?.value, 2);
  assert.equal(p.freezes[0].reason, "holidays");
  assert.equal(p.freezes[0].endMs, Date.parse("2026-12-26T23:00:00Z"));
  assert.deepEqual(p.deploy?.blockPaths.map((g) => g.value), [".env", "secrets/**", "**/id_rsa"]);
  assert.equal(p.actions[0].approvals?.value, 3);
  assert.equal(p.agents[0].actions[0].maxFiles?.value, 2);
  assert.equal(p.agents[0].actions[0].blastRadius?.value, "fleet");
});

Deno.test("parsePolicy() decodes string escapes", () => {
  const { policy, diagnostics } = parsePolicy('policy "a\\"b\\\\c\\u0041" {\n  version 1\n}\n');
  assert.deepEqual(diagnostics, []);
  assert.equal(policy.policies[0].environment, 'a"b\\cA');
});

Deno.test("parsePolicy() reports syntax errors with file:line:col", () => {
  assert.deepEqual(
    codes('policy "p" {\n  version 1\n  deploy {\n    block_paths ".env\n  }\n}\n'),
    [
      "PL002@4:17",
    ],
  );
  assert.deepEqual(codes("policy 'p' {\n}\n").slice(0, 1), ["PL004@1:8"]);
  assert.deepEqual(codes('policy "p" {\n  version 1\n'), ["PL005@3:1"]);
  assert.deepEqual(codes('policy "p" {\n  version 1\n}\n}\n'), ["PL005@4:1"]);
  assert.deepEqual(codes('policy "p" {\n  version 1;\n}\n'), ["PL004@2:12"]);
  assert.deepEqual(codes('policy "p" {\n  version 1\n  "x"\n}\n'), ["PL001@3:3"]);
  assert.deepEqual(codes('policy "p" {\n  version 1\n  max_files 5 extra {\n}\n'), [
    "PL101@3:3",
    "PL005@5:1",
  ]);
  assert.deepEqual(codes('policy "p" {\n  version 1\n  agent "a" {\n    allow a\\b\n  }\n}\n'), [
    "PL004@4:12",
  ]);
});

Deno.test("parsePolicy() reports unknown blocks and keys with a suggestion", () => {
  const d = lintPolicy(
    parsePolicy(
      'policy "p" {\n  version 1\n  deploys {\n  }\n  agent "a" {\n    alow restart\n  }\n}\n',
    ),
  );
  assert.deepEqual(d.map((x) => [x.code, x.line]), [["PL101", 3], ["PL102", 6]]);
  assert.match(d[0].message, /did you mean "deploy"/);
  assert.match(d[1].message, /did you mean "allow"/);
  assert.deepEqual(codes('polcy "p" {\n}\n'), ["PL101@1:1"]);
  assert.deepEqual(codes('policy "p" {\n  version 1\n  deploy 5\n}\n'), ["PL106@3:3"]);
  assert.deepEqual(codes('policy "p" {\n  version {\n  }\n}\n'), ["PL110@1:1", "PL106@2:3"]);
});

Deno.test("parsePolicy() reports wrong value types", () => {
  const t = (body: string) => codes(`policy "p" {\n  version 1\n${body}\n}\n`);
  assert.deepEqual(t('  deploy {\n    max_files "50"\n  }'), ["PL103@4:15"]);
  assert.deepEqual(t("  deploy {\n    require_approval yes\n  }"), ["PL103@4:22"]);
  assert.deepEqual(t("  deploy {\n    block_paths .env\n  }"), ["PL004@4:17"]);
  assert.deepEqual(t("  deploy {\n    block_paths secrets\n  }"), ["PL103@4:17"]);
  assert.deepEqual(t('  agent "a" {\n    allow "restart"\n  }'), ["PL103@4:11"]);
  assert.deepEqual(t('  agent "a" {\n    allow restart deploy\n  }'), ["PL103@4:19"]);
  assert.deepEqual(t('  agent "a" {\n    blast_radius host\n  }'), ["PL103@4:18"]);
  assert.deepEqual(t('  freeze "2026-12-24T00:00:00Z"'), ["PL103@3:10"]);
  assert.deepEqual(t('  freeze "2026-12-24" .. "2026-12-27T00:00:00Z"'), ["PL208@3:10"]);
  assert.deepEqual(t("  approvals 99999999999"), ["PL103@3:13"]);
  assert.deepEqual(t("  agent a {\n  }"), ["PL105@3:9"]);
  assert.deepEqual(t('  action "deploy" {\n  }'), ["PL105@3:10"]);
  assert.deepEqual(t('  deploy "x" {\n  }'), ["PL105@3:10"]);
});
