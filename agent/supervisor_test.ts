import assert from "node:assert/strict";
import { createSupervisor } from "./supervisor.ts";
import { sourceWorkerUrls } from "./worker_urls.ts";
import { get, ledgerEntries, serveBackend, testAgentConfig, waitFor } from "./_testing_agent.ts";

/** Fails (instead of hanging) when `promise` takes longer than `ms`. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) =>
        timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms)
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("createSupervisor() runs sandboxed workers, restarts a killed proxy, and records it all", async () => {
  const dir = await Deno.makeTempDir({ prefix: "iv-sup-" });
  const be = serveBackend();
  const config = await testAgentConfig(dir, {
    backend: be.url,
    actions: { restart: { command: "/bin/echo", args: ["restarted"] } },
  });
  const spans: unknown[] = [];
  const sup = createSupervisor({
    config,
    workerUrls: sourceWorkerUrls(),
    onSpans: (s) => spans.push(...s),
    log: () => {},
  });
  // Bounded throughout: a lost ledger entry (its promise never settles) or a stuck worker
  // fails the test within seconds instead of hanging it.
  try {
    await within(8_000, "start()", sup.start());
    const proxyUrl = `http://${config.proxy.listen}`;
    assert.equal(await get(`${proxyUrl}/a`), "200 backend:/a");

    // The proxy worker cannot read files; the ledger worker cannot open sockets.
    const secret = `${dir}/secret.txt`;
    await Deno.writeTextFile(secret, "secret");
    const p = await sup.probe("proxy", {
      read: secret,
      write: `${dir}/x`,
      env: "HOME",
      run: "/bin/sh",
    });
    assert.deepEqual(p, {
      read: "NotCapable",
      write: "NotCapable",
      env: "NotCapable",
      run: "NotCapable",
    });
    const l = await sup.probe("ledger", {
      connect: `127.0.0.1:${be.port}`,
      listen: "127.0.0.1:0",
      read: secret,
    });
    assert.deepEqual(l, { connect: "NotCapable", listen: "NotCapable", read: "NotCapable" });
    const e = await sup.probe("exec", { read: secret, connect: `127.0.0.1:${be.port}` });
    assert.deepEqual(e, { read: "NotCapable", connect: "NotCapable" });

    const out = await sup.exec({
      command: "/bin/echo",
      args: ["hello"],
      env: {},
      timeoutMs: 5_000,
      maxOutputBytes: 100,
    });
    assert.equal(out.exitCode, 0);
    assert.equal(out.stdout, "hello\n");

    // Kill the proxy worker: it comes back and traffic resumes.
    sup.kill("proxy");
    assert.match(await get(`${proxyUrl}/b`), /^error|^5/);
    await waitFor(async () => (await get(`${proxyUrl}/c`)) === "200 backend:/c", "proxy restart");
    assert.ok(sup.status().proxy.crashes >= 1);

    // Kill the ledger worker: entries made meanwhile are written once it is back.
    sup.kill("ledger");
    const { seq } = await within(
      3_000,
      "an entry made while the ledger restarts",
      sup.record("test.marker", { n: 1 }),
    );
    assert.ok(seq > 0);
    await waitFor(() => spans.length > 0, "spans", 2_000);
  } finally {
    await within(5_000, "stop()", sup.stop());
    await be.close();
  }
  const entries = await ledgerEntries(config);
  const types = entries.map((e) => `${e.type}:${e.data.worker ?? ""}`);
  for (
    const t of [
      "agent.worker.sandbox:ledger",
      "agent.worker.start:ledger",
      "agent.worker.start:proxy",
      "agent.worker.start:exec",
      "agent.worker.crash:proxy",
      "agent.worker.restart:proxy",
      "agent.worker.crash:ledger",
      "agent.worker.restart:ledger",
      "test.marker:",
    ]
  ) assert.ok(types.includes(t), `${t} in ${types}`);
  const sandbox = entries.filter((e) => e.type === "agent.worker.sandbox");
  assert.ok(sandbox.every((e) => e.data.ok === true), JSON.stringify(sandbox));
  const proxyStarts = entries.filter((e) =>
    e.type === "agent.worker.start" && e.data.worker === "proxy"
  );
  const crashes = entries.filter((e) =>
    e.type === "agent.worker.crash" && e.data.worker === "proxy"
  );
  assert.equal(crashes[0].data.reason, "terminated");
  // A loaded machine may miss a liveness deadline as well; that is a crash like any other.
  for (const c of crashes.slice(1)) assert.match(String(c.data.reason), /liveness/);
  assert.equal(proxyStarts.length, crashes.length + 1);
  // Each entry once, in order: a start follows the crash of the generation started before it.
  for (const [i, crash] of crashes.entries()) {
    assert.equal(crash.data.generation, proxyStarts[i].data.generation);
    assert.ok(proxyStarts[i].seq < crash.seq && crash.seq < proxyStarts[i + 1].seq);
  }
  assert.deepEqual((proxyStarts[0].data.permissions as { read: unknown }).read, false);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("createSupervisor() refuses to run a worker whose sandbox leaks", async () => {
  const dir = await Deno.makeTempDir({ prefix: "iv-sup-" });
  const be = serveBackend();
  const config = await testAgentConfig(dir, { backend: be.url });
  const sup = createSupervisor({
    config,
    workerUrls: {
      ...sourceWorkerUrls(),
      ledger: new URL("./testdata/leaky_ledger_worker.ts", import.meta.url),
    },
    log: () => {},
  });
  try {
    await assert.rejects(sup.start(), /SANDBOX|sandbox leaks: connect allowed/);
    assert.equal(sup.status().ledger.state, "failed");
  } finally {
    await sup.stop().catch(() => {});
    await be.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("createSupervisor() restarts with exponential backoff", async () => {
  const dir = await Deno.makeTempDir({ prefix: "iv-sup-" });
  const be = serveBackend();
  const config = await testAgentConfig(dir, { backend: be.url });
  const sup = createSupervisor({ config, workerUrls: sourceWorkerUrls(), log: () => {} });
  try {
    await sup.start();
    for (let i = 1; i <= 3; i++) {
      sup.kill("proxy");
      await waitFor(() => sup.status().proxy.state === "running", `restart ${i}`);
    }
  } finally {
    await sup.stop();
    await be.close();
  }
  const delays = (await ledgerEntries(config))
    .filter((e) => e.type === "agent.worker.restart")
    .map((e) => e.data.delay_ms);
  assert.deepEqual(delays, [50, 100, 200]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("createSupervisor() writes a batch the killed ledger worker already wrote once, and loses nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "iv-sup-" });
  const be = serveBackend();
  const config = await testAgentConfig(dir, { backend: be.url });
  const sup = createSupervisor({ config, workerUrls: sourceWorkerUrls(), log: () => {} });
  const path = `${config.ledger.dir}/${config.ledger.file}`;
  try {
    await within(8_000, "start()", sup.start());
    await sup.head();
    const before = Deno.statSync(path).size;
    const batch = Array.from({ length: 50 }, (_, n) => sup.record("test.batch", { n }));
    for (let i = 0; i < 5; i++) await Promise.resolve(); // the append is posted
    // Kill the worker once the batch is on disk, before its reply can be handled.
    const until = Date.now() + 5_000;
    while (Deno.statSync(path).size === before && Date.now() < until) { /* spin */ }
    sup.kill("ledger");
    const after = Array.from({ length: 5 }, (_, n) => sup.record("test.after", { n }));
    await within(5_000, "the entries", Promise.all([...batch, ...after]));
  } finally {
    await within(5_000, "stop()", sup.stop());
    await be.close();
  }
  const seen = (await ledgerEntries(config))
    .filter((e) => e.type.startsWith("test."))
    .map((e) => `${e.type}:${e.data.n}`);
  assert.deepEqual(seen, [
    ...Array.from({ length: 50 }, (_, n) => `test.batch:${n}`),
    ...Array.from({ length: 5 }, (_, n) => `test.after:${n}`),
  ]);
  await Deno.remove(dir, { recursive: true });
});
