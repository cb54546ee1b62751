import assert from "node:assert/strict";
import { parseAgentConfig } from "./agent_config.ts";
import { execPermissions, ledgerPermissions, proxyPermissions } from "./permissions.ts";
import { agentConfigJson } from "./_testing_agent.ts";

Deno.test("worker permissions hold exactly each worker's job", () => {
  const json = agentConfigJson("/srv", {
    backend: "https://app.internal",
    proxyPort: 8080,
    actions: { restart: { command: "/usr/bin/systemctl", args: ["restart", "x"] } },
  });
  (json.proxy as Record<string, unknown>).tracing = {
    otlp: { url: "http://collector:4318/v1/traces" },
  };
  const c = parseAgentConfig(JSON.stringify(json), "a", "/");
  const none = { env: false, ffi: false, sys: false, import: false };
  assert.deepEqual(proxyPermissions(c), {
    ...none,
    net: ["127.0.0.1:8080", "app.internal:443", "collector:4318"],
    read: false,
    write: false,
    run: false,
  });
  assert.deepEqual(ledgerPermissions(c), {
    ...none,
    net: false,
    read: ["/srv/ledger"],
    write: ["/srv/ledger"],
    run: false,
  });
  assert.deepEqual(execPermissions(c), {
    ...none,
    net: false,
    read: false,
    write: false,
    run: ["/usr/bin/systemctl"],
  });
  const noActions = parseAgentConfig(JSON.stringify({ ...json, actions: {} }), "a", "/");
  assert.equal(execPermissions(noActions).run, false);
});
