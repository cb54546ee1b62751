/**
 * The request/reply protocol between the supervisor and the ledger and exec workers: every
 * request carries an `id`, every reply names it. Also the worker-side dispatcher.
 *
 * @module
 */

/** A reply from a worker. */
export type WorkerReply =
  | { type: "reply"; id: number; ok: true; result: unknown }
  | { type: "reply"; id: number; ok: false; code: string; message: string };

/** The part of a worker's global scope the dispatcher uses. */
export interface RpcScope {
  postMessage(message: unknown): void;
  addEventListener(type: "message", listener: (e: MessageEvent) => void): void;
}

/** Handlers by request type; each gets the request and returns the result. */
export type RpcHandlers = Record<string, (request: Record<string, unknown>) => unknown>;

/**
 * Answers `{type, id, …}` requests on a worker scope with the matching handler; requests are
 * handled one at a time, in order, so a worker's state changes are serialised.
 *
 * @param scope the worker's global scope
 * @param handlers the handlers
 */
export function serveRequests(scope: RpcScope, handlers: RpcHandlers): void {
  let chain: Promise<void> = Promise.resolve();
  scope.addEventListener("message", (e: MessageEvent) => {
    const msg = e.data as Record<string, unknown>;
    if (typeof msg !== "object" || msg === null || typeof msg.id !== "number") return;
    const handler = handlers[msg.type as string];
    if (!handler) return;
    const id = msg.id;
    chain = chain.then(async () => {
      try {
        scope.postMessage({ type: "reply", id, ok: true, result: await handler(msg) });
      } catch (err) {
        const code = typeof (err as { code?: unknown })?.code === "string"
          ? (err as { code: string }).code
          : (err as Error)?.name ?? "ERROR";
        scope.postMessage({
          type: "reply",
          id,
          ok: false,
          code,
          message: (err as Error)?.message ?? String(err),
        });
      }
    });
  });
}

/** Whether this code runs inside a Worker. */
export function inWorker(): boolean {
  return typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope === "function";
}
