/**
 * The worker modules as source files, for running the agent from a checkout (tests, development).
 * A bundle run never uses these: it spawns the workers from its own verified files
 * ({@link bundleWorkerUrls} in `agent_entry.ts`).
 *
 * @module
 */
import type { WorkerUrls } from "./supervisor.ts";

/**
 * The `file:` URLs of the worker sources next to this module.
 *
 * @returns the URLs
 */
export function sourceWorkerUrls(): WorkerUrls {
  return {
    ledger: new URL("./ledger_worker.ts", import.meta.url),
    proxy: new URL("./proxy_worker.ts", import.meta.url),
    exec: new URL("./exec_worker.ts", import.meta.url),
  };
}
