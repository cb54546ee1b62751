/**
 * The proxy worker: `@infraveil/proxy`'s worker (which installs itself on import and speaks
 * its own protocol, see docs/proxy.md) plus the sandbox self-test every agent worker answers:
 * `{type: "probe", id, probe}` → `{type: "probe-result", id, results}`. It runs with network
 * access to its listen address, its backend and its collector only.
 *
 * @module
 */
import "@infraveil/proxy/worker";
import { runSandboxProbe, type SandboxProbe } from "./_sandbox_probe.ts";
import { inWorker } from "./_worker_protocol.ts";

if (inWorker()) {
  const scope = globalThis as unknown as {
    postMessage(m: unknown): void;
    addEventListener(t: "message", l: (e: MessageEvent) => void): void;
  };
  scope.addEventListener("message", async (e: MessageEvent) => {
    const msg = e.data as { type?: string; id?: number; probe?: SandboxProbe };
    if (msg?.type !== "probe" || typeof msg.id !== "number") return;
    scope.postMessage({
      type: "probe-result",
      id: msg.id,
      results: await runSandboxProbe(msg.probe ?? {}),
    });
  });
}
