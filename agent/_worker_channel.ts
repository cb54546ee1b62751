/**
 * The supervisor's side of a worker's message port: requests that wait for a matching reply
 * with a timeout, and unasked messages handed to a callback.
 *
 * @module
 */
import { AgentError } from "./error.ts";

interface Waiter {
  match: (msg: Record<string, unknown>) => boolean;
  resolve: (msg: Record<string, unknown>) => void;
  reject: (e: unknown) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** A worker's message port with request/reply matching. */
export class WorkerChannel {
  #worker: Worker;
  #waiters: Waiter[] = [];
  #next = 1;
  #closed: unknown = null;

  /**
   * @param worker the worker
   * @param onUnasked called with every message no request waits for
   */
  constructor(worker: Worker, onUnasked: (msg: Record<string, unknown>) => void) {
    this.#worker = worker;
    worker.addEventListener("message", (e: MessageEvent) => {
      const msg = e.data as Record<string, unknown>;
      if (typeof msg !== "object" || msg === null) return;
      const i = this.#waiters.findIndex((w) => w.match(msg));
      if (i === -1) return onUnasked(msg);
      const [w] = this.#waiters.splice(i, 1);
      clearTimeout(w.timer);
      w.resolve(msg);
    });
  }

  /** A fresh request id. */
  nextId(): number {
    return this.#next++;
  }

  /**
   * Posts a message and waits for the first message `match` accepts.
   *
   * @param message what to post
   * @param match which reply ends the wait
   * @param timeoutMs how long to wait
   * @returns the reply
   */
  send(
    message: Record<string, unknown>,
    match: (msg: Record<string, unknown>) => boolean,
    timeoutMs: number,
  ): Promise<Record<string, unknown>> {
    if (this.#closed !== null) return Promise.reject(this.#closed);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        match,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters = this.#waiters.filter((w) => w !== waiter);
          reject(
            new AgentError(
              "WORKER_FAILED",
              `No answer to ${message.type} within ${timeoutMs} ms`,
            ),
          );
        }, timeoutMs),
      };
      this.#waiters.push(waiter);
      this.#worker.postMessage(message);
    });
  }

  /**
   * Sends `{type, id, …fields}` and waits for `{type: "reply", id}`; a failed reply rejects.
   *
   * @param type the request type
   * @param fields its other fields
   * @param timeoutMs how long to wait
   * @returns the reply's result
   */
  async rpc(type: string, fields: Record<string, unknown>, timeoutMs: number): Promise<unknown> {
    const id = this.nextId();
    const reply = await this.send(
      { ...fields, type, id },
      (m) => m.type === "reply" && m.id === id,
      timeoutMs,
    );
    if (reply.ok !== true) {
      throw new AgentError(
        "WORKER_FAILED",
        `Worker refused ${type}: ${reply.code}: ${reply.message}`,
      );
    }
    return reply.result;
  }

  /**
   * Fails every waiting request and refuses new ones.
   *
   * @param reason why
   */
  close(reason: unknown): void {
    this.#closed = reason;
    for (const w of this.#waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(reason);
    }
  }
}
