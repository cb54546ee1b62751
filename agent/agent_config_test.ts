import assert from "node:assert/strict";
import { isLoopbackAddress, parseAgentConfig, placeholdersOf } from "./agent_config.ts";
import { AgentError } from "./error.ts";
import { agentConfigJson } from "./_testing_agent.ts";

const good = () =>
  agentConfigJson("/srv/iv", {
    backend: "http://127.0.0.1:3000",
    proxyPort: 8080,
    healthPort: 9464,
    actions: {
      deploy: {
        command: "/opt/app/deploy",
        args: ["--version={version}", "{host}"],
        params: { version: { pattern: "[0-9.]+" } },
      },
    },
  });

Deno.test("parseAgentConfig() fills defaults and resolves paths", () => {
  const c = parseAgentConfig(JSON.stringify(good()), "/etc/iv/agent.json", "/etc/iv");
  assert.equal(c.ledger.dir, "/srv/iv/ledger");
  assert.equal(c.ledger.file, "audit.jsonl");
  assert.equal(c.ledger.origin, "infraveil/ledger/web-1");
  assert.equal(c.actions.deploy.timeoutMs, 300_000);
  assert.equal(c.actions.deploy.params.version.required, true);
  assert.deepEqual(c.actions.deploy.env, {});
  assert.equal(c.control.maxApprovalLifetimeSeconds, 86_400);
  const rel = parseAgentConfig(
    JSON.stringify({ ...good(), state_dir: "state", ledger: { dir: "ledger" } }),
    "a",
    "/etc/iv",
  );
  assert.equal(rel.stateDir, "/etc/iv/state");
  assert.equal(rel.ledger.dir, "/etc/iv/ledger");
});

Deno.test("parseAgentConfig() names the field path that is wrong", () => {
  const g = good();
  const deploy = (g.actions as Record<string, Record<string, unknown>>).deploy;
  const cases: [unknown, RegExp][] = [
    [{ ...g, extra: 1 }, /\$\.extra: unknown field/],
    [{ ...g, host: "a b" }, /\$\.host/],
    [{ ...g, control: { ...(g.control as object), url: "ftp://x" } }, /\$\.control\.url/],
    [{ ...g, control: { ...(g.control as object), typo: 1 } }, /\$\.control\.typo/],
    [{ ...g, proxy: { listen: "127.0.0.1:1" } }, /\$\.proxy\.backend: is required/],
    [{ ...g, proxy: { listen: "x", backend: "http://127.0.0.1:1" } }, /\$\.proxy: .*listen/],
    [{ ...g, health: { listen: "0.0.0.0:9464" } }, /\$\.health\.listen.*loopback/],
    [{ ...g, ledger: { dir: "/l", file: "../x" } }, /\$\.ledger\.file/],
    [{ ...g, actions: { deploy: { ...deploy, command: "deploy.sh" } } }, /command.*absolute/],
    [
      { ...g, actions: { deploy: { ...deploy, args: ["{undeclared}"] } } },
      /\{undeclared\} is not declared/,
    ],
    [{ ...g, actions: { deploy: { ...deploy, args: ["{version"] } } }, /unbalanced/],
    [
      { ...g, actions: { deploy: { ...deploy, params: { version: { pattern: "(" } } } } },
      /pattern.*not a regular/,
    ],
    [{ ...g, actions: { deploy: { ...deploy, params: { host: { pattern: "x" } } } } }, /built-in/],
    [{ ...g, actions: { Deploy: deploy } }, /\$\.actions\.Deploy/],
    [{ ...g, workers: { restart: { initial_ms: 10, max_ms: 5 } } }, /max_ms/],
  ];
  for (const [value, pattern] of cases) {
    assert.throws(
      () => parseAgentConfig(JSON.stringify(value), "/etc/iv/agent.json", "/etc/iv"),
      (e) =>
        e instanceof AgentError && e.code === "BAD_CONFIG" && pattern.test(e.message) &&
        e.message.includes("/etc/iv/agent.json"),
      String(pattern),
    );
  }
  assert.throws(() => parseAgentConfig("{", "a.json", "."), /not valid JSON/);
});

Deno.test("isLoopbackAddress() and placeholdersOf()", () => {
  assert.ok(isLoopbackAddress("127.0.0.1:1"));
  assert.ok(isLoopbackAddress("[::1]:9"));
  assert.ok(isLoopbackAddress("localhost:9"));
  assert.ok(!isLoopbackAddress("0.0.0.0:9"));
  assert.ok(!isLoopbackAddress("10.0.0.1:9"));
  assert.ok(!isLoopbackAddress("127.0.0.1"));
  assert.deepEqual(placeholdersOf("--v={version}-{host}"), ["version", "host"]);
});

Deno.test("parseAgentConfig() refuses a config without environment, naming the key", () => {
  const { environment: _, ...g } = good();
  assert.throws(
    () => parseAgentConfig(JSON.stringify(g), "/etc/iv/agent.json", "/etc/iv"),
    (e: unknown) =>
      e instanceof AgentError && e.code === "BAD_CONFIG" &&
      /agent\.json: \$\.environment: .*required/.test(e.message),
  );
  assert.throws(
    () => parseAgentConfig(JSON.stringify({ ...g, environment: "" }), "a", "/"),
    /\$\.environment/,
  );
});
