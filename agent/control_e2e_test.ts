/**
 * The agent against a real control plane (`@infraveil/control` over SQLite on loopback) and a
 * real backend: enrollment, heartbeats, an approved deploy end to end, refused approvals, a
 * killed proxy worker, the workers' sandboxes, and an outage of the control plane.
 */
import assert from "node:assert/strict";
import { generateKeyPair } from "@infraveil/trust";
import { startAgent } from "./agent.ts";
import { createControlLink } from "./control_client_link.ts";
import { sourceWorkerUrls } from "./worker_urls.ts";
import { get, ledgerEntries, serveBackend, testAgentConfig, waitFor } from "./_testing_agent.ts";
import { deployAction, OTHER_KEY, signApproval } from "./_testing_approval.ts";
import { startControlWorld } from "./_testing_world.ts";

const DEPLOY_SCRIPT = `#!/bin/sh
echo "deploying $1"
echo "$1" >> "$DIR/deployed.txt"
if [ "$1" = "9.9.9" ]; then
  touch "$DIR/started"
  while [ ! -f "$DIR/go" ]; do sleep 0.05; done
fi
`;

const deploy = (version: string) => ({
  action: "deploy",
  environment: "production",
  service: "shop",
  targets: ["web-1"],
  files: ["src/app.ts"],
  params: { version },
  reason: `ship ${version}`,
});

Deno.test("the agent with a real control plane: enrollment, heartbeat, approved deploy, refusals, worker restart, sandboxes, outage", async () => {
  const dir = await Deno.makeTempDir({ prefix: "iv-ctl-" });
  const world = await startControlWorld("web-1");
  const be = serveBackend();
  await Deno.writeTextFile(`${dir}/deploy.sh`, DEPLOY_SCRIPT);
  await Deno.chmod(`${dir}/deploy.sh`, 0o755);
  const config = await testAgentConfig(dir, {
    backend: be.url,
    controlUrl: world.url,
    actions: {
      deploy: {
        command: `${dir}/deploy.sh`,
        args: ["{version}"],
        params: { version: { pattern: "[0-9]+\\.[0-9]+\\.[0-9]+" } },
        env: { DIR: dir },
      },
    },
  });
  const hostKey = generateKeyPair();
  const controlKey = { kid: world.keys.kid, publicKey: world.keys.publicKey };
  const link = createControlLink({ config, hostKey, controlKey: world.keys.publicKey });
  // What the control plane handed out, and what a man in the middle adds.
  const fetched: unknown[] = [];
  const injected: unknown[] = [];
  const agent = await startAgent({
    config,
    version: "0.1.0",
    controlKey,
    hostKey,
    enrollmentToken: world.enrollmentToken,
    link: {
      ...link,
      async fetchApprovals() {
        const real = await link.fetchApprovals();
        fetched.push(...real);
        return [...real, ...injected.splice(0)];
      },
    },
    workerUrls: sourceWorkerUrls(),
    log: () => {},
  });
  const proxy = `http://${config.proxy.listen}`;
  try {
    // Enrollment with the one-time token; the token cannot be used again.
    await waitFor(() => agent.health().control.enrolled, "enrollment");
    const again = createControlLink({
      config,
      hostKey: generateKeyPair(),
      controlKey: world.keys.publicKey,
    });
    await assert.rejects(
      again.enroll({ token: world.enrollmentToken, host: "web-1", version: "0.1.0" }),
      (e: Error & { code?: string }) =>
        e.code === "CONTROL_REJECTED" && /TOKEN_USED/.test(e.message),
    );

    // Heartbeats: the fleet shows the host, its version, the active policy and its anchor.
    const host = await waitFor(async () => {
      const fleet = await world.admin("GET", `/v1/t/acme/fleet`);
      const h = fleet.json.hosts?.find((x: { name: string }) => x.name === "web-1");
      return h?.policy_current ? h : null;
    }, "heartbeat with the active policy");
    assert.equal(host.version, "0.1.0");
    assert.match(host.anchor, /^\d+:[0-9a-f]{64}$/);

    // An approved deploy runs and is reported.
    const id = await world.request(deploy("1.4.2"));
    await world.approve(id);
    const executed = await waitFor(async () => {
      const r = await world.requestStatus(id);
      return r.status === "executed" ? r : null;
    }, "deploy executed and reported");
    assert.equal(executed.approval.targets[0].result, "succeeded");
    assert.equal(await Deno.readTextFile(`${dir}/deployed.txt`), "1.4.2\n");
    assert.equal(fetched.length, 1);

    // Forged, expired, replayed, other-host and policy-hash-mismatch approvals are refused.
    injected.push(
      signApproval(deployAction("6.6.6"), { key: OTHER_KEY }),
      signApproval(deployAction("6.6.7"), { key: world.keys, now: Date.now() - 3_600_000 }),
      fetched[0],
      signApproval(deployAction("6.6.8", ["web-2"]), { key: world.keys }),
      signApproval(deployAction("6.6.9"), {
        key: world.keys,
        policyHash: "sha256:" + "0".repeat(64),
      }),
    );
    await waitFor(() => agent.outcomes().length === 6, "refusals");
    assert.deepEqual(
      agent.outcomes().slice(1).map((o) => o.status === "refused" ? o.code : o.status),
      ["forged", "expired", "replayed", "not_a_target", "policy_hash_mismatch"],
    );
    assert.equal(await Deno.readTextFile(`${dir}/deployed.txt`), "1.4.2\n");

    // The proxy worker cannot read files; the ledger worker cannot open sockets.
    const secret = `${dir}/secret.txt`;
    await Deno.writeTextFile(secret, "s");
    assert.deepEqual(await agent.supervisor.probe("proxy", { read: secret, write: `${dir}/w` }), {
      read: "NotCapable",
      write: "NotCapable",
    });
    const controlAddr = new URL(world.url).host;
    assert.deepEqual(
      await agent.supervisor.probe("ledger", { connect: controlAddr, listen: "127.0.0.1:0" }),
      { connect: "NotCapable", listen: "NotCapable" },
    );

    // A blocked attack becomes a finding, shipped in the control plane's format.
    assert.match(await get(`${proxy}/.env`), /^403 /);
    await waitFor(async () => {
      const r = await world.admin("GET", `/v1/t/acme/findings?host=web-1`);
      return r.json.items?.some((f: { fingerprint: string; severity: string }) => f.severity);
    }, "finding shipped");

    // The proxy worker killed: restarted, traffic resumes.
    assert.equal(await get(`${proxy}/before`), "200 backend:/before");
    agent.supervisor.kill("proxy");
    await waitFor(async () => (await get(`${proxy}/after`)) === "200 backend:/after", "proxy back");
    assert.ok(agent.supervisor.status().proxy.crashes >= 1);

    // Control plane down mid-deploy: traffic flows, the report waits, and arrives on return.
    const id2 = await world.request(deploy("9.9.9"));
    await world.approve(id2);
    await waitFor(
      () => Deno.stat(`${dir}/started`).then(() => true, () => false),
      "deploy started",
    );
    await world.down();
    await Deno.writeTextFile(`${dir}/go`, "");
    await waitFor(() => agent.outbox.pending().some((i) => i.kind === "result"), "report queued");
    assert.equal(await get(`${proxy}/while-down`), "200 backend:/while-down");
    await waitFor(() => !agent.health().control.online, "offline noticed");
    const health = await (await fetch(agent.healthUrl)).json();
    assert.equal(health.status, "ok");
    assert.ok(health.outbox.pending >= 1);
    world.up();
    await waitFor(
      async () => (await world.requestStatus(id2)).status === "executed",
      "report after return",
    );
    await waitFor(async () => {
      const r = await world.admin("GET", `/v1/t/acme/traces?host=web-1&limit=200`);
      return r.json.items?.some((s: { attributes: { route?: string } }) =>
        s.attributes?.route === "/while-down"
      );
    }, "spans shipped after return");
    await waitFor(
      () => Deno.stat(`${config.stateDir}/anchor.json`).then(() => true, () => false),
      "anchor",
    );
    const anchor = JSON.parse(await Deno.readTextFile(`${config.stateDir}/anchor.json`));
    assert.match(anchor.note, /\n— infraveil-control /);
  } finally {
    await agent.stop();
    await be.close();
    await world.close();
  }
  const entries = await ledgerEntries(config);
  const refused = entries.filter((e) => e.type === "agent.approval.refused").map((e) =>
    e.data.code
  );
  assert.deepEqual(refused, [
    "forged",
    "expired",
    "replayed",
    "not_a_target",
    "policy_hash_mismatch",
  ]);
  const types = new Set(entries.map((e) => e.type));
  for (
    const t of [
      "agent.enrolled",
      "agent.policy.activated",
      "agent.action.execute",
      "agent.action.result",
      "agent.report.delivered",
      "agent.worker.crash",
      "agent.worker.restart",
    ]
  ) {
    assert.ok(types.has(t), t);
  }
  await Deno.remove(dir, { recursive: true });
});
