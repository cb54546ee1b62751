/**
 * A buffered TCP connection with a deadline. One sweeper per proxy closes connections whose
 * deadline passed, which rejects the pending read or write; this is how header-read, idle and
 * upstream timeouts are enforced without a timer per request.
 *
 * @module
 */

/** The runtime's read op for a plain TCP connection: resolves to the count read, 0 at the end. */
type RawRead = (rid: number, view: Uint8Array) => Promise<number>;

/**
 * The runtime's read op and the connection's resource id, when the runtime exposes them.
 * `Deno.Conn#read` records every pending read in a per-connection `Set` and deletes it after:
 * when that set empties, V8 reallocates its table, and for a long-lived connection the new
 * table goes straight to the old generation, about 120 bytes per read that only a full
 * mark-compact reclaims (an incremental mark-compact every second or two under load, with
 * pauses of up to a few ms). Reading with the op directly skips that. Anything unexpected and
 * the connection's own `read` is used.
 */
function rawReader(conn: Deno.Conn): { read: RawRead; rid: number } | undefined {
  try {
    const internal = (Deno as unknown as Record<symbol, { core?: { read?: unknown } }>)[
      (Deno as unknown as { internal: symbol }).internal
    ];
    const read = internal?.core?.read;
    if (typeof read !== "function") return undefined;
    for (const sym of Object.getOwnPropertySymbols(conn)) {
      if (sym.description !== "Deno.internal.rid") continue;
      const rid = (conn as unknown as Record<symbol, unknown>)[sym];
      return typeof rid === "number" ? { read: read as RawRead, rid } : undefined;
    }
  } catch {
    // a runtime without these internals
  }
  return undefined;
}

/** A TCP connection with a read buffer and a deadline checked by the sweeper. */
export class BufferedConn {
  /** The underlying connection. */
  readonly conn: Deno.Conn;
  /** Read buffer; bytes [start, end) are unread. */
  buf: Uint8Array;
  /** First unread byte. */
  start = 0;
  /** One past the last unread byte. */
  end = 0;
  /** Clock time (ms) after which the sweeper closes the connection; 0 for none. */
  deadline = 0;
  /** Set when the sweeper closed the connection. */
  expired = false;
  /** Set once closed. */
  closed = false;
  /** Bytes read from the socket. */
  bytesRead = 0;
  /** Bytes written to the socket. */
  bytesWritten = 0;
  /** Free for the owner: the proxy keeps the time the current head's first byte arrived. */
  mark = 0;
  /** Head-reading state kept between reads (on the connection, so no frame holds it). */
  headSeen = false;
  /** Bytes past `start` already scanned for the end of the head. */
  headScanned = 0;
  /** Free for the owner: reused for the layout of the last head parsed from this connection. */
  readonly headFields: number[] = [];
  readonly #maxSize: number;
  readonly #rawRead: RawRead | undefined;
  readonly #rid: number;

  /**
   * @param conn The connection.
   * @param initialSize Initial read buffer size.
   * @param maxSize Largest the read buffer may grow.
   * @param plainTcp Whether `conn` is a plain TCP connection, which may be read with the
   * runtime's read op directly (see {@linkcode BufferedConn.readRaw}).
   */
  constructor(conn: Deno.Conn, initialSize: number, maxSize: number, plainTcp = false) {
    this.conn = conn;
    this.buf = new Uint8Array(initialSize);
    this.#maxSize = Math.max(initialSize, maxSize);
    const raw = plainTcp ? rawReader(conn) : undefined;
    this.#rawRead = raw?.read;
    this.#rid = raw?.rid ?? -1;
  }

  /** Whether reads use the runtime's read op directly (see {@linkcode BufferedConn.readRaw}). */
  get rawRead(): boolean {
    return this.#rawRead !== undefined;
  }

  /**
   * Reads once into `view` (from {@linkcode BufferedConn.space}) and resolves to the count
   * read; 0 or null at the end of the stream. No async frame of its own: the promise is the
   * runtime's. Rejects when the connection fails or is closed while reading.
   */
  readRaw(view: Uint8Array): Promise<number | null> {
    return this.#rawRead !== undefined ? this.#rawRead(this.#rid, view) : this.conn.read(view);
  }

  /** Unread buffered byte count. */
  get buffered(): number {
    return this.end - this.start;
  }

  /**
   * Makes room for a read, compacting or growing the buffer, and returns the view to read
   * into; pass the count read to {@linkcode BufferedConn.commit}. Hot paths read with
   * `bc.readRaw(bc.space())` directly, saving an async frame per read.
   */
  space(): Uint8Array {
    if (this.start === this.end) {
      this.start = 0;
      this.end = 0;
    } else if (this.end === this.buf.length) {
      if (this.start > 0) {
        this.buf.copyWithin(0, this.start, this.end);
        this.end -= this.start;
        this.start = 0;
      } else if (this.buf.length < this.#maxSize) {
        const next = new Uint8Array(Math.min(this.buf.length * 2, this.#maxSize));
        next.set(this.buf.subarray(0, this.end));
        this.buf = next;
      } else {
        throw new RangeError("read buffer full");
      }
    }
    // The whole buffer when it is empty (the usual case): no view to allocate.
    return this.end === 0 ? this.buf : this.buf.subarray(this.end);
  }

  /** Accounts for `n` bytes read into {@linkcode BufferedConn.space}. */
  commit(n: number): void {
    this.end += n;
    this.bytesRead += n;
  }

  /**
   * Reads once into the buffer. Resolves false at end of stream, or when the connection was
   * closed (by the sweeper or the owner) while reading.
   */
  async fill(): Promise<boolean> {
    if (this.closed) return false;
    const view = this.space();
    let n: number | null;
    try {
      n = await this.readRaw(view);
    } catch (err) {
      if (this.closed) return false;
      throw err;
    }
    if (n === null || n === 0) return false;
    this.commit(n);
    return true;
  }

  /** Takes up to `max` buffered bytes (a view valid until the next fill). */
  take(max: number): Uint8Array {
    const n = Math.min(max, this.end - this.start);
    const out = this.buf.subarray(this.start, this.start + n);
    this.start += n;
    return out;
  }

  /** Writes all of `data`. */
  async write(data: Uint8Array): Promise<void> {
    let off = 0;
    while (off < data.length) {
      const n = await this.conn.write(off === 0 ? data : data.subarray(off));
      off += n;
    }
    this.bytesWritten += data.length;
  }

  /**
   * Writes all of `data` with one socket write in the usual case and no async frame of its
   * own: the promise is the runtime's, unless the kernel took only part of the bytes.
   */
  writeAll(data: Uint8Array): Promise<void> {
    this.bytesWritten += data.length;
    return this.conn.write(data).then((n) =>
      n < data.length ? this.writeRest(data.subarray(n)) : undefined
    );
  }

  /**
   * Writes what a first socket write left over. Hot paths write with `conn.write` themselves
   * (counting `bytesWritten`) and call this only for a short write.
   */
  async writeRest(rest: Uint8Array): Promise<void> {
    let off = 0;
    while (off < rest.length) off += await this.conn.write(off === 0 ? rest : rest.subarray(off));
  }

  /** Closes the connection once; never throws. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.conn.close();
    } catch {
      // already closed by the peer or the runtime
    }
  }

  /** Closes the connection because its deadline passed. */
  expire(): void {
    this.expired = true;
    this.close();
  }
}

/** Periodically closes connections whose deadline has passed. */
export class Sweeper {
  readonly #conns = new Set<BufferedConn>();
  readonly #now: () => number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The clock as of the last tick: deadlines need no better precision than the tick. */
  now: number;

  constructor(now: () => number, intervalMs: number) {
    this.#now = now;
    this.now = now();
    this.#timer = setInterval(() => this.sweep(), intervalMs);
  }

  /** Starts watching a connection. */
  add(c: BufferedConn): void {
    this.#conns.add(c);
  }

  /** Stops watching a connection. */
  delete(c: BufferedConn): void {
    this.#conns.delete(c);
  }

  /** Number of watched connections. */
  get size(): number {
    return this.#conns.size;
  }

  /** All watched connections. */
  values(): IterableIterator<BufferedConn> {
    return this.#conns.values();
  }

  /** Closes every connection whose deadline passed. */
  sweep(): void {
    const now = this.now = this.#now();
    for (const c of this.#conns) {
      if (c.deadline !== 0 && now >= c.deadline) {
        this.#conns.delete(c);
        c.expire();
      }
    }
  }

  /** Stops the timer. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
