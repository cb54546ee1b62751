import assert from "node:assert/strict";
import fc from "fast-check";
import type { JsonValue } from "@infraveil/ledger";
import {
  type ActionReport,
  type ActionRunnerDeps,
  handleApproval,
  substituteArgs,
} from "./action_runner.ts";
import { parseAgentConfig } from "./agent_config.ts";
import type { ExecRequest } from "./exec_worker.ts";
import { openDeployments, openUsedApprovals } from "./state.ts";
import { agentConfigJson } from "./_testing_agent.ts";
import {
  activePolicy,
  CONTROL_KEY,
  deployAction,
  OTHER_KEY,
  POLICY_TEXT,
  signApproval,
} from "./_testing_approval.ts";

const ACTIONS = {
  deploy: {
    command: "/opt/shop/bin/deploy",
    args: ["--version={version}", "--host", "{host}"],
    params: { version: { pattern: "[0-9]+\\.[0-9]+\\.[0-9]+" } },
  },
  rollback: { command: "/opt/shop/bin/deploy", args: ["--version={previous_version}"] },
  restart: { command: "/usr/bin/systemctl", args: ["restart", "shop.service"] },
};

async function runner(options: { policy?: ReturnType<typeof activePolicy> | null } = {}) {
  const dir = await Deno.makeTempDir({ prefix: "iv-run-" });
  const config = parseAgentConfig(
    JSON.stringify(agentConfigJson(dir, { backend: "http://127.0.0.1:1", actions: ACTIONS })),
    "agent.json",
    dir,
  );
  await Deno.mkdir(config.stateDir, { recursive: true });
  const entries: { type: string; data: JsonValue }[] = [];
  const runs: ExecRequest[] = [];
  const reports: ActionReport[] = [];
  const policy = options.policy === undefined ? activePolicy() : options.policy;
  const deps: ActionRunnerDeps = {
    config,
    controlKey: { kid: CONTROL_KEY.kid, publicKey: CONTROL_KEY.publicKey },
    policy: () => policy,
    used: await openUsedApprovals(config.stateDir),
    deployments: await openDeployments(config.stateDir),
    record: (type, data) => {
      entries.push({ type, data });
      return Promise.resolve({ seq: entries.length - 1 });
    },
    exec: (req) => {
      runs.push(req);
      return Promise.resolve({
        exitCode: 0,
        signal: null,
        timedOut: false,
        stdout: "deployed\n",
        stderr: "",
        stdoutBytes: 9,
        stderrBytes: 0,
        durationMs: 3,
      });
    },
    report: (r) => {
      reports.push(r);
      return Promise.resolve();
    },
  };
  return {
    deps,
    entries,
    runs,
    reports,
    dir,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

Deno.test("handleApproval() runs an approved deploy with the version in its declared placeholder", async () => {
  await using r = await runner();
  const out = await handleApproval(signApproval(deployAction("1.4.2")), r.deps);
  assert.equal(out.status, "executed");
  assert.deepEqual(r.runs.map((x) => [x.command, ...x.args]), [
    ["/opt/shop/bin/deploy", "--version=1.4.2", "--host", "web-1"],
  ]);
  assert.deepEqual(r.runs[0].env, {});
  assert.deepEqual(r.entries.map((e) => e.type), [
    "agent.approval.received",
    "agent.action.execute",
    "agent.action.result",
  ]);
  assert.equal(r.reports[0].status, "succeeded");
  assert.equal(r.reports[0].exit_code, 0);
  assert.equal(r.reports[0].stdout, "deployed\n");
  assert.equal(r.deps.deployments.current(), "1.4.2");
});

Deno.test("handleApproval() refuses forged, expired, replayed, other-host and policy-mismatch approvals, and records each", async () => {
  await using r = await runner();
  const now = Date.now();
  const good = signApproval(deployAction("2.0.0"));
  assert.equal((await handleApproval(good, r.deps)).status, "executed");
  const tampered = structuredClone(good);
  tampered.payload.action.params = { version: "6.6.6" };
  const cases: [string, unknown][] = [
    ["forged", signApproval(deployAction("2.0.1"), { key: OTHER_KEY })],
    ["forged", { ...signApproval(deployAction("2.0.1")), kid: OTHER_KEY.kid }],
    ["forged", tampered],
    ["expired", signApproval(deployAction("2.0.2"), { now: now - 3_600_000, ttl: 600 })],
    ["replayed", good],
    ["not_a_target", signApproval(deployAction("2.0.3", ["web-2"]))],
    [
      "policy_hash_mismatch",
      signApproval(deployAction("2.0.4"), { policyHash: "sha256:" + "0".repeat(64) }),
    ],
    ["wrong_tenant", signApproval(deployAction("2.0.5"), { over: { tenant: "other" } })],
    ["wrong_audience", signApproval(deployAction("2.0.5"), { over: { aud: "infraveil-control" } })],
    [
      "binding_mismatch",
      signApproval(deployAction("2.0.6"), { over: { action_hash: "sha256:" + "1".repeat(64) } }),
    ],
    ["policy_denied", signApproval({ ...deployAction("2.0.7"), files: ["secrets/key"] })],
    ["insufficient_approvals", signApproval(deployAction("2.0.8"), { over: { approved_by: [] } })],
    ["bad_params", signApproval(deployAction("2.0.9; rm -rf /"))],
    ["not_configured", signApproval({ agent: "deployer", action: "restart", targets: ["web-1"] })],
    ["malformed", "not an envelope"],
  ];
  delete r.deps.config.actions.restart; // allowed by the policy, not configured on this host
  for (const [code, envelope] of cases) {
    const out = await handleApproval(envelope, r.deps);
    assert.equal(out.status, "refused", code);
    if (out.status === "refused") {
      assert.equal(out.code, code, `${code}: ${out.message}`);
    }
  }
  assert.equal(r.runs.length, 1, "only the good approval ran");
  const refused = r.entries.filter((e) => e.type === "agent.approval.refused");
  assert.equal(refused.length, cases.length);
  // Refusals with a verified signature are reported; forged ones only recorded.
  assert.ok(r.reports.every((x) => x.status !== "refused" || x.refusal!.code !== "forged"));
  assert.ok(r.reports.some((x) => x.refusal?.code === "not_a_target"));
});

Deno.test("handleApproval() refuses everything while the host holds no policy", async () => {
  await using r = await runner({ policy: null });
  const out = await handleApproval(signApproval(deployAction()), r.deps);
  assert.equal(out.status, "refused");
  assert.equal(out.status === "refused" && out.code, "no_policy");
  assert.equal(r.runs.length, 0);
});

Deno.test("handleApproval() fetches the policy again on a hash mismatch before refusing", async () => {
  await using r = await runner({ policy: null });
  let policy: ReturnType<typeof activePolicy> | null = null;
  r.deps.policy = () => policy;
  r.deps.refreshPolicy = () => {
    policy = activePolicy(POLICY_TEXT);
    return Promise.resolve();
  };
  assert.equal((await handleApproval(signApproval(deployAction()), r.deps)).status, "executed");
});

Deno.test("handleApproval() rolls back to the previous version it deployed", async () => {
  await using r = await runner();
  await handleApproval(signApproval(deployAction("1.0.0")), r.deps);
  await handleApproval(signApproval(deployAction("1.1.0")), r.deps);
  const rb = { ...deployAction(), action: "rollback", params: {} };
  const out = await handleApproval(signApproval(rb), r.deps);
  assert.equal(out.status, "executed", JSON.stringify(out));
  assert.deepEqual(r.runs.at(-1)!.args, ["--version=1.0.0"]);
  assert.equal(r.deps.deployments.current(), "1.0.0");
});

Deno.test("substituteArgs() never lets a value escape its placeholder", () => {
  const spec = parseAgentConfig(
    JSON.stringify(agentConfigJson("/tmp/x", { backend: "http://127.0.0.1:1", actions: ACTIONS })),
    "a",
    "/",
  ).actions.deploy;
  fc.assert(fc.property(fc.string(), (v) => {
    try {
      const args = substituteArgs(spec, { version: v }, { host: "web-1" });
      // Accepted values are exactly the pattern's, and land in their one argument.
      assert.match(v, /^[0-9]+\.[0-9]+\.[0-9]+$/);
      assert.deepEqual(args, [`--version=${v}`, "--host", "web-1"]);
    } catch (e) {
      assert.ok(!/^[0-9]+\.[0-9]+\.[0-9]+$/.test(v), String(e));
    }
  }));
  assert.throws(() => substituteArgs(spec, { version: "1.0.0", extra: "x" }, {}), /not declared/);
  assert.throws(() => substituteArgs(spec, {}, {}), /required/);
});

const TWO_ENV_POLICY = `${POLICY_TEXT}
policy "staging" {
  version 1
  agent "deployer" {
    allow restart, deploy, rollback
  }
}
`;

Deno.test("handleApproval() refuses an approval labelled with another environment than this host's", async () => {
  // The requester picks the label: a staging approval naming a production host must not run.
  await using r = await runner({ policy: activePolicy(TWO_ENV_POLICY) });
  const staging = { ...deployAction("3.0.0"), environment: "staging" };
  const out = await handleApproval(
    signApproval(staging, { policyHash: activePolicy(TWO_ENV_POLICY).hash }),
    r.deps,
  );
  assert.equal(out.status, "refused");
  assert.equal(out.status === "refused" && out.code, "wrong_environment");
  assert.match(
    out.status === "refused" ? out.message : "",
    /staging.*production|production.*staging/,
  );
  assert.equal(r.runs.length, 0);
  assert.equal(r.reports.at(-1)?.refusal?.code, "wrong_environment");
});

Deno.test("handleApproval() refuses an action without environment when the policy picks another one than this host's", async () => {
  const only = `policy "staging" {
  version 1
  agent "deployer" {
    allow restart, deploy, rollback
  }
}
`;
  await using r = await runner({ policy: activePolicy(only) });
  const { environment: _, ...unlabelled } = deployAction("3.0.1");
  const out = await handleApproval(
    signApproval(unlabelled, { policyHash: activePolicy(only).hash }),
    r.deps,
  );
  assert.equal(out.status === "refused" && out.code, "wrong_environment", JSON.stringify(out));
  assert.equal(r.runs.length, 0);
});

Deno.test("handleApproval() refuses an approval naming another service than this host's", async () => {
  await using r = await runner();
  const out = await handleApproval(
    signApproval({ ...deployAction("3.0.2"), service: "billing" }),
    r.deps,
  );
  assert.equal(out.status === "refused" && out.code, "wrong_service", JSON.stringify(out));
  assert.equal(r.runs.length, 0);
});

Deno.test("handleApproval() fills {service} and {environment} from this host's config, never from the request", async () => {
  await using r = await runner();
  r.deps.config.actions.restart = {
    command: "/usr/bin/systemctl",
    args: ["restart", "{service}", "--env={environment}"],
    params: {},
    env: {},
    timeoutMs: 1_000,
    maxOutputBytes: 1_024,
  };
  const restart = { agent: "deployer", action: "restart", targets: ["web-1"] };
  for (const service of ["--now", "../../etc/x", "sshd\nfoo"]) {
    const out = await handleApproval(
      signApproval({ ...restart, environment: "production", service }),
      r.deps,
    );
    assert.equal(out.status, "refused", service);
  }
  assert.ok(r.runs.every((x) => !x.args.some((a) => /--now|etc|sshd/.test(a))));
  const ok = await handleApproval(signApproval(restart), r.deps);
  assert.equal(ok.status, "executed", JSON.stringify(ok));
  assert.deepEqual(r.runs.at(-1)!.args, ["restart", "shop", "--env=production"]);
});
