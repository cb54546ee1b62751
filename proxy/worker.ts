/**
 * Worker entry: the agent runs the proxy in a Deno Worker whose permissions allow only its
 * listen address and its backend (plus a collector, when one is configured). The parent sends
 * the configuration by `postMessage`; the worker reads no files (except the CRS rules when
 * `rules.engine` is "crs") and never the environment.
 *
 * Protocol (parent → worker):
 * - `{type: "start", config}`: resolve the config (a {@linkcode ProxyConfigInput}) and listen;
 *   answers `{type: "listening", hostname, port}` or `{type: "error", code, message}`.
 * - `{type: "query", id, what: "traces" | "findings" | "stats", filter?}`: answers
 *   `{type: "result", id, result}`.
 * - `{type: "stop"}`: closes the proxy and answers `{type: "stopped"}`.
 *
 * Worker → parent, unasked: `{type: "spans", spans}` and `{type: "findings", findings}` batches
 * (the exporter sink is the parent), so traces and findings reach the agent without the worker
 * holding any other permission.
 *
 * @module
 */

import { type ProxyConfigInput, resolveConfig } from "./config.ts";
import { loadCrsEngine } from "./crs_loader.ts";
import { ProxyError } from "./errors.ts";
import type { Finding, FindingQuery } from "./findings.ts";
import { createProxy, type Proxy } from "./proxy.ts";
import type { Span, SpanQuery } from "./trace.ts";

/** Messages the worker accepts. */
export type ProxyWorkerRequest =
  | {
    type: "start";
    config: ProxyConfigInput;
    /** Post span and finding batches to the parent (default true). */
    exportToParent?: boolean;
    /** Directory that relative CRS paths are resolved against (engine "crs" only). */
    baseDir?: string;
  }
  | { type: "query"; id: number; what: "traces"; filter?: SpanQuery }
  | { type: "query"; id: number; what: "findings"; filter?: FindingQuery }
  | { type: "query"; id: number; what: "stats" }
  | { type: "stop" };

/** Messages the worker sends. */
export type ProxyWorkerMessage =
  | { type: "listening"; hostname: string; port: number }
  | { type: "error"; code: string; message: string }
  | { type: "result"; id: number; result: unknown }
  | { type: "spans"; spans: Span[] }
  | { type: "findings"; findings: Finding[] }
  | { type: "stopped" };

/** The part of a worker's global scope this module uses. */
export interface WorkerScope {
  postMessage(message: ProxyWorkerMessage): void;
  addEventListener(type: "message", listener: (e: MessageEvent) => void): void;
}

/**
 * Installs the message handler on a worker scope.
 *
 * @param scope The worker's global scope (`self`).
 */
export function runProxyWorker(scope: WorkerScope): void {
  let proxy: Proxy | undefined;
  scope.addEventListener("message", async (e: MessageEvent) => {
    const msg = e.data as ProxyWorkerRequest;
    if (typeof msg !== "object" || msg === null) return;
    try {
      switch (msg.type) {
        case "start": {
          if (proxy) throw new ProxyError("LISTEN_FAILED", "proxy already started");
          const config = resolveConfig(msg.config);
          const toParent = msg.exportToParent !== false;
          // The CRS engine reads its rule files: only then does the worker need read access.
          const ruleEngines = config.rules.engine === "crs"
            ? [
              await loadCrsEngine(config.rules, {
                baseDir: msg.baseDir ?? "/",
                files: {
                  readFile: (p) => Deno.readTextFileSync(p),
                  listDir: (p) => [...Deno.readDirSync(p)].map((e) => e.name),
                },
              }),
            ]
            : [];
          proxy = createProxy({
            config,
            ruleEngines,
            traceSinks: toParent
              ? [{
                export: (spans) => Promise.resolve(scope.postMessage({ type: "spans", spans })),
              }]
              : [],
            findingSinks: toParent
              ? [{
                export: (findings) =>
                  Promise.resolve(scope.postMessage({ type: "findings", findings })),
              }]
              : [],
          });
          const addr = proxy.listen();
          scope.postMessage({ type: "listening", ...addr });
          break;
        }
        case "query": {
          if (!proxy) throw new ProxyError("CLOSED", "proxy not started");
          const result = msg.what === "traces"
            ? proxy.traces.query(msg.filter)
            : msg.what === "findings"
            ? proxy.findings.query(msg.filter)
            : proxy.stats();
          scope.postMessage({ type: "result", id: msg.id, result });
          break;
        }
        case "stop": {
          await proxy?.close();
          proxy = undefined;
          scope.postMessage({ type: "stopped" });
          break;
        }
      }
    } catch (err) {
      scope.postMessage({
        type: "error",
        code: err instanceof ProxyError ? err.code : "INTERNAL",
        message: (err as Error)?.message ?? String(err),
      });
    }
  });
}

// Started as a Worker: install the handler on the worker's own scope.
if (typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope === "function") {
  runProxyWorker(globalThis as unknown as WorkerScope);
}
