/**
 * Benchmark of the governed MCP server (`infraveil mcp`), in one run:
 *
 * 1. Governance overhead per tool call: what the control client does around each call —
 *    build and sign the request envelope, serialise it, then parse and verify the reply
 *    envelope against the pinned key (signature, audience, tenant, window, nonce,
 *    `in_reply_to`). The reply comes from an in-memory `fetch` holding replies the control key
 *    signed beforehand (the client's nonces are made predictable by injecting its randomness),
 *    so no network and no control-plane work is timed. Target: median ≤ 1 ms.
 * 2. A read tool's round trip through the MCP hop — the SDK v1 client → stdio →
 *    `infraveil mcp` (its own process, narrow permissions) → signed HTTP → the real control
 *    plane on loopback — against the same query made directly with the control client, in
 *    alternating batches. Target: MCP round trip ≤ 2× the direct query.
 *
 *   deno run -A scripts/mcp_bench.ts [--calls 2000] [--rounds 15] [--batch 20]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { createControlApp, initTenant, openSqliteStore } from "@infraveil/control";
import { ControlClient, enrollWithToken } from "@infraveil/control/client";
import {
  type Ed25519KeyPair,
  encodeBase64Url,
  generateKeyPair,
  signEnvelope,
  verifyEnvelope,
} from "@infraveil/trust";
import { Client } from "npm:@modelcontextprotocol/sdk@1.32.2/client/index.js";
import { StdioClientTransport } from "npm:@modelcontextprotocol/sdk@1.32.2/client/stdio.js";

const POLICY = `policy "production" {
  version 1
  deploy {
    require_approval true
  }
  agent "claude" {
    allow restart, deploy, rollback, remediate
    blast_radius fleet
  }
}
`;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (ms: number): string => `${ms.toFixed(3)} ms`;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    calls: { type: "string", default: "2000" },
    rounds: { type: "string", default: "15" },
    batch: { type: "string", default: "20" },
  },
  strict: true,
});
const CALLS = Number(values.calls);
const ROUNDS = Number(values.rounds);
const BATCH = Number(values.batch);

// --- The real control plane on loopback, a tenant, an enrolled MCP identity, one host. ------
const tenant = "acme";
const dir = await Deno.makeTempDir({ prefix: "iv-mcp-bench-" });
const store = await openSqliteStore(`${dir}/control.db`);
const controlKey = generateKeyPair();
const { signupToken, policyHash } = await initTenant(store, {
  tenant,
  adminEmail: "admin@example.com",
  policyText: POLICY,
});
const app = createControlApp({ store, keys: controlKey });
const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.fetch);
const url = `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`;

async function post(path: string, body: unknown, token?: string): Promise<Record<string, string>> {
  const res = await fetch(`${url}${path}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return await res.json();
}
const { token: admin } = await post("/v1/signup", { tenant, token: signupToken });
async function enroll(name: string, kind: "agent" | "mcp"): Promise<Ed25519KeyPair> {
  const key = generateKeyPair();
  const { token } = await post(`/v1/t/${tenant}/enrollment-tokens`, {
    name,
    kind,
    ...(kind === "mcp" ? { operator: "admin@example.com" } : { environment: "production" }),
  }, admin);
  await enrollWithToken({
    baseUrl: url,
    tenant,
    name,
    kind,
    token,
    key,
    controlPublicKey: controlKey.publicKey,
  });
  return key;
}
const mcpKey = await enroll("claude", "mcp");
for (const host of ["web-1", "web-2", "web-3"]) {
  const key = await enroll(host, "agent");
  await new ControlClient({
    baseUrl: url,
    identity: { tenant, name: host, kind: "agent", kid: key.kid, privateKey: key.privateKey },
    controlPublicKey: controlKey.publicKey,
  }).heartbeat({ version: "1.4.1", policy_hash: policyHash, health: { ok: true } });
}
const identityFile = `${dir}/claude.json`;
await Deno.writeTextFile(
  identityFile,
  JSON.stringify({
    kind: "mcp",
    name: "claude",
    tenant,
    kid: mcpKey.kid,
    private: encodeBase64Url(mcpKey.privateKey),
    public: encodeBase64Url(mcpKey.publicKey),
    control_public_key: encodeBase64Url(controlKey.publicKey),
    control_kid: controlKey.kid,
  }),
  { mode: 0o600 },
);
const identity = {
  tenant,
  name: "claude",
  kind: "mcp" as const,
  kid: mcpKey.kid,
  privateKey: mcpKey.privateKey,
};
const direct = new ControlClient({
  baseUrl: url,
  identity,
  controlPublicKey: controlKey.publicKey,
});
const fleetResult = await direct.fleetStatus();

// --- 1. Governance overhead: sign the call, verify the reply; no network. ---------------------
{
  const nonces: Uint8Array[] = [];
  const replies: string[] = [];
  const iat = Math.floor(Date.now() / 1000);
  for (let i = 0; i < CALLS; i++) {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    nonces.push(bytes);
    replies.push(JSON.stringify(signEnvelope({
      type: "fleet.status.result",
      tenant,
      aud: `${tenant}/claude`,
      iat,
      exp: iat + 120,
      nonce: encodeBase64Url(crypto.getRandomValues(new Uint8Array(16))),
      in_reply_to: encodeBase64Url(bytes),
      result: fleetResult,
    } as never, controlKey)));
  }
  let n = 0;
  let r = 0;
  const client = new ControlClient({
    baseUrl: "http://control.invalid",
    identity,
    controlPublicKey: controlKey.publicKey,
    random: (buf) => {
      buf.set(nonces[n++]);
      return buf;
    },
    fetch: () => Promise.resolve(new Response(replies[r++])),
  });
  const samples: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    const t0 = performance.now();
    await client.fleetStatus();
    samples.push(performance.now() - t0);
  }
  // For scale: verifying one reply envelope alone (noble Ed25519, strict RFC 8032).
  const verifyOnly: number[] = [];
  for (let i = 0; i < 300; i++) {
    const t0 = performance.now();
    await verifyEnvelope(replies[i], {
      keys: () => controlKey.publicKey,
      audience: `${tenant}/claude`,
      tenant,
      checkNonce: () => true,
    });
    verifyOnly.push(performance.now() - t0);
  }
  const m = median(samples.slice(Math.floor(CALLS / 10)));
  console.log("mcp governance overhead per tool call (sign request + verify reply, no network)");
  console.log(`  calls ${CALLS}, reply ${replies[0].length} bytes (fleet.status, 3 hosts)`);
  console.log(
    `  median ${fmt(m)}  (for scale, verifying one reply alone: ${fmt(median(verifyOnly))})`,
  );
  console.log(`  target ≤ 1 ms: ${m <= 1 ? "met" : "NOT MET"}`);
}

// --- 2. Read-tool round trip through the MCP hop vs the direct query. -------------------------
{
  const transport = new StdioClientTransport({
    command: Deno.execPath(),
    args: [
      "run",
      "--quiet",
      "--no-prompt",
      `--allow-net=${new URL(url).host}`,
      `--allow-read=${identityFile}`,
      "--allow-env=INFRAVEIL_BASE_URL,INFRAVEIL_AGENT_FILE",
      new URL("../mcp/main.ts", import.meta.url).pathname,
    ],
    env: { INFRAVEIL_BASE_URL: url, INFRAVEIL_AGENT_FILE: identityFile },
    stderr: "ignore",
  });
  const mcp = new Client({ name: "mcp-bench", version: "1.0.0" });
  await mcp.connect(transport);
  const viaMcp = async (name: string): Promise<void> => {
    const r = await mcp.callTool({ name, arguments: {} });
    if (r.isError) throw new Error(`${name}: ${JSON.stringify(r.content)}`);
  };
  const tools: [string, () => Promise<unknown>][] = [
    ["fleet_status", () => direct.fleetStatus()],
    ["list_requests", () => direct.listRequests({})],
  ];
  for (const [tool, query] of tools) {
    for (let i = 0; i < 30; i++) {
      await viaMcp(tool);
      await query();
    }
    const hop: number[] = [];
    const plain: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < BATCH; i++) {
        const t0 = performance.now();
        await viaMcp(tool);
        hop.push(performance.now() - t0);
      }
      for (let i = 0; i < BATCH; i++) {
        const t0 = performance.now();
        await query();
        plain.push(performance.now() - t0);
      }
    }
    const h = median(hop);
    const p = median(plain);
    console.log(
      `mcp read-tool round trip: ${tool} (${hop.length} calls each, alternating batches)`,
    );
    console.log(`  via MCP (stdio → infraveil mcp → control)  median ${fmt(h)}`);
    console.log(`  direct control client (same query)        median ${fmt(p)}`);
    console.log(`  ratio ${(h / p).toFixed(2)}×  target ≤ 2×: ${h / p <= 2 ? "met" : "NOT MET"}`);
  }
  await mcp.close();
}

await server.shutdown();
await store.close();
await Deno.remove(dir, { recursive: true });
