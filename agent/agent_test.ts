import assert from "node:assert/strict";
import { openLedger } from "@infraveil/ledger";
import { generateKeyPair } from "@infraveil/trust";
import { startAgent } from "./agent.ts";
import { openOutbox } from "./outbox.ts";
import { sourceWorkerUrls } from "./worker_urls.ts";
import { get, ledgerEntries, serveBackend, testAgentConfig, waitFor } from "./_testing_agent.ts";
import { activePolicy, CONTROL_KEY, deployAction, signApproval } from "./_testing_approval.ts";
import { FakeControl } from "./_testing_control.ts";

async function deployScript(dir: string): Promise<string> {
  const path = `${dir}/deploy.sh`;
  await Deno.writeTextFile(
    path,
    `#!/bin/sh\necho "deploying $1"\necho "$1" >> "${dir}/deployed.txt"\n`,
  );
  await Deno.chmod(path, 0o755);
  return path;
}

Deno.test("startAgent() enrolls, runs an approved deploy, and keeps proxying and queueing while the control plane is down", async () => {
  const dir = await Deno.makeTempDir({ prefix: "iv-agent-" });
  const be = serveBackend();
  const config = await testAgentConfig(dir, {
    backend: be.url,
    actions: {
      deploy: {
        command: await deployScript(dir),
        args: ["{version}"],
        params: { version: { pattern: "[0-9]+\\.[0-9]+\\.[0-9]+" } },
      },
    },
  });
  const control = new FakeControl();
  const agent = await startAgent({
    config,
    version: "0.1.0",
    controlKey: CONTROL_KEY,
    hostKey: generateKeyPair(),
    enrollmentToken: "ive_token",
    link: control,
    workerUrls: sourceWorkerUrls(),
    log: () => {},
  });
  const proxy = `http://${config.proxy.listen}`;
  try {
    await waitFor(() => control.enrolledWith === "ive_token", "enrollment");
    await waitFor(() => agent.health().policy_hash === activePolicy().hash, "policy");
    const hb = (await waitFor(() => control.heartbeats.at(-1), "heartbeat"))!;
    assert.equal(hb.version, "0.1.0");
    assert.match(hb.ledger_anchor, /^\d+:[0-9a-f]{64}$/);

    // An approved deploy runs and is reported.
    const approval = signApproval(deployAction("1.4.2"));
    control.approvals.push(approval);
    const report = (await waitFor(() => control.reports[0], "report"))!;
    assert.equal(report.status, "succeeded");
    assert.equal(report.stdout, "deploying 1.4.2\n");
    assert.equal(await Deno.readTextFile(`${dir}/deployed.txt`), "1.4.2\n");

    // Traffic is traced and shipped.
    assert.equal(await get(`${proxy}/hello`), "200 backend:/hello");
    await waitFor(
      () => control.spans.some((s) => (s.attributes as { route: string }).route === "/hello"),
      "span",
    );
    await waitFor(() => control.checkpoints.length > 0, "checkpoint");

    // Control plane down: traffic flows, reports wait in the outbox.
    control.online = false;
    await waitFor(() => !agent.health().control.online, "offline");
    assert.equal(await get(`${proxy}/offline`), "200 backend:/offline");
    await waitFor(() => agent.outbox.pending().some((i) => i.kind === "traces"), "queued spans");
    const health = await (await fetch(agent.healthUrl)).json();
    assert.equal(health.status, "ok");
    assert.equal(health.control.online, false);
    assert.ok(health.control.offline_since);

    // Back: the queue drains, the replayed approval is refused.
    control.approvals.push(approval);
    control.online = true;
    await waitFor(
      () => control.spans.some((s) => (s.attributes as { route: string }).route === "/offline"),
      "span after return",
    );
    await waitFor(() => agent.outcomes().length === 2, "replay handled");
    assert.deepEqual(agent.outcomes().map((o) => o.status), ["executed", "refused"]);
    await waitFor(() => agent.outbox.pending().length === 0, "outbox drained");
  } finally {
    await agent.stop();
    await be.close();
  }
  const types = (await ledgerEntries(config)).map((e) => e.type);
  for (
    const t of [
      "agent.start",
      "agent.enrolled",
      "agent.policy.activated",
      "agent.approval.received",
      "agent.action.execute",
      "agent.action.result",
      "agent.report.delivered",
      "agent.approval.refused",
      "agent.stop",
    ]
  ) assert.ok(types.includes(t), `${t} in ledger`);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("startAgent() handles approvals fetched before a crash, from its inbox", async () => {
  const dir = await Deno.makeTempDir({ prefix: "iv-agent-" });
  const be = serveBackend();
  const config = await testAgentConfig(dir, {
    backend: be.url,
    actions: {
      deploy: {
        command: await deployScript(dir),
        args: ["{version}"],
        params: { version: { pattern: "[0-9]+\\.[0-9]+\\.[0-9]+" } },
      },
    },
  });
  // Fetched (so claimed at the control plane) but never handled: the agent died.
  const inbox = await openOutbox(config.stateDir, { maxBatches: 0, name: "inbox" });
  await inbox.enqueue("approval", signApproval(deployAction("3.0.0")));
  const control = new FakeControl();
  await Deno.writeTextFile(
    `${config.stateDir}/enrollment.json`,
    JSON.stringify({
      host: "web-1",
      tenant: "acme",
      kid: "x",
      enrolled_at: "2026-01-01T00:00:00Z",
    }),
  );
  const agent = await startAgent({
    config,
    version: "0.1.0",
    controlKey: CONTROL_KEY,
    hostKey: generateKeyPair(),
    link: control,
    workerUrls: sourceWorkerUrls(),
    log: () => {},
  });
  try {
    const report = (await waitFor(() => control.reports[0], "report"))!;
    assert.equal(report.status, "succeeded");
    assert.equal(await Deno.readTextFile(`${dir}/deployed.txt`), "3.0.0\n");
    assert.equal(agent.outcomes().length, 1);
  } finally {
    await agent.stop();
    await be.close();
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("startAgent() refuses to start when used_approvals.json is gone but its ledger records used approvals", async () => {
  const dir = await Deno.makeTempDir({ prefix: "iv-agent-" });
  try {
    const config = await testAgentConfig(dir, { backend: "http://127.0.0.1:1" });
    // A previous run used an approval (the ledger says so); the state file was deleted since.
    const ledger = await openLedger(`${config.ledger.dir}/${config.ledger.file}`, {
      actor: "agent:web-1",
      mode: "fsync",
    });
    await ledger.append({ type: "agent.action.execute", data: { approval_id: "apv_used_before" } });
    await ledger.close();
    const started = await startAgent({
      config,
      version: "0.1.0",
      controlKey: CONTROL_KEY,
      hostKey: generateKeyPair(),
      link: new FakeControl(),
      workerUrls: sourceWorkerUrls(),
      log: () => {},
    }).catch((e: Error) => e);
    if (!(started instanceof Error)) {
      await started.stop();
      assert.fail("the agent started without its used approvals");
    }
    assert.match(started.message, /used_approvals\.json is missing.*apv_used_before/s);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
