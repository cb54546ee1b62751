import assert from "node:assert/strict";
import { AgentError } from "./error.ts";
import { parseLauncherConfig } from "./launcher_config.ts";

const good = {
  bundle: "agent.bundle",
  release_keys: ["release.pub", "RWQ..."],
  revoked_kids: ["0123456789abcdef"],
  tenant_key_file: "/etc/infraveil/tenant.key",
  state_dir: "state",
  ledger: "ledger",
  agent_config: "agent.json",
};

Deno.test("parseLauncherConfig() resolves relative paths against the config's directory", () => {
  const c = parseLauncherConfig(JSON.stringify(good), "/etc/iv/launcher.json", "/etc/iv");
  assert.equal(c.bundle, "/etc/iv/agent.bundle");
  assert.equal(c.tenantKeyFile, "/etc/infraveil/tenant.key");
  assert.equal(c.stateDir, "/etc/iv/state");
  assert.equal(c.ledger, "/etc/iv/ledger");
  assert.equal(c.agentConfig, "/etc/iv/agent.json");
  assert.deepEqual(c.releaseKeys, ["release.pub", "RWQ..."]);
  assert.deepEqual(c.revokedKids, ["0123456789abcdef"]);
  const { ledger: _, ...noLedger } = good;
  assert.equal(parseLauncherConfig(JSON.stringify(noLedger), "c", ".").ledger, undefined);
});

Deno.test("parseLauncherConfig() names the field that is wrong", () => {
  const cases: [unknown, RegExp][] = [
    [{ ...good, extra: 1 }, /unknown field "extra"/],
    [{ ...good, bundle: 3 }, /"bundle"/],
    [{ ...good, release_keys: [] }, /at least one/],
    [{ ...good, revoked_kids: ["XYZ"] }, /revoked_kids\[0\]/],
    [{ ...good, state_dir: undefined }, /"state_dir"/],
    [{ ...good, agent_config: "" }, /"agent_config"/],
    [[], /JSON object/],
  ];
  for (const [value, pattern] of cases) {
    assert.throws(
      () => parseLauncherConfig(JSON.stringify(value), "/etc/iv/launcher.json", "/etc/iv"),
      (e) =>
        e instanceof AgentError && e.code === "BAD_CONFIG" && pattern.test(e.message) &&
        e.message.includes("/etc/iv/launcher.json"),
      String(pattern),
    );
  }
  assert.throws(() => parseLauncherConfig("{", "c.json", "."), /not valid JSON/);
});
