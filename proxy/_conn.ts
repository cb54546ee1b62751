/**
 * A buffered TCP connection with a deadline. One sweeper per proxy closes connections whose
 * deadline passed, which rejects the pending read or write; this is how header-read, idle and
 * upstream timeouts are enforced without a timer per request.
 *
 * @module
 */

const encoder = new TextEncoder();

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
  readonly #maxSize: number;
  #wbuf: Uint8Array | undefined;

  constructor(conn: Deno.Conn, initialSize: number, maxSize: number) {
    this.conn = conn;
    this.buf = new Uint8Array(initialSize);
    this.#maxSize = Math.max(initialSize, maxSize);
  }

  /** Unread buffered byte count. */
  get buffered(): number {
    return this.end - this.start;
  }

  /**
   * Reads more bytes from the socket into the buffer, compacting or growing it as needed.
   * Returns false at end of stream.
   */
  async fill(): Promise<boolean> {
    if (this.closed) return false;
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
    let n: number | null;
    try {
      n = await this.conn.read(this.buf.subarray(this.end));
    } catch (err) {
      if (this.closed) return false;
      throw err;
    }
    if (n === null) return false;
    this.end += n;
    this.bytesRead += n;
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
   * Encodes a message head (ISO-8859-1) into this connection's scratch buffer, followed by
   * `tail` when it fits, and returns the bytes to write plus how much of `tail` was included.
   * The view is valid until the next call, so callers write it before encoding again.
   */
  encodeHead(head: string, tail?: Uint8Array): { bytes: Uint8Array; tailIncluded: boolean } {
    const need = head.length + (tail !== undefined && tail.length <= 65536 ? tail.length : 0);
    let w = this.#wbuf;
    if (w === undefined || w.length < need) {
      w = this.#wbuf = new Uint8Array(Math.max(4096, need * 2));
    }
    const r = encoder.encodeInto(head, w);
    if (r.read !== head.length || r.written !== head.length) {
      // Non-ASCII (obs-text) bytes: encode each code unit as one byte.
      for (let i = 0; i < head.length; i++) w[i] = head.charCodeAt(i) & 0xff;
    }
    let n = head.length;
    let tailIncluded = false;
    if (tail !== undefined && n + tail.length <= w.length) {
      w.set(tail, n);
      n += tail.length;
      tailIncluded = true;
    }
    return { bytes: w.subarray(0, n), tailIncluded };
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
