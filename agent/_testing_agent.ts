/**
 * Test helpers for the running agent: temporary hosts, a backend, free ports, waiting.
 *
 * @module
 */
import { type AgentConfig, parseAgentConfig } from "./agent_config.ts";
import { freePort } from "../tests/_harness.ts";

/** A loopback backend answering every request with `backend:<path>`. */
export function serveBackend(): { url: string; port: number; close: () => Promise<void> } {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => new Response(`backend:${new URL(req.url).pathname}`),
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    port: server.addr.port,
    close: () => server.shutdown(),
  };
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  what: string,
  timeoutMs = 5_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < until) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`Timed out waiting for ${what}${last ? `: ${last}` : ""}`);
}

/** Fetches through the proxy, returning status and body (or the error's name). */
export async function get(url: string): Promise<string> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    return `${res.status} ${await res.text()}`;
  } catch (e) {
    return `error ${(e as Error).name}`;
  }
}

/** The raw JSON of a test host's agent config. */
export function agentConfigJson(
  dir: string,
  options: {
    backend: string;
    controlUrl?: string;
    proxyPort?: number;
    healthPort?: number;
    actions?: Record<string, unknown>;
    extra?: Record<string, unknown>;
  },
): Record<string, unknown> {
  return {
    host: "web-1",
    tenant: "acme",
    service: "shop",
    environment: "production",
    state_dir: `${dir}/state`,
    control: {
      url: options.controlUrl ?? "http://127.0.0.1:9",
      public_key: "control.pub",
      heartbeat_interval_ms: 200,
      poll_interval_ms: 100,
      timeout_ms: 1_000,
      retry: { initial_ms: 50, max_ms: 400 },
    },
    proxy: {
      listen: `127.0.0.1:${options.proxyPort ?? freePort()}`,
      backend: options.backend,
      tracing: { sampleRate: 1 },
    },
    ledger: { dir: `${dir}/ledger`, checkpoint_interval_ms: 300 },
    health: { listen: `127.0.0.1:${options.healthPort ?? freePort()}` },
    workers: {
      restart: { initial_ms: 50, max_ms: 400 },
      liveness_interval_ms: 100,
      liveness_timeout_ms: 1_000,
    },
    shipping: { batch_size: 50, flush_interval_ms: 100 },
    actions: options.actions ?? {},
    ...options.extra,
  };
}

/** A parsed test config with its directories created. */
export async function testAgentConfig(
  dir: string,
  options: Parameters<typeof agentConfigJson>[1],
): Promise<AgentConfig> {
  const config = parseAgentConfig(
    JSON.stringify(agentConfigJson(dir, options)),
    `${dir}/agent.json`,
    dir,
  );
  await Deno.mkdir(config.ledger.dir, { recursive: true });
  await Deno.mkdir(config.stateDir, { recursive: true });
  return config;
}

/** The ledger's entries, parsed. */
export async function ledgerEntries(
  config: AgentConfig,
): Promise<{ seq: number; type: string; data: Record<string, unknown> }[]> {
  const text = await Deno.readTextFile(`${config.ledger.dir}/${config.ledger.file}`);
  return text.split("\n").filter((l) => l).map((l) => JSON.parse(l));
}
