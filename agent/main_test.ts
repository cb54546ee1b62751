import assert from "node:assert/strict";
import { formatPublicKeyFile, toMinisignPublicKey } from "@infraveil/trust";
import { capture } from "./_testing_cli.ts";
import { agentFiles, craftBundle, testKey, testTenant } from "./_testing.ts";
import { main } from "./main.ts";
import { formatTenantKeyFile } from "./tenant_key.ts";

const release = testKey(1);
const tenant = testTenant(10);
const NOW = Date.now();

async function host(options: { version?: string; config?: Record<string, unknown> } = {}) {
  const dir = await Deno.makeTempDir({ prefix: "iv-agent-" });
  await Deno.writeTextFile(`${dir}/release.pub`, formatPublicKeyFile(release));
  await Deno.writeTextFile(`${dir}/tenant.key`, formatTenantKeyFile(tenant), { mode: 0o600 });
  await Deno.chmod(`${dir}/tenant.key`, 0o600);
  const writeBundle = async (version: string, marker = "cli") =>
    await Deno.writeFile(
      `${dir}/agent.bundle`,
      await craftBundle({
        files: agentFiles(marker),
        version,
        created: NOW - 1000,
        expires: NOW + 86_400_000,
      }),
    );
  await writeBundle(options.version ?? "1.0.0");
  const config = {
    bundle: "agent.bundle",
    release_keys: ["release.pub", toMinisignPublicKey(testKey(7))],
    revoked_kids: [],
    tenant_key_file: "tenant.key",
    state_dir: "state",
    ...options.config,
  };
  await Deno.writeTextFile(`${dir}/launcher.json`, JSON.stringify(config));
  const run = (...args: string[]) =>
    capture(() => main([args[0], "--config", `${dir}/launcher.json`, ...args.slice(1)]));
  return {
    dir,
    run,
    writeBundle,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

Deno.test("agent verify reports a good bundle and writes no state", async () => {
  await using h = await host();
  const r = await h.run("verify");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /verified: version 1\.0\.0, release key [0-9a-f]{16}, tenant key/);
  await assert.rejects(Deno.stat(`${h.dir}/state/last_version.json`));
});

Deno.test("agent run starts the entry, which imports its sibling, and records the version", async () => {
  await using h = await host({ version: "1.1.0" });
  const marker = crypto.randomUUID();
  await h.writeBundle("1.1.0", marker);
  const r = await h.run("run", "--", "x", "y");
  assert.equal(r.code, 0, r.stderr);
  // deno-lint-ignore no-explicit-any
  const launched = (globalThis as any).__launched;
  assert.equal(launched.tag, marker);
  assert.deepEqual(launched.ctx.args, ["x", "y"]);
  assert.equal(launched.ctx.stateDir, `${h.dir}/state`);
  const state = JSON.parse(await Deno.readTextFile(`${h.dir}/state/last_version.json`));
  assert.equal(state.version, "1.1.0");
  assert.match(state.manifest_sha256, /^[0-9a-f]{64}$/);

  // A validly signed older bundle is now a rollback.
  await h.writeBundle("1.0.9");
  const back = await h.run("verify");
  assert.equal(back.code, 23);
  assert.match(back.stderr, /1\.0\.9 is older than 1\.1\.0/);
});

Deno.test("agent verify refuses a modified bundle with the exact message and its exit code", async () => {
  await using h = await host();
  const bytes = await Deno.readFile(`${h.dir}/agent.bundle`);
  bytes[bytes.length - 20] ^= 0x10; // inside the ciphertext
  await Deno.writeFile(`${h.dir}/agent.bundle`, bytes);
  const r = await h.run("run");
  assert.equal(r.code, 12);
  assert.match(r.stderr, /^cannot decrypt bundle: wrong tenant key or modified ciphertext\n/);
  assert.match(r.stderr, /refused: DECRYPT_FAILED, exit 12; nothing of the bundle ran/);
  await assert.rejects(Deno.stat(`${h.dir}/state/last_version.json`));
});

Deno.test("agent verify refuses a revoked release key named in the config", async () => {
  await using h = await host({ config: { revoked_kids: [release.kid] } });
  const r = await h.run("verify");
  assert.equal(r.code, 14);
  assert.match(r.stderr, /revoked/);
});

Deno.test("agent verify records a refusal in the configured ledger", async () => {
  await using h = await host({ config: { ledger: "audit.jsonl" } });
  const bytes = await Deno.readFile(`${h.dir}/agent.bundle`);
  bytes[0] ^= 1;
  await Deno.writeFile(`${h.dir}/agent.bundle`, bytes);
  const r = await h.run("verify");
  assert.equal(r.code, 11);
  const lines = (await Deno.readTextFile(`${h.dir}/audit.jsonl`)).trim().split("\n");
  assert.equal(lines.length, 1);
  const entry = JSON.parse(lines[0]);
  assert.equal(entry.type, "agent.launch.refused");
  assert.equal(entry.actor, "launcher");
  assert.equal(entry.data.code, "BAD_FORMAT");
  assert.equal(entry.data.exit_code, 11);
  assert.equal(entry.data.bundle, `${h.dir}/agent.bundle`);
  // The ledger is closed after each append: a second refusal chains onto the first.
  assert.equal((await h.run("run")).code, 11);
  const after = (await Deno.readTextFile(`${h.dir}/audit.jsonl`)).trim().split("\n");
  assert.equal(after.length, 2);
  assert.equal(JSON.parse(after[1]).seq, 1);
  assert.equal(JSON.parse(after[1]).data.mode, "run");
});

Deno.test("agent verify still refuses, with a warning, when the ledger is not writable", async () => {
  await using h = await host({ config: { ledger: "no/such/dir/audit.jsonl" } });
  await Deno.writeFile(`${h.dir}/agent.bundle`, new Uint8Array(5));
  const r = await h.run("verify");
  assert.equal(r.code, 11);
  assert.match(r.stderr, /warning: refusal not recorded in the ledger/);
});

Deno.test("agent: config and key problems exit 2 and name the file", async () => {
  await using h = await host();
  await Deno.chmod(`${h.dir}/tenant.key`, 0o644);
  const loose = await h.run("verify");
  assert.equal(loose.code, 2);
  assert.match(loose.stderr, /tenant\.key.*(group|others)/);
  await Deno.writeTextFile(`${h.dir}/launcher.json`, `{"bundle": 1}`);
  const bad = await h.run("verify");
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /launcher\.json/);
  const missing = await capture(() => main(["verify", "--config", `${h.dir}/nope.json`]));
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /no such file/);
});

Deno.test("agent: a missing bundle is its own refusal (exit 10)", async () => {
  await using h = await host();
  await Deno.remove(`${h.dir}/agent.bundle`);
  const r = await h.run("verify");
  assert.equal(r.code, 10);
  assert.match(r.stderr, /Cannot read bundle/);
});

Deno.test("agent: usage errors exit 2, --help exits 0", async () => {
  for (
    const args of [[], ["launch"], ["verify"], ["verify", "--nope"], [
      "verify",
      "--config",
      "c",
      "--",
      "x",
    ]]
  ) {
    const r = await capture(() => main(args));
    assert.equal(r.code, 2, args.join(" "));
    assert.match(r.stderr, /Usage:/);
  }
  assert.equal((await capture(() => main(["--help"]))).code, 0);
  assert.equal((await capture(() => main(["run", "--help"]))).code, 0);
});

Deno.test("agent permissions needs an agent_config and a known format", async () => {
  await using h = await host();
  const none = await capture(() => main(["permissions", "--config", `${h.dir}/launcher.json`]));
  assert.equal(none.code, 2);
  assert.match(none.stderr, /names no "agent_config"/);
  const bad = await capture(() =>
    main(["permissions", "--config", `${h.dir}/launcher.json`, "--format", "yaml"])
  );
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--format must be "flags" or "json"/);
});

Deno.test("agent run refuses when last_version.json is gone but the agent's ledger shows a later version ran", async () => {
  // The host ran 1.2.0 (its agent ledger says so); someone deletes the launcher state and puts
  // back a validly signed 1.0.0: without the ledger check that is a silent rollback.
  await using h = await host({ version: "1.0.0", config: { agent_config: "agent.json" } });
  await Deno.mkdir(`${h.dir}/ledger`, { recursive: true });
  await Deno.writeTextFile(
    `${h.dir}/agent.json`,
    JSON.stringify({ ledger: { dir: "ledger", file: "audit.jsonl" } }),
  );
  const line = (seq: number, type: string, data: unknown) =>
    JSON.stringify({
      v: 1,
      seq,
      ts: new Date().toISOString(),
      type,
      actor: "agent",
      data,
      prev: "0".repeat(64),
    });
  await Deno.writeTextFile(
    `${h.dir}/ledger/audit.jsonl`,
    [
      line(0, "agent.start", { host: "web-1", version: "1.1.0" }),
      line(1, "agent.start", { host: "web-1", version: "1.2.0" }),
    ].join("\n") + "\n",
  );
  const r = await h.run("run");
  assert.equal(r.code, 25, r.stderr);
  assert.match(r.stderr, /last_version\.json is missing.*1\.2\.0/s);
  await assert.rejects(Deno.stat(`${h.dir}/state/last_version.json`));
  // An older state file does not win over the ledger either.
  await Deno.mkdir(`${h.dir}/state`, { recursive: true });
  await Deno.writeTextFile(
    `${h.dir}/state/last_version.json`,
    JSON.stringify({ version: "0.9.0" }),
  );
  const back = await h.run("verify");
  assert.equal(back.code, 23, back.stderr);
  assert.match(back.stderr, /1\.0\.0 is older than 1\.2\.0/);
});
