/**
 * Connections to the backend: connect with a timeout, and a pool of idle keep-alive
 * connections. The pool never hands out a connection with unread bytes, and idle connections
 * are closed by the sweeper after their idle timeout.
 *
 * @module
 */

import { BufferedConn, type Sweeper } from "./_conn.ts";
import type { BackendTarget } from "./config.ts";

/** Why a backend connection could not be made. */
export class ConnectFailure extends Error {
  /** True when the connect timed out (504), false when refused or unreachable (502). */
  readonly timedOut: boolean;
  constructor(message: string, timedOut: boolean, options?: ErrorOptions) {
    super(message, options);
    this.name = "ConnectFailure";
    this.timedOut = timedOut;
  }
}

/** Pool settings. */
export interface PoolOptions {
  connectTimeoutMs: number;
  maxIdle: number;
  idleTimeoutMs: number;
  maxHeadBytes: number;
  now: () => number;
  sweeper: Sweeper;
}

/** Idle keep-alive connections to one backend. */
export class UpstreamPool {
  readonly #target: BackendTarget;
  readonly #opts: PoolOptions;
  readonly #idle: BufferedConn[] = [];
  readonly #all = new Set<BufferedConn>();
  #closed = false;

  constructor(target: BackendTarget, opts: PoolOptions) {
    this.#target = target;
    this.#opts = opts;
  }

  /** Open connections (idle or in use). */
  get open(): number {
    return this.#all.size;
  }

  /** Idle connections. */
  get idle(): number {
    return this.#idle.length;
  }

  /** An idle connection, or undefined. */
  takeIdle(): BufferedConn | undefined {
    for (;;) {
      const c = this.#idle.pop();
      if (c === undefined) return undefined;
      if (!c.closed) {
        c.deadline = 0;
        return c;
      }
      this.#forget(c);
    }
  }

  /** Opens a new connection. */
  async connect(): Promise<BufferedConn> {
    if (this.#closed) throw new ConnectFailure("proxy is closing", false);
    const t = this.#target;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let timedOut = false;
    const pending = t.tls
      ? Deno.connectTls({ hostname: t.hostname, port: t.port })
      : Deno.connect({ hostname: t.hostname, port: t.port, transport: "tcp" });
    let conn: Deno.Conn;
    try {
      conn = await Promise.race([
        pending,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            timedOut = true;
            reject(new ConnectFailure(`connect to ${t.authority} timed out`, true));
          }, this.#opts.connectTimeoutMs);
        }),
      ]);
    } catch (err) {
      if (timedOut) pending.then((c) => c.close(), () => {});
      if (err instanceof ConnectFailure) throw err;
      throw new ConnectFailure(
        `cannot connect to ${t.authority}: ${(err as Error).message}`,
        false,
        { cause: err },
      );
    } finally {
      clearTimeout(timer);
    }
    if (!t.tls) {
      try {
        (conn as Deno.TcpConn).setNoDelay(true);
      } catch {
        // not fatal
      }
    }
    const bc = new BufferedConn(conn, 16384, this.#opts.maxHeadBytes + 16384, !t.tls);
    this.#all.add(bc);
    this.#opts.sweeper.add(bc);
    return bc;
  }

  /** Returns a connection whose exchange completed cleanly. */
  release(c: BufferedConn): void {
    if (
      this.#closed || c.closed || c.buffered > 0 || this.#idle.length >= this.#opts.maxIdle
    ) {
      this.discard(c);
      return;
    }
    c.deadline = this.#opts.now() + this.#opts.idleTimeoutMs;
    this.#idle.push(c);
  }

  /** Closes a connection that cannot be reused. */
  discard(c: BufferedConn): void {
    c.close();
    this.#forget(c);
  }

  #forget(c: BufferedConn): void {
    this.#all.delete(c);
    this.#opts.sweeper.delete(c);
  }

  /** Closes every connection. */
  close(): void {
    this.#closed = true;
    for (const c of this.#all) c.close();
    for (const c of this.#all) this.#opts.sweeper.delete(c);
    this.#all.clear();
    this.#idle.length = 0;
  }
}
