/**
 * `deno task demo` end to end: the same script and flags as the task, run as a process. It must
 * exit 0, print the key result of each of its seven steps, and leave nothing behind: no
 * process it started, nothing listening on the ports it used, no temporary directory. Ctrl-C
 * in the middle cleans up too.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url).pathname;
const DEMO = `${ROOT}scripts/demo.ts`;

/** The arguments `deno task demo` runs (see the root deno.json). */
const TASK_ARGS = ["run", "-A", "--quiet", DEMO];

function demoDir(out: string): string {
  const m = /^Working directory \(\$DEMO\): (\S+)$/m.exec(out);
  assert.ok(m, `no working directory line in:\n${out}`);
  return m[1];
}

/** Every port the demo printed as `127.0.0.1:PORT`. */
function ports(out: string): number[] {
  return [...new Set([...out.matchAll(/127\.0\.0\.1:(\d{2,5})/g)].map((m) => Number(m[1])))];
}

/** Processes whose command line mentions `text` (other than this test's). */
async function processesMentioning(text: string): Promise<string[]> {
  const found: string[] = [];
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name) || Number(e.name) === Deno.pid) continue;
    try {
      const cmd = (await Deno.readTextFile(`/proc/${e.name}/cmdline`)).replaceAll("\0", " ");
      if (cmd.includes(text)) found.push(`${e.name}: ${cmd}`);
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

async function assertNothingLeft(out: string): Promise<void> {
  const dir = demoDir(out);
  await assert.rejects(Deno.stat(dir), Deno.errors.NotFound, `${dir} was not removed`);
  assert.deepEqual(await processesMentioning(dir), [], "processes left running");
  const used = ports(out);
  assert.ok(used.length >= 3, `expected the demo to print its ports: ${used}`);
  for (const port of used) {
    await assert.rejects(
      Deno.connect({ hostname: "127.0.0.1", port }).then((c) => c.close()),
      Deno.errors.ConnectionRefused,
      `something still listens on 127.0.0.1:${port}`,
    );
  }
}

Deno.test({
  name: "deno task demo: all seven steps succeed, exit 0, and nothing is left running",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const started = Date.now();
    const out = await new Deno.Command(Deno.execPath(), {
      args: TASK_ARGS,
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdin: "null",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, text);
    const expected: RegExp[] = [
      // Set-up: the real commands, the agent under its printed flags, the MCP server on stdio.
      /\$ infraveil control serve --data \$DEMO\/control --listen 127\.0\.0\.1:\d+/,
      /Bundle \$DEMO\/release\/agent\.bundle verified: version 1\.0\.0/,
      /--allow-run=\$DEMO\/bin\/deploy/,
      /rule engine: (OWASP CRS|the built-in baseline rules)/,
      /spawned over stdio by the scripted AI agent \(MCP SDK v2 client, protocol 2026-07-28\)/,
      // 1. fleet status.
      /Step 1\. The AI agent reads fleet status[\s\S]*web-1: agent 1\.0\.0, ok, policy current, ledger anchor \d+:[0-9a-f]{64}/,
      // 2. denied with the policy's reason.
      /Step 2\.[\s\S]*files: src\/app\.ts, \.env {2}→ {2}DENIED[\s\S]*- deploy\.block_paths: file "\.env" matches block_paths "\.env"/,
      // 3. pending.
      /Step 3\.[\s\S]*→ {2}PENDING\n {4}request req_[0-9a-f]+; 1 approval\(s\) needed/,
      // 4. approved by the demo approver; where a real approver approves.
      /Step 4\.[\s\S]*\$ infraveil control approve req_[0-9a-f]+ [^\n]*\n {4}req_[0-9a-f]+: approved\n {4}signed approval: apv_/,
      /approves with a passkey:\n {4}http:\/\/localhost:\d+\/dashboard\/t\/acme\/requests\/req_/,
      // 5. executed, in the ledger, and the backend runs the new version.
      /Step 5\.[\s\S]*get_request_status \(MCP\): EXECUTED\n {4}web-1: succeeded/,
      /seq \d+ agent\.action\.execute command \$DEMO\/bin\/deploy \["1\.1\.0"\]\n {4}seq \d+ agent\.action\.result succeeded, exit 0/,
      /now runs: shop 1\.1\.0/,
      // 6. attacks blocked, ordinary traffic passes, findings read through MCP.
      /GET \/search\?q=1' OR '1'='1' -- {2}→ {2}403 {2}\(SQL injection\)/,
      /GET \/search\?q=<script>alert\(document\.cookie\)<\/script> {2}→ {2}403/,
      /GET \/download\?file=\.\.\/\.\.\/\.\.\/etc\/passwd {2}→ {2}403/,
      /GET \/search\?q=O'Reilly books {2}→ {2}200/,
      /list_findings \(MCP\): \d+ finding\(s\), marked untrusted \(true\)/,
      /\n {4}lfi +\d+ ×[\s\S]*\n {4}sqli +\d+ ×[\s\S]*\n {4}xss +\d+ ×/,
      // 7. offline verification.
      /\$ infraveil verify ledger \$DEMO\/var\/ledger\/audit\.jsonl --head \$DEMO\/web-1\.checkpoint --pubkey \$DEMO\/control\/control\.key\.pub\n {4}ok: \d+ entries/,
      /\$ infraveil verify ledger \$DEMO\/evidence\.jsonl --head \d+:[0-9a-f]{64}\n {4}ok: /,
      /\$ infraveil verify signature [^\n]*\n {4}Verified \$DEMO\/release\/agent\.bundle/,
      /(Signature and comment signature verified|minisign is not installed)/,
      /All 7 steps succeeded in [\d.]+ s\./,
      /Stopped everything the demo started and removed \$DEMO\./,
    ];
    for (const re of expected) assert.match(text, re);
    assert.doesNotMatch(text, /DEMO FAILED/);
    await assertNothingLeft(text);
    console.error(`demo took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  },
});

Deno.test({
  name: "deno task demo: Ctrl-C part-way stops everything it started and removes its directory",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const child = new Deno.Command(Deno.execPath(), {
      args: TASK_ARGS,
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let text = "";
    const err = (async () => {
      for await (const c of child.stderr.pipeThrough(new TextDecoderStream())) text += c;
    })();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    // Interrupt once the agent and the MCP server run (the most there is to clean up).
    while (!text.includes("Step 1.")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    assert.match(text, /Step 1\./, text);
    child.kill("SIGINT");
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    await err;
    const status = await child.status;
    assert.equal(status.code, 130, text);
    assert.match(text, /Interrupted: stopping everything and cleaning up/);
    await assertNothingLeft(text);
  },
});
