/**
 * `deno task demo`: infraveil end to end on this machine, on 127.0.0.1 only, in a temporary
 * directory. A control plane, a sample backend, a host agent whose signed bundle verifies
 * itself before it runs (with the proxy in front of the backend), and the governed MCP server
 * driven by a scripted MCP client playing the AI agent. Then, step by step:
 *
 * 1. the AI agent reads fleet status;
 * 2. it requests a deploy that touches `.env`: denied, with the policy's reasons;
 * 3. it requests a valid deploy: pending;
 * 4. a human approves;
 * 5. the host agent executes it; its ledger records it; the request shows executed;
 * 6. attack traffic through the proxy is blocked; the findings are read through MCP;
 * 7. the agent's ledger verifies offline against the anchor the control plane countersigned,
 *    the control plane's evidence against its head, and the release signature with our CLI
 *    and with `minisign` when it is installed.
 *
 * Exits 0 when every step gave the expected result, 1 otherwise; cleans up everything it
 * started (also on Ctrl-C). `--keep` leaves it all running, prints the dashboard URL and a
 * sign-in link, and cleans up on Ctrl-C.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { DemoError, ROOT, Runtime, say, waitFor } from "./_demo_runtime.ts";
import {
  AI_AGENT,
  APPROVER,
  type DemoWorld,
  type EngineChoice,
  HOST,
  SERVICE,
  setUpWorld,
  TENANT,
} from "./_demo_setup.ts";

const USAGE = `Usage: deno task demo [--keep] [--engine auto|crs|baseline]

Runs infraveil end to end on 127.0.0.1 in a temporary directory and walks through an AI agent
reading the fleet, having a deploy denied, another approved and executed, attacks blocked, and
everything verified offline. Exits 0 when every step succeeded; cleans up on exit and Ctrl-C.

Options:
  --keep           leave everything running afterwards, print the dashboard URL and a sign-in
                   link, and clean up on Ctrl-C
  --engine NAME    the proxy's rule engine: crs (OWASP CRS from ../shared/crs), baseline (the
                   built-in rules) or auto (crs when ../shared/crs exists; the default)
  -h, --help       show this help`;

function step(n: number, title: string): void {
  say();
  say(`Step ${n}. ${title}`);
}

function expect(ok: unknown, message: string): void {
  if (!ok) throw new DemoError(message);
}

// deno-lint-ignore no-explicit-any
function reasonLines(reasons: any[]): string[] {
  return reasons.map((r) => `      - ${r.rule}: ${r.message}`);
}

/** The ledger's entries, parsed. */
async function ledgerEntries(
  path: string,
): Promise<{ seq: number; type: string; data: Record<string, unknown> }[]> {
  const text = await Deno.readTextFile(path);
  return text.split("\n").filter((l) => l).map((l) => JSON.parse(l));
}

/** `infraveil verify ledger`, through the CLI's dispatcher or, failing that, the ledger's own. */
async function verifyLedgerCli(rt: Runtime): Promise<(args: string[]) => Promise<string>> {
  const probe = await rt.cli(["verify", "ledger", "--help"], { quiet: true, expect: [0, 2] });
  return async (args) => {
    const show = ["verify", "ledger", ...args].join(" ");
    const r = probe.code === 0
      ? await rt.cli(["verify", "ledger", ...args], { expect: [0, 1] })
      : await rt.run(`${ROOT}/ledger/main.ts`, ["verify", ...args], {
        show,
        expect: [0, 1],
        flags: ["--allow-read"],
      });
    const out = (r.stdout + r.stderr).trim();
    for (const line of out.split("\n")) say(`    ${rt.short(line)}`);
    expect(r.code === 0, `verify ledger failed (exit ${r.code}): ${out}`);
    return out;
  };
}

async function walkThrough(rt: Runtime, w: DemoWorld): Promise<void> {
  const { mcp } = w;

  step(1, "The AI agent reads fleet status (MCP tool fleet_status)");
  const fleet = await mcp.call("fleet_status", {});
  // deno-lint-ignore no-explicit-any
  const host = fleet.hosts.find((h: any) => h.name === HOST);
  expect(host, `fleet_status does not list ${HOST}: ${JSON.stringify(fleet)}`);
  say(`  active policy: ${fleet.active_policy_hash}`);
  say(
    `  ${host.name}: agent ${host.version}, ${host.status}, policy ${
      host.policy_current ? "current" : "NOT current"
    }, ledger anchor ${host.anchor}`,
  );
  expect(host.status === "ok" && host.policy_current, `${HOST} is not ok and current`);

  step(2, "The AI agent requests a deploy that touches .env (MCP tool request_deploy)");
  const bad = await mcp.call("request_deploy", {
    service: SERVICE,
    version: "1.1.0",
    targets: [HOST],
    files: ["src/app.ts", ".env"],
    environment: "production",
    reason: "ship 1.1.0 with the new API key",
  });
  say(`  files: src/app.ts, .env  →  ${bad.status.toUpperCase()} (request ${bad.request_id})`);
  say("    reasons:");
  for (const l of reasonLines(bad.reasons)) say(l);
  expect(bad.status === "denied", `expected denied, got ${bad.status}`);
  expect(
    bad.reasons.some((r: { rule: string }) => r.rule === "deploy.block_paths"),
    "the denial does not name deploy.block_paths",
  );

  step(3, "The AI agent requests a valid deploy (MCP tool request_deploy)");
  const req = await mcp.call("request_deploy", {
    service: SERVICE,
    version: "1.1.0",
    targets: [HOST],
    files: ["src/app.ts", "src/cart.ts"],
    environment: "production",
    reason: "ship 1.1.0: faster checkout",
  });
  say(`  files: src/app.ts, src/cart.ts  →  ${req.status.toUpperCase()}`);
  say(`    request ${req.request_id}; ${req.approvals_needed} approval(s) needed`);
  for (const l of reasonLines(req.reasons)) say(l);
  say(`    dashboard: ${req.dashboard_url}`);
  expect(req.status === "pending", `expected pending, got ${req.status}`);
  const id = req.request_id as string;

  step(4, "A human approves");
  say(`  The demo approver ${APPROVER} approves through the control plane's API with a`);
  say(
    "  personal API token (token approvals are enabled for production in this demo tenant only):",
  );
  const approved = await rt.cli(
    [
      "control",
      "approve",
      id,
      "--tenant",
      TENANT,
      "--url",
      w.controlUrl,
      "--token",
      w.approverToken,
    ],
    {
      show: `control approve ${id} --tenant ${TENANT} --url ${w.controlUrl} --token ivt_…`,
    },
  );
  for (const line of approved.stdout.trim().split("\n")) say(`    ${line}`);
  expect(/approved/.test(approved.stdout), `not approved: ${approved.stdout}`);
  say("  A real approver opens the request in the dashboard and approves with a passkey:");
  say(`    ${w.publicUrl}/dashboard/t/${TENANT}/requests/${id}`);
  say(`  (the requester's operator can never approve; the MCP server holds no approval power)`);

  step(5, "The host agent executes the approved deploy");
  const done = await waitFor(
    async () => {
      const s = await mcp.call("get_request_status", { request_id: id });
      return s.status === "executed" || s.status === "failed" ? s : null;
    },
    "the request to be executed and reported",
    20_000,
  );
  say(`  get_request_status (MCP): ${done.status.toUpperCase()}`);
  // deno-lint-ignore no-explicit-any
  for (const t of (done.execution ?? done.approval?.targets ?? []) as any[]) {
    say(`    ${t.host}: ${t.result} (claimed ${t.used_at}, reported ${t.reported_at})`);
  }
  expect(done.status === "executed", `expected executed, got ${done.status}`);
  const entries = await ledgerEntries(w.files.ledger);
  const exec = entries.find((e) => e.type === "agent.action.execute" && e.data.request_id === id);
  expect(exec, "the agent's ledger has no agent.action.execute for the request");
  const result = entries.find((e) =>
    e.type === "agent.action.result" && e.data.approval_id === exec!.data.approval_id
  );
  expect(result, "the agent's ledger has no agent.action.result");
  say(`  the agent's ledger (${rt.short(w.files.ledger)}):`);
  for (const e of entries.filter((e) => e.data.approval_id === exec!.data.approval_id)) {
    const extra = e.type === "agent.action.execute"
      ? ` command ${rt.short(String(e.data.command))} ${JSON.stringify(e.data.args)}`
      : e.type === "agent.action.result"
      ? ` ${e.data.status}, exit ${e.data.exit_code}`
      : "";
    say(`    seq ${e.seq} ${e.type}${extra}`);
  }
  const shop = await (await fetch(`${w.proxyUrl}/`)).json();
  say(`  the backend, through the proxy, now runs: ${shop.service} ${shop.version}`);
  expect(shop.version === "1.1.0", `the backend runs ${shop.version}, not 1.1.0`);

  step(6, "Attack traffic through the proxy");
  say(`  rule engine: ${w.engine}`);
  const attacks: [string, string][] = [
    ["SQL injection", "/search?q=1%27%20OR%20%271%27%3D%271%27%20--"],
    ["cross-site scripting", "/search?q=%3Cscript%3Ealert(document.cookie)%3C%2Fscript%3E"],
    ["path traversal", "/download?file=..%2F..%2F..%2Fetc%2Fpasswd"],
  ];
  for (const [what, path] of attacks) {
    const res = await fetch(`${w.proxyUrl}${path}`);
    await res.body?.cancel();
    say(`    GET ${decodeURIComponent(path)}  →  ${res.status}  (${what})`);
    expect(res.status === 403, `${what} was not blocked (HTTP ${res.status})`);
  }
  const normal = await fetch(`${w.proxyUrl}/search?q=O%27Reilly%20books`);
  await normal.body?.cancel();
  say(`    GET /search?q=O'Reilly books  →  ${normal.status}  (ordinary traffic passes)`);
  expect(normal.status === 200, `ordinary traffic got HTTP ${normal.status}`);
  const findings = await waitFor(
    async () => {
      const r = await mcp.call("list_findings", { host: HOST });
      const cats = new Set(r.findings.map((f: { category: string }) => f.category));
      return ["sqli", "xss", "lfi"].every((c) => cats.has(c)) ? r : null;
    },
    "the findings to reach the control plane",
    20_000,
  );
  say(
    `  list_findings (MCP): ${findings.findings.length} finding(s), marked untrusted (${findings.trust.untrusted}); by category:`,
  );
  const byCategory = new Map<string, { n: number; severity: string; title: string }>();
  for (const f of findings.findings) {
    const c = byCategory.get(f.category);
    if (c) c.n++;
    else byCategory.set(f.category, { n: 1, severity: f.severity, title: f.title });
  }
  for (const [category, c] of [...byCategory].sort()) {
    say(`    ${category.padEnd(9)} ${String(c.n).padStart(2)} × e.g. ${c.severity}: ${c.title}`);
  }

  step(7, "Offline verification");
  const verifyLedger = await verifyLedgerCli(rt);
  const last = result!.seq;
  const cosigned = await waitFor(
    async () => {
      const f = await mcp.call("fleet_status", {});
      // deno-lint-ignore no-explicit-any
      const h = f.hosts.find((x: any) => x.name === HOST);
      const size = Number(String(h?.checkpoint ?? "").split("\n")[1]);
      return size > last ? h : null;
    },
    "a countersigned anchor covering the deploy",
    20_000,
  );
  const note = `${rt.dir}/web-1.checkpoint`;
  await Deno.writeTextFile(note, cosigned.checkpoint);
  say(`  The agent's ledger against the checkpoint the control plane countersigned`);
  say(`  (anchor ${cosigned.anchor}, from fleet_status), checked with the control plane's key:`);
  await verifyLedger([w.files.ledger, "--head", note, "--pubkey", w.files.controlPub]);

  say("  The control plane's evidence log against its published head:");
  const head = await w.api("GET", `/v1/t/${TENANT}/evidence/head`, w.adminToken);
  const anchor = head.anchor ?? `${head.size}:${head.root}`;
  const evidence = `${rt.dir}/evidence.jsonl`;
  const exported = await rt.cli([
    "control",
    "evidence",
    "export",
    "--data",
    w.files.controlData,
    "--tenant",
    TENANT,
    "--out",
    evidence,
  ]);
  say(`    ${rt.short(exported.stdout.trim())}`);
  await verifyLedger([evidence, "--head", anchor]);

  say("  The agent release's signature, with our CLI:");
  const sig = await rt.cli([
    "verify",
    "signature",
    "--file",
    w.files.bundle,
    "--attestation",
    w.files.attestation,
    "--pubkey",
    w.files.releasePub,
  ], { expect: [0, 1] });
  for (const line of (sig.stdout + sig.stderr).trim().split("\n")) say(`    ${rt.short(line)}`);
  expect(sig.code === 0, "verify signature failed");
  const minisign = await rt.exec("minisign", ["-v"]).then(() => true, () => false);
  if (minisign) {
    const pub = (await rt.cli(["keys", "public", w.files.releasePub, "--format", "minisign"], {
      quiet: true,
    })).stdout.trim();
    say("  and with minisign, independently:");
    say(`  $ minisign -Vm ${rt.short(w.files.bundle)} -P ${pub}`);
    const m = await rt.exec("minisign", ["-Vm", w.files.bundle, "-P", pub]);
    for (const line of (m.stdout + m.stderr).trim().split("\n")) say(`    ${line}`);
    expect(m.code === 0, `minisign -V failed (exit ${m.code})`);
  } else {
    say("  minisign is not installed (Debian: apt install minisign), so the independent check");
    say(
      `  is skipped; with it: minisign -Vm agent.bundle -P "$(infraveil keys public release.key.pub --format minisign)"`,
    );
  }
}

async function keepRunning(w: DemoWorld): Promise<void> {
  const you = await w.api("POST", `/v1/t/${TENANT}/users`, w.adminToken, {
    email: "you@demo.test",
    roles: ["approver"],
  });
  say();
  say("Everything keeps running (--keep):");
  say(`  dashboard:            ${w.publicUrl}/dashboard`);
  say(`  sign-in link (once):  ${you.signup_url}`);
  say("    opens a sign-up page for you@demo.test (role approver): register a passkey, then");
  say("    approve requests in the queue with it.");
  say(`  control plane API:    ${w.controlUrl}`);
  say(`  proxy → backend:      ${w.proxyUrl} → ${w.backendUrl}`);
  say(`  agent health:         ${w.healthUrl}`);
  say(`  MCP identity file:    ${w.files.identity} (INFRAVEIL_AGENT_FILE for your own MCP client)`);
  say("Press Ctrl-C to stop everything and clean up.");
  await new Promise(() => {});
}

/**
 * Runs the demo.
 *
 * @param args command-line arguments
 * @returns the exit code
 */
export async function main(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        keep: { type: "boolean" },
        engine: { type: "string", default: "auto" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }));
  } catch (e) {
    console.error(`error: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (!["auto", "crs", "baseline"].includes(values.engine!)) {
    console.error(`error: --engine must be auto, crs or baseline\n\n${USAGE}`);
    return 2;
  }
  const started = Date.now();
  const rt = await Runtime.create();
  let interrupted = false;
  const interrupt = () => {
    if (interrupted) return;
    interrupted = true;
    say("\nInterrupted: stopping everything and cleaning up…");
    rt.cleanup().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", interrupt);
  Deno.addSignalListener("SIGTERM", interrupt);
  say("infraveil demo: an AI agent operates a production backend without holding the keys");
  say(`Working directory ($DEMO): ${rt.dir}`);
  say(`AI agent identity: "${AI_AGENT}" (policy examples/production.policy)`);
  say();
  let world: DemoWorld | undefined;
  try {
    world = await setUpWorld(rt, { engine: values.engine as EngineChoice });
    await walkThrough(rt, world);
    say();
    say(`All 7 steps succeeded in ${((Date.now() - started) / 1000).toFixed(1)} s.`);
    if (interrupted) return await new Promise<number>(() => {});
    if (values.keep) await keepRunning(world);
    return 0;
  } catch (e) {
    // Stopping the services makes the step in progress fail: the interrupt handler exits.
    if (interrupted) return await new Promise<number>(() => {});
    say();
    say(`DEMO FAILED: ${rt.short(e instanceof Error ? e.message : String(e))}`);
    if (!(e instanceof DemoError) && e instanceof Error && e.stack) say(rt.short(e.stack));
    for (const s of rt.services) {
      const log = rt.short(s.log().trim());
      if (log) say(`--- ${s.name} log (last lines) ---\n${log.split("\n").slice(-25).join("\n")}`);
    }
    if (world) {
      const mcpLog = rt.short(world.mcp.stderr().trim());
      if (mcpLog) say(`--- MCP server log ---\n${mcpLog.split("\n").slice(-15).join("\n")}`);
    }
    return 1;
  } finally {
    if (!values.keep || world === undefined) {
      await rt.cleanup();
      say("Stopped everything the demo started and removed $DEMO.");
    }
    Deno.removeSignalListener("SIGINT", interrupt);
    Deno.removeSignalListener("SIGTERM", interrupt);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
