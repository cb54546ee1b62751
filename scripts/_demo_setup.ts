/**
 * Sets up the demo's world on 127.0.0.1, every part as a user runs it: the control plane
 * (`infraveil control init` and `serve`, SQLite in the temporary directory), a signed,
 * encrypted agent release (`deno bundle`, `infraveil release bundle` and `sign`), a sample
 * backend, the host agent (`infraveil agent run` under exactly the flags `infraveil agent
 * permissions` prints, its bundle verified before it runs) with the proxy in front of the
 * backend, and the governed MCP server (`infraveil mcp`) spawned over stdio by the scripted
 * AI agent.
 *
 * @module
 */
import { connectScriptedAgent, type ScriptedAgent } from "./_demo_mcp.ts";
import {
  DemoError,
  freePort,
  ROOT,
  type Runtime,
  say,
  type Service,
  waitFor,
} from "./_demo_runtime.ts";

/** The tenant the demo creates. */
export const TENANT = "acme";
/** The demo's host. */
export const HOST = "web-1";
/** The demo's service. */
export const SERVICE = "shop";
/** The MCP identity the AI agent uses (the policy's `agent "deployer"`). */
export const AI_AGENT = "deployer";
/** The human who operates the AI agent (can never approve its requests). */
export const OPERATOR = "admin@demo.test";
/** The demo approver. */
export const APPROVER = "approver@demo.test";
/** The version the agent release carries. */
export const AGENT_VERSION = "1.0.0";

/** Which rule engine the proxy runs. */
export type EngineChoice = "auto" | "crs" | "baseline";

/** The running world. */
export interface DemoWorld {
  /** The control plane's API, on 127.0.0.1. */
  controlUrl: string;
  /** The public URL links use (`localhost`: passkeys need a domain name). */
  publicUrl: string;
  /** The active policy's hash. */
  policyHash: string;
  /** The admin's bearer token. */
  adminToken: string;
  /** The demo approver's personal API token. */
  approverToken: string;
  /** The proxy in front of the backend. */
  proxyUrl: string;
  /** The agent's health endpoint. */
  healthUrl: string;
  /** The backend, behind the proxy. */
  backendUrl: string;
  /** The rule engine in use, as shown to the reader. */
  engine: string;
  /** Files the steps use. */
  files: {
    policy: string;
    controlData: string;
    controlPub: string;
    releasePub: string;
    bundle: string;
    attestation: string;
    ledger: string;
    identity: string;
  };
  /** The services. */
  control: Service;
  /** The host agent process. */
  agent: Service;
  /** The scripted AI agent, connected to `infraveil mcp`. */
  mcp: ScriptedAgent;
  /** Calls the human API. */
  // deno-lint-ignore no-explicit-any
  api(method: string, path: string, token: string, body?: unknown): Promise<any>;
}

/** The sample backend: a shop that says which version it runs (the deploy action sets it). */
function serveBackend(versionFile: string): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const version = (await Deno.readTextFile(versionFile).catch(() => "?")).trim();
    const path = new URL(req.url).pathname;
    return Response.json({ service: SERVICE, version, path });
  });
}

const DEPLOY_SCRIPT = `#!/bin/sh
# The demo's deploy command: the agent runs it with the approved version as its argument.
set -eu
echo "deploying ${SERVICE} $1"
printf '%s\\n' "$1" > "$SHOP_DIR/VERSION"
`;

async function api(
  base: string,
  method: string,
  path: string,
  token: string | null,
  body?: unknown,
  // deno-lint-ignore no-explicit-any
): Promise<any> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      "content-type": "application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (!res.ok) throw new DemoError(`${method} ${path}: HTTP ${res.status}: ${text}`);
  return text ? JSON.parse(text) : {};
}

function field(text: string, label: string): string {
  const m = new RegExp(`^${label}:\\s*(\\S+)`, "m").exec(text);
  if (!m) throw new DemoError(`no "${label}" in:\n${text}`);
  return m[1];
}

/**
 * Starts everything.
 *
 * @param rt the runtime (temporary directory, processes)
 * @param options which rule engine the proxy runs
 * @returns the running world
 */
export async function setUpWorld(
  rt: Runtime,
  options: { engine: EngineChoice },
): Promise<DemoWorld> {
  const d = rt.dir;
  for (const sub of ["etc", "control", "release", "bin", "shop", "var"]) {
    await Deno.mkdir(`${d}/${sub}`, { recursive: true, mode: 0o700 });
  }
  const port = freePort();
  const controlUrl = `http://127.0.0.1:${port}`;
  const publicUrl = `http://localhost:${port}`;
  const policy = `${d}/infraveil.policy`;
  await Deno.copyFile(`${ROOT}/examples/production.policy`, policy);

  // The control plane ------------------------------------------------------------------------
  say("Control plane");
  const init = await rt.cli([
    "control",
    "init",
    "--data",
    `${d}/control`,
    "--tenant",
    TENANT,
    "--admin",
    OPERATOR,
    "--policy",
    policy,
    "--public-url",
    publicUrl,
  ]);
  const policyHash = field(init.stdout, "active policy");
  const adminSignup = /\S+\/signup\?\S+/.exec(init.stdout)?.[0];
  if (!adminSignup) throw new DemoError(`control init printed no sign-up link:\n${init.stdout}`);
  const identity = `${d}/${AI_AGENT}.identity.json`;
  await rt.cli([
    "control",
    "enroll",
    "--data",
    `${d}/control`,
    "--tenant",
    TENANT,
    "--kind",
    "mcp",
    "--name",
    AI_AGENT,
    "--operator",
    OPERATOR,
    "--control-url",
    controlUrl,
    "--out",
    identity,
  ]);
  const token = await rt.cli([
    "control",
    "enroll-token",
    "--data",
    `${d}/control`,
    "--tenant",
    TENANT,
    "--kind",
    "agent",
    "--name",
    HOST,
    "--environment",
    "production",
    "--service",
    SERVICE,
  ]);
  await Deno.writeTextFile(`${d}/etc/enroll.token`, field(token.stdout, "token") + "\n", {
    mode: 0o600,
  });
  await Deno.copyFile(`${d}/control/control.key.pub`, `${d}/etc/control.pub`);
  const serveFlags = [
    "--no-prompt",
    `--allow-read=${d}/control`,
    `--allow-write=${d}/control`,
    `--allow-net=127.0.0.1:${port}`,
  ];
  say(`  $ infraveil control serve --data $DEMO/control --listen 127.0.0.1:${port} &`);
  const control = rt.start("control plane", [
    ...serveFlags,
    `${ROOT}/main.ts`,
    "control",
    "serve",
    "--data",
    `${d}/control`,
    "--listen",
    `127.0.0.1:${port}`,
    "--public-url",
    publicUrl,
  ]);
  await waitFor(async () => {
    if (await Promise.race([control.exited, Promise.resolve(null)]) !== null) {
      throw new DemoError(`the control plane exited:\n${control.log()}`);
    }
    const res = await fetch(`${controlUrl}/healthz`).catch(() => null);
    await res?.body?.cancel();
    return res?.ok;
  }, "the control plane to answer /healthz");
  say(`    listening on ${controlUrl} (flags: ${rt.short(serveFlags.slice(1).join(" "))})`);

  // The humans: the admin signs up; the demo approver is added and signs up too.
  const adminToken =
    (await api(controlUrl, "POST", "/v1/signup", null, signupBody(adminSignup))).token;
  const added = await api(controlUrl, "POST", `/v1/t/${TENANT}/users`, adminToken, {
    email: APPROVER,
    roles: ["approver"],
  });
  const approverSession =
    (await api(controlUrl, "POST", "/v1/signup", null, signupBody(added.signup_url))).token;
  const approverToken = (await api(controlUrl, "POST", `/v1/t/${TENANT}/tokens`, approverSession, {
    label: "infraveil demo",
    ttl_seconds: 3600,
  })).token;
  // Token approvals (no passkey) are off for production by default; the demo tenant allows them
  // so that a script can approve. A real tenant leaves them off.
  await api(controlUrl, "PUT", `/v1/t/${TENANT}/settings`, adminToken, {
    token_approvals: { production: true },
  });
  say(
    `    tenant ${TENANT}: admin ${OPERATOR}; demo approver ${APPROVER} (role approver, personal API token)`,
  );

  // The release --------------------------------------------------------------------------------
  say("Agent release");
  await rt.cli(["keys", "generate", "--out", `${d}/release/release.key`]);
  await rt.cli(["release", "tenant-keys", "--out", `${d}/etc/tenant.key`]);
  await rt.run(`${ROOT}/scripts/agent_build.ts`, ["--out", `${d}/release/agent`], {
    flags: ["-A"],
    show: "deno run -A scripts/agent_build.ts --out $DEMO/release/agent",
  });
  const bundle = `${d}/release/agent.bundle`;
  await rt.cli([
    "release",
    "bundle",
    "--src",
    `${d}/release/agent`,
    "--entry",
    "agent.js",
    "--version",
    AGENT_VERSION,
    "--release-key",
    `${d}/release/release.key`,
    "--tenant-keys",
    `${d}/etc/tenant.key`,
    "--out",
    bundle,
  ]);
  await rt.cli(["release", "sign", "--file", bundle, "--key", `${d}/release/release.key`]);
  await Deno.copyFile(`${d}/release/release.key.pub`, `${d}/etc/release.pub`);

  // The backend and the host agent -------------------------------------------------------------
  say("Host agent");
  await Deno.writeTextFile(`${d}/shop/VERSION`, "0.9.0\n");
  const backend = serveBackend(`${d}/shop/VERSION`);
  rt.onCleanup(() => backend.shutdown());
  const backendUrl = `http://127.0.0.1:${backend.addr.port}`;
  await Deno.writeTextFile(`${d}/bin/deploy`, DEPLOY_SCRIPT, { mode: 0o755 });
  await Deno.chmod(`${d}/bin/deploy`, 0o755);

  const crsDir = `${ROOT}/../shared/crs`;
  const haveCrs = await Deno.stat(`${crsDir}/rules`).then(() => true, () => false);
  if (options.engine === "crs" && !haveCrs) {
    throw new DemoError(`--engine crs: no OWASP CRS checkout at ${crsDir}`);
  }
  const useCrs = options.engine === "crs" || (options.engine === "auto" && haveCrs);
  const crsPath = useCrs ? await Deno.realPath(crsDir) : "";
  const engine = useCrs
    ? `OWASP CRS (${crsPath}, paranoia level 1) and the built-in baseline rules`
    : `the built-in baseline rules (${
      options.engine === "baseline" ? "--engine baseline" : "no OWASP CRS checkout at ../shared/crs"
    }; see docs/crs.md for CRS)`;
  const proxyPort = freePort();
  const healthPort = freePort();
  const agentConfig = {
    host: HOST,
    tenant: TENANT,
    service: SERVICE,
    environment: "production",
    state_dir: `${d}/var/agent`,
    control: {
      url: controlUrl,
      public_key: "control.pub",
      enrollment_token_file: "enroll.token",
      heartbeat_interval_ms: 500,
      poll_interval_ms: 200,
      timeout_ms: 5_000,
      retry: { initial_ms: 100, max_ms: 1_000 },
    },
    proxy: {
      listen: `127.0.0.1:${proxyPort}`,
      backend: backendUrl,
      tracing: { sampleRate: 1 },
      ...(useCrs ? { rules: { engine: "crs", crsDir: crsPath, paranoia: 1 } } : {}),
    },
    ledger: { dir: `${d}/var/ledger`, checkpoint_interval_ms: 500 },
    health: { listen: `127.0.0.1:${healthPort}` },
    shipping: { batch_size: 50, flush_interval_ms: 200 },
    actions: {
      deploy: {
        command: `${d}/bin/deploy`,
        args: ["{version}"],
        params: { version: { pattern: "[0-9]+\\.[0-9]+\\.[0-9]+" } },
        env: { SHOP_DIR: `${d}/shop` },
        timeout_ms: 30_000,
      },
    },
  };
  await Deno.writeTextFile(`${d}/etc/agent.json`, JSON.stringify(agentConfig, null, 2) + "\n");
  await Deno.writeTextFile(
    `${d}/etc/launcher.json`,
    JSON.stringify(
      {
        bundle,
        release_keys: ["release.pub"],
        tenant_key_file: "tenant.key",
        state_dir: `${d}/var/launcher`,
        agent_config: "agent.json",
      },
      null,
      2,
    ) + "\n",
  );
  for (const sub of ["var/agent", "var/ledger", "var/launcher"]) {
    await Deno.mkdir(`${d}/${sub}`, { recursive: true, mode: 0o700 });
  }
  const verified = await rt.cli(["agent", "verify", "--config", `${d}/etc/launcher.json`]);
  say(`    ${rt.short(verified.stdout.trim().split("\n")[0])}`);
  const printed = await rt.cli(["agent", "permissions", "--config", `${d}/etc/launcher.json`]);
  const flags = printed.stdout.trim().split("\n");
  if (flags.some((f) => f === "-A" || f === "--allow-all")) {
    throw new DemoError(`agent permissions printed a blanket grant: ${flags.join(" ")}`);
  }
  for (const f of flags) say(`    ${rt.short(f)}`);
  say(`  $ deno run <those flags> main.ts agent run --config $DEMO/etc/launcher.json &`);
  const agent = rt.start("host agent", [
    ...flags,
    `${ROOT}/main.ts`,
    "agent",
    "run",
    "--config",
    `${d}/etc/launcher.json`,
  ]);
  const healthUrl = `http://127.0.0.1:${healthPort}/health`;
  await waitFor(
    async () => {
      if (await Promise.race([agent.exited, Promise.resolve(null)]) !== null) {
        throw new DemoError(`the agent exited:\n${rt.short(agent.log())}`);
      }
      const res = await fetch(healthUrl).catch(() => null);
      if (!res) return false;
      const h = await res.json();
      return h.status === "ok" && h.control?.enrolled;
    },
    "the agent to start its workers and enroll",
    30_000,
  );
  await waitFor(
    async () => {
      const fleet = await api(controlUrl, "GET", `/v1/t/${TENANT}/fleet`, adminToken);
      // deno-lint-ignore no-explicit-any
      const h = fleet.hosts?.find((x: any) => x.name === HOST);
      return h?.policy_current && h?.checkpoint;
    },
    "the agent's first heartbeat and countersigned ledger anchor",
    20_000,
  );
  say(
    `    bundle verified by the launcher, then run; proxy 127.0.0.1:${proxyPort} → backend ${backendUrl}`,
  );
  say(`    rule engine: ${engine}`);

  // The AI agent's MCP server --------------------------------------------------------------
  say("MCP server");
  const mcpFlags = [
    `--allow-net=127.0.0.1:${port}`,
    `--allow-read=${identity}`,
    "--allow-env=INFRAVEIL_BASE_URL,INFRAVEIL_AGENT_FILE",
  ];
  say(
    `  $ INFRAVEIL_BASE_URL=${controlUrl} INFRAVEIL_AGENT_FILE=${rt.short(identity)} infraveil mcp`,
  );
  const mcp = await connectScriptedAgent({
    args: [...mcpFlags, `${ROOT}/main.ts`, "mcp"],
    env: { INFRAVEIL_BASE_URL: controlUrl, INFRAVEIL_AGENT_FILE: identity },
    cwd: d,
    onCleanup: (close) => rt.onCleanup(close),
  });
  say(
    `    spawned over stdio by the scripted AI agent (MCP SDK v2 client, protocol ${mcp.protocolVersion}); ${mcp.tools.length} tools`,
  );
  say(`    flags: ${rt.short(mcpFlags.join(" "))}`);

  return {
    controlUrl,
    publicUrl,
    policyHash,
    adminToken,
    approverToken,
    proxyUrl: `http://127.0.0.1:${proxyPort}`,
    healthUrl,
    backendUrl,
    engine,
    files: {
      policy,
      controlData: `${d}/control`,
      controlPub: `${d}/control/control.key.pub`,
      releasePub: `${d}/release/release.key.pub`,
      bundle,
      attestation: `${bundle}.attestation.json`,
      ledger: `${d}/var/ledger/audit.jsonl`,
      identity,
    },
    control,
    agent,
    mcp,
    api: (method, path, tok, body) => api(controlUrl, method, path, tok, body),
  };
}

function signupBody(link: string): { tenant: string; token: string } {
  const u = new URL(link);
  return { tenant: u.searchParams.get("tenant")!, token: u.searchParams.get("token")! };
}
