import assert from "node:assert/strict";
import { parseAgentConfig } from "./agent_config.ts";
import { parseLauncherConfig } from "./launcher_config.ts";
import { permissionFlags, processPermissions } from "./permissions.ts";

const DEPLOY = new URL("../deploy/", import.meta.url);

Deno.test("deploy/infraveil-agent.service carries exactly the permissions the example configs need", async () => {
  const launcher = parseLauncherConfig(
    await Deno.readTextFile(new URL("launcher.example.json", DEPLOY)),
    "/etc/infraveil/launcher.json",
    "/etc/infraveil",
  );
  assert.equal(launcher.agentConfig, "/etc/infraveil/agent.json");
  const agent = parseAgentConfig(
    await Deno.readTextFile(new URL("agent.example.json", DEPLOY)),
    launcher.agentConfig!,
    "/etc/infraveil",
  );
  const expected = permissionFlags(processPermissions(agent, {
    launcherConfig: "/etc/infraveil/launcher.json",
    agentConfig: launcher.agentConfig!,
    bundle: launcher.bundle,
    tenantKeyFile: launcher.tenantKeyFile,
    releaseKeyFiles: launcher.releaseKeys,
    launcherStateDir: launcher.stateDir,
    controlKeyFile: agent.control.publicKey,
    enrollmentTokenFile: agent.control.enrollmentTokenFile,
    ledgerFile: launcher.ledger,
  }));
  const unit = await Deno.readTextFile(new URL("infraveil-agent.service", DEPLOY));
  const exec = unit.match(/^ExecStart=((?:.*\\\n)*.*)$/m)![1].replace(/\\\n\s*/g, " ");
  const flags = exec.split(/\s+/).filter((a) => a.startsWith("--allow-"));
  assert.deepEqual(flags, expected);
  for (const f of ["--unstable-worker-options", "--no-prompt", "--cached-only"]) {
    assert.ok(exec.includes(f), f);
  }
  assert.ok(!/--allow-all|\s-A\s|--allow-env|--allow-sys|--allow-ffi/.test(exec));
  assert.match(exec, /main\.ts agent run --config \/etc\/infraveil\/launcher\.json$/);
});
