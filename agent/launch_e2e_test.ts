/**
 * The whole path on a host: a release built with `deno bundle`, packed into an encrypted,
 * signed bundle, verified by the launcher and run as a separate process with exactly the
 * permission flags derived from the config (the same ones the systemd unit uses).
 */
import assert from "node:assert/strict";
import { formatPublicKeyFile } from "@infraveil/trust";
import { buildAgentFiles, BUNDLE_ENTRY_FILE } from "./build.ts";
import { createBundle } from "./bundle.ts";
import { parseAgentConfig } from "./agent_config.ts";
import { main } from "./main.ts";
import { capture } from "./_testing_cli.ts";
import { formatTenantKeyFile } from "./tenant_key.ts";
import { agentConfigJson, get, ledgerEntries, serveBackend, waitFor } from "./_testing_agent.ts";
import { CONTROL_KEY } from "./_testing_approval.ts";
import { testKey, testTenant } from "./_testing.ts";

const ROOT = new URL("../", import.meta.url).pathname;

Deno.test("agent run: a verified bundle runs its supervisor and sandboxed workers under the exact permission flags", async () => {
  const dir = await Deno.makeTempDir({ prefix: "iv-e2e-" });
  const be = serveBackend();
  const release = testKey(1);
  const tenant = testTenant(10);
  try {
    // The release: built, then bundled like `infraveil release bundle` does.
    const relDir = `${dir}/release`;
    const names = await buildAgentFiles(relDir);
    const files = await Promise.all(
      names.map(async (path) => ({ path, data: await Deno.readFile(`${relDir}/${path}`) })),
    );
    const etc = `${dir}/etc`;
    await Deno.mkdir(etc);
    await Deno.writeFile(
      `${dir}/agent.bundle`,
      await createBundle(files, {
        entry: BUNDLE_ENTRY_FILE,
        version: "1.2.3",
        expires: Date.now() + 86_400_000,
        releaseKey: release,
        tenantKey: tenant,
      }),
    );
    await Deno.writeTextFile(`${etc}/release.pub`, formatPublicKeyFile(release));
    await Deno.writeTextFile(`${etc}/control.pub`, formatPublicKeyFile(CONTROL_KEY));
    await Deno.writeTextFile(`${etc}/tenant.key`, formatTenantKeyFile(tenant), { mode: 0o600 });
    await Deno.chmod(`${etc}/tenant.key`, 0o600);
    const agentJson = agentConfigJson(`${dir}/var`, {
      backend: be.url,
      actions: { restart: { command: "/bin/true" } },
    });
    await Deno.writeTextFile(`${etc}/agent.json`, JSON.stringify(agentJson));
    await Deno.writeTextFile(
      `${etc}/launcher.json`,
      JSON.stringify({
        bundle: `${dir}/agent.bundle`,
        release_keys: ["release.pub"],
        tenant_key_file: "tenant.key",
        state_dir: `${dir}/var/launcher`,
        agent_config: "agent.json",
      }),
    );
    const config = parseAgentConfig(JSON.stringify(agentJson), `${etc}/agent.json`, etc);
    for (const d of [config.stateDir, config.ledger.dir, `${dir}/var/launcher`]) {
      await Deno.mkdir(d, { recursive: true });
    }
    // The flags come from `infraveil agent permissions`, as the systemd unit's do.
    const printed = await capture(() => main(["permissions", "--config", `${etc}/launcher.json`]));
    assert.equal(printed.code, 0, printed.stderr);
    const flags = printed.stdout.split("\n");
    assert.ok(flags.includes(`--allow-run=/bin/true`), printed.stdout);
    assert.ok(!flags.some((f) => f === "-A" || f === "--allow-all"));
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        ...flags,
        `${ROOT}main.ts`,
        "agent",
        "run",
        "--config",
        `${etc}/launcher.json`,
      ],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = child.stderr.pipeThrough(new TextDecoderStream());
    let log = "";
    const drained = (async () => {
      for await (const chunk of stderr) log += chunk;
    })();
    try {
      const health = await waitFor(
        async () => {
          const res = await fetch(`http://${config.health.listen}/health`);
          return res.ok ? await res.json() : (await res.body?.cancel(), null);
        },
        `health endpoint (log: ${log})`,
        15_000,
      );
      assert.equal(health.version, "1.2.3");
      assert.deepEqual(
        Object.fromEntries(
          Object.entries(health.workers).map(([k, v]) => [k, (v as { state: string }).state]),
        ),
        { ledger: "running", proxy: "running", exec: "running" },
      );
      assert.equal(health.control.online, false); // no control plane in this test
      assert.equal(await get(`http://${config.proxy.listen}/e2e`), "200 backend:/e2e");
    } finally {
      child.kill("SIGTERM");
      const status = await child.status;
      await child.stdout.cancel();
      await drained;
      assert.equal(status.code, 0, log);
    }
    const entries = await ledgerEntries(config);
    const start = entries.find((e) => e.type === "agent.start")!;
    assert.equal(start.data.version, "1.2.3");
    assert.match(String(start.data.manifest_sha256), /^[0-9a-f]{64}$/);
    const sandbox = entries.filter((e) => e.type === "agent.worker.sandbox");
    assert.deepEqual(sandbox.map((e) => [e.data.worker, e.data.ok]).sort(), [
      ["exec", true],
      ["ledger", true],
      ["proxy", true],
    ]);
    assert.ok(entries.some((e) => e.type === "agent.stop"));
    const version = JSON.parse(await Deno.readTextFile(`${dir}/var/launcher/last_version.json`));
    assert.equal(version.version, "1.2.3");
  } finally {
    await be.close();
    await Deno.remove(dir, { recursive: true });
  }
});
