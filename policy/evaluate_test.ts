import assert from "node:assert/strict";
import { compilePolicy } from "./compile.ts";
import { evaluate } from "./evaluate.ts";
import { parsePolicy } from "./parse.ts";
import { referenceEvaluate } from "./_reference_eval.ts";
import type { Decision, EvaluateOptions, PolicyAction } from "./types.ts";

const EXAMPLE = Deno.readTextFileSync(new URL("./testdata/production.policy", import.meta.url));
const NOW = Date.parse("2026-06-01T00:00:00Z");

function decide(
  text: string,
  action: PolicyAction,
  options: EvaluateOptions = { now: NOW },
): Decision {
  const parsed = parsePolicy(text, { file: "t.policy" });
  const compiled = compilePolicy(parsed);
  const d = evaluate(compiled, action, options);
  // Every decision here is also checked against the reference evaluator.
  const r = referenceEvaluate(parsed.policy, compiled.hash, action, options);
  const strip = (x: Decision) => ({
    ...x,
    reasons: x.reasons.map(({ message: _, ...rest }) => rest),
  });
  assert.deepEqual(strip(d), strip(r));
  return d;
}
const rules = (d: Decision) => d.reasons.map((r) => `${r.rule}@${r.line}:${r.col}`);
const deploy = (files: string[], extra: Partial<PolicyAction> = {}): PolicyAction => ({
  agent: "deployer",
  action: "deploy",
  environment: "production",
  targets: ["web-1"],
  files,
  ...extra,
});

Deno.test("evaluate() asks for approval on a clean deploy under require_approval", () => {
  const d = decide(EXAMPLE, deploy(["src/app.ts"]));
  assert.equal(d.decision, "approval_required");
  assert.equal(d.approvals, 1);
  assert.deepEqual(rules(d), ["agent.allow@9:20", "require_approval@4:5"]);
  assert.equal(d.environment, "production");
  assert.match(d.policyHash, /^sha256:[0-9a-f]{64}$/);
});

Deno.test("evaluate() denies an unknown agent", () => {
  const d = decide(EXAMPLE, { agent: "intruder", action: "restart" });
  assert.equal(d.decision, "deny");
  assert.deepEqual(rules(d), ["agent.unknown@1:1"]);
});

Deno.test("evaluate() denies an action in the agent's deny list", () => {
  for (const [action, col] of [["delete", 10], ["db_migrate", 18], ["drop_table", 30]] as const) {
    const d = decide(EXAMPLE, { agent: "deployer", action });
    assert.equal(d.decision, "deny");
    assert.deepEqual(rules(d), [`agent.deny@10:${col}`]);
  }
});

Deno.test("evaluate() denies actions not in allow, including unknown action names", () => {
  for (const action of ["scale", "config_change", "read", "reboot", ""]) {
    const d = decide(EXAMPLE, { agent: "deployer", action });
    assert.equal(d.decision, "deny", action);
    assert.deepEqual(rules(d), ["agent.allow@9:5"]);
  }
});

Deno.test("evaluate() allows restart (no governing block requires approval)", () => {
  const d = decide(EXAMPLE, { agent: "deployer", action: "restart", targets: ["web-1"] });
  assert.equal(d.decision, "allow");
  assert.equal(d.approvals, 0);
  assert.deepEqual(rules(d), ["agent.allow@9:11"]);
});

Deno.test("evaluate() denies each blocked file, naming file, glob and line:col", () => {
  const d = decide(
    EXAMPLE,
    deploy(["src/a.ts", ".env", "config/.env", "secrets/db/key", "a/b/id_rsa", "id_rsa"]),
  );
  assert.equal(d.decision, "deny");
  assert.deepEqual(rules(d), [
    "deploy.block_paths@5:17",
    "deploy.block_paths@5:17",
    "deploy.block_paths@5:25",
    "deploy.block_paths@5:39",
    "deploy.block_paths@5:39",
  ]);
  assert.match(
    d.reasons[2].message,
    /"secrets\/db\/key" matches block_paths "secrets\/\*\*" \(t\.policy:5:25\)/,
  );
});

Deno.test("evaluate() globs are gitignore-style: secrets/** is top-level only", () => {
  assert.equal(decide(EXAMPLE, deploy(["app/secrets/x"])).decision, "approval_required");
  assert.equal(decide(EXAMPLE, deploy(["secrets"])).decision, "approval_required");
  assert.equal(decide(EXAMPLE, deploy(["id_rsa.pub", "x/id_rsa/y"])).decision, "deny");
  assert.deepEqual(rules(decide(EXAMPLE, deploy(["x/id_rsa/y"]))), ["deploy.block_paths@5:39"]);
});

Deno.test("evaluate() applies deploy rules to rollback too", () => {
  const d = decide(EXAMPLE, { ...deploy([".env"]), action: "rollback" });
  assert.deepEqual(rules(d), ["deploy.block_paths@5:17"]);
});

Deno.test("evaluate() denies more files than max_files", () => {
  const files = Array.from({ length: 51 }, (_, i) => `src/f${i}.ts`);
  assert.deepEqual(rules(decide(EXAMPLE, deploy(files))), ["deploy.max_files@6:5"]);
  assert.equal(decide(EXAMPLE, deploy(files.slice(0, 50))).decision, "approval_required");
});

Deno.test("evaluate() fails closed on missing or unnormalized files", () => {
  const { files: _, ...noFiles } = deploy([]);
  assert.deepEqual(rules(decide(EXAMPLE, noFiles)), ["files.required@3:3"]);
  for (
    const f of ["./secrets/k", "/secrets/k", "secrets//k", "a/../secrets/k", "secrets\\k", "", "a/"]
  ) {
    const d = decide(EXAMPLE, deploy([f]));
    assert.equal(d.decision, "deny", f);
    assert.equal(d.reasons[0].rule, "files.invalid");
  }
});

Deno.test("evaluate() enforces blast_radius", () => {
  const two = deploy(["src/a.ts"], { targets: ["web-1", "web-2"] });
  assert.deepEqual(rules(decide(EXAMPLE, two)), ["blast_radius@11:5"]);
  const svc = EXAMPLE.replace("single_host", "service");
  assert.deepEqual(rules(decide(svc, two)), ["blast_radius@11:5"]);
  assert.equal(decide(svc, { ...two, service: "web" }).decision, "approval_required");
  const fleet = EXAMPLE.replace("single_host", "fleet");
  assert.equal(
    decide(fleet, { ...two, targets: ["a", "b", "c", "d"] }).decision,
    "approval_required",
  );
  // Default is single_host.
  const none = EXAMPLE.replace("    blast_radius single_host\n", "");
  assert.deepEqual(rules(decide(none, two)), ["blast_radius@8:3"]);
});

Deno.test("evaluate() lets any agent request remediate under a remediation block", () => {
  const ok = decide(EXAMPLE, { agent: "deployer", action: "remediate", category: "perf" });
  assert.equal(ok.decision, "approval_required");
  assert.deepEqual(rules(ok), ["remediation@13:3", "require_approval@15:5"]);
  const blocked = decide(EXAMPLE, { agent: "deployer", action: "remediate", category: "crypto" });
  assert.deepEqual(rules(blocked), ["remediation.block_categories@14:28"]);
  const missing = decide(EXAMPLE, { agent: "deployer", action: "remediate" });
  assert.deepEqual(rules(missing), ["remediation.category_required@13:3"]);
  const denied = EXAMPLE.replace("deny delete,", "deny remediate, delete,");
  assert.equal(
    decide(denied, { agent: "deployer", action: "remediate", category: "perf" }).decision,
    "deny",
  );
  const noBlock = EXAMPLE.replace(/ {2}remediation \{[^}]*\}\n/, "");
  assert.deepEqual(
    rules(decide(noBlock, { agent: "deployer", action: "remediate", category: "perf" })),
    [
      "remediation@8:3",
    ],
  );
});

Deno.test("evaluate() reports every violation when several rules deny", () => {
  const files = [".env", ...Array.from({ length: 50 }, (_, i) => `f${i}`)];
  const d = decide(EXAMPLE, deploy(files, { targets: ["a", "b"] }));
  assert.deepEqual(rules(d), [
    "deploy.block_paths@5:17",
    "deploy.max_files@6:5",
    "blast_radius@11:5",
  ]);
});

const FREEZE = `policy "production" {
  version 1
  freeze "2026-12-24T00:00:00Z" .. "2026-12-27T00:00:00Z" "holidays"
  agent "ops" {
    allow restart, read
  }
}
`;

Deno.test("evaluate() denies mutating actions inside a freeze window, half-open", () => {
  const at = (iso: string, breakGlass = false) =>
    decide(FREEZE, { agent: "ops", action: "restart" }, { now: Date.parse(iso), breakGlass });
  assert.equal(at("2026-12-23T23:59:59.999Z").decision, "allow");
  assert.deepEqual(rules(at("2026-12-24T00:00:00Z")), ["freeze@3:3"]);
  assert.match(at("2026-12-25T00:00:00Z").reasons[0].message, /holidays/);
  assert.equal(at("2026-12-27T00:00:00Z").decision, "allow");
  // Reads are not frozen.
  const read = decide(FREEZE, { agent: "ops", action: "read" }, {
    now: Date.parse("2026-12-25T00:00:00Z"),
  });
  assert.equal(read.decision, "allow");
});

Deno.test("evaluate() break-glass lifts a freeze and nothing else", () => {
  const now = Date.parse("2026-12-25T00:00:00Z");
  const d = decide(FREEZE, { agent: "ops", action: "restart" }, { now, breakGlass: true });
  assert.equal(d.decision, "allow");
  assert.deepEqual(d.reasons.map((r) => [r.rule, r.effect]), [["agent.allow", "allow"], [
    "freeze",
    "note",
  ]]);
  const denied = decide(FREEZE, { agent: "ops", action: "delete" }, { now, breakGlass: true });
  assert.equal(denied.decision, "deny");
  const wide = decide(FREEZE, { agent: "ops", action: "restart", targets: ["a", "b"] }, {
    now,
    breakGlass: true,
  });
  assert.deepEqual(rules(wide), ["blast_radius@4:3"]);
});

const OVERRIDES = `policy "production" {
  version 1
  approvals 2
  deploy {
    require_approval true
    max_files 10
  }
  action restart {
    require_approval true
  }
  agent "deployer" {
    allow restart, deploy, scale
    action deploy {
      approvals 3
      max_files 2
    }
  }
  agent "ci" {
    allow deploy, restart
    action deploy {
      require_approval false
    }
    action restart {
      blast_radius fleet
    }
  }
}
`;

Deno.test("evaluate() resolves overrides: agent action > policy action > block > policy default", () => {
  const d1 = decide(OVERRIDES, { agent: "deployer", action: "deploy", files: ["a"] });
  assert.equal(d1.approvals, 3);
  assert.deepEqual(rules(d1), ["agent.allow@12:20", "require_approval@5:5", "approvals@14:7"]);
  assert.deepEqual(
    rules(decide(OVERRIDES, { agent: "deployer", action: "deploy", files: ["a", "b", "c"] })),
    [
      "action.max_files@15:7",
    ],
  );
  const d2 = decide(OVERRIDES, { agent: "deployer", action: "restart" });
  assert.equal(d2.approvals, 2);
  assert.deepEqual(rules(d2), ["agent.allow@12:11", "require_approval@9:5", "approvals@3:3"]);
  assert.equal(decide(OVERRIDES, { agent: "deployer", action: "scale" }).decision, "allow");
  assert.equal(
    decide(OVERRIDES, { agent: "ci", action: "deploy", files: ["a"] }).decision,
    "allow",
  );
  const many = Array.from({ length: 11 }, (_, i) => `f${i}`);
  assert.deepEqual(rules(decide(OVERRIDES, { agent: "ci", action: "deploy", files: many })), [
    "deploy.max_files@6:5",
  ]);
  const fleet = decide(OVERRIDES, { agent: "ci", action: "restart", targets: ["a", "b", "c"] });
  assert.equal(fleet.decision, "approval_required");
});

const MULTI = `policy "production" {
  version 1
  agent "a" {
    allow restart
  }
}

policy "staging" {
  version 1
  agent "a" {
    allow restart, scale
  }
}
`;

Deno.test("evaluate() selects the policy block by environment and fails closed otherwise", () => {
  assert.equal(
    decide(MULTI, { agent: "a", action: "scale", environment: "staging" }).decision,
    "allow",
  );
  assert.equal(
    decide(MULTI, { agent: "a", action: "scale", environment: "production" }).decision,
    "deny",
  );
  const none = decide(MULTI, { agent: "a", action: "restart" });
  assert.equal(none.environment, null);
  assert.deepEqual(rules(none), ["environment@1:1"]);
  assert.match(none.reasons[0].message, /"production", "staging"/);
  assert.deepEqual(rules(decide(MULTI, { agent: "a", action: "restart", environment: "qa" })), [
    "environment@1:1",
  ]);
  // A single block is used when the action names no environment.
  assert.equal(decide(EXAMPLE, { agent: "deployer", action: "restart" }).environment, "production");
});

Deno.test("evaluate() never throws on malformed actions: it denies them", () => {
  const compiled = compilePolicy(parsePolicy(EXAMPLE));
  const bad: unknown[] = [
    null,
    42,
    "deploy",
    [],
    {},
    { agent: 1, action: "deploy" },
    { agent: "deployer", action: "deploy", files: "x" },
    { agent: "deployer", action: "deploy", files: [1, null] },
    { agent: "deployer", action: "deploy", files: [], targets: {} },
    { agent: "deployer", action: "restart", environment: 5 },
    { agent: "__proto__", action: "constructor" },
    { agent: "deployer", action: "toString" },
  ];
  for (const b of bad) {
    const d = evaluate(compiled, b as PolicyAction);
    assert.equal(d.decision, "deny", JSON.stringify(b));
  }
});

Deno.test("evaluate() returns reasons the caller may change without affecting later decisions", () => {
  const compiled = compilePolicy(parsePolicy(EXAMPLE));
  const first = evaluate(compiled, { agent: "deployer", action: "restart" });
  first.reasons[0].message = "tampered";
  first.reasons[0].line = 999;
  const second = evaluate(compiled, { agent: "deployer", action: "restart" });
  assert.equal(second.reasons[0].line, 9);
  assert.notEqual(second.reasons[0].message, "tampered");
});
