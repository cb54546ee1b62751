/**
 * Request tracing: W3C Trace Context (`traceparent`), one span per request, and an in-memory
 * ring buffer the agent queries. Ids come from injected randomness. Nothing here does I/O; the
 * exporters live in export.ts.
 *
 * @module
 */

import { toHex } from "./_bytes.ts";

/** Fills a buffer with random bytes (defaults to `crypto.getRandomValues`). */
export type RandomFill = (buf: Uint8Array) => void;

/** One proxied request. Times are epoch milliseconds (fractional). */
export interface Span {
  /** 32 lower-case hex digits. */
  traceId: string;
  /** 16 lower-case hex digits. */
  spanId: string;
  /** The caller's span id when the request carried a valid traceparent. */
  parentSpanId?: string;
  /** "METHOD /path". */
  name: string;
  /** Start time, epoch ms. */
  start: number;
  /** End time, epoch ms. */
  end: number;
  /** Request method. */
  method: string;
  /** Path without the query string (queries can carry secrets). */
  route: string;
  /** Status sent to the client (0 if none was sent). */
  status: number;
  /** Total duration in ms. */
  durationMs: number;
  /** Time from sending the request upstream to its response head, in ms. */
  upstreamMs?: number;
  /** Request body bytes received from the client. */
  requestBytes: number;
  /** Response body bytes sent to the client. */
  responseBytes: number;
  /** Client address after trusted-proxy resolution. */
  client: string;
  /** Host header (or absolute-form authority). */
  host?: string;
  /** What the proxy decided. */
  decision: "allowed" | "detected" | "blocked" | "rejected" | "error";
  /** Rule ids that matched, from every engine. */
  ruleIds: string[];
  /** Ids of findings recorded for this request. */
  findingIds: string[];
  /** Why the request failed, for rejected and error decisions. */
  error?: string;
}

/** A parsed `traceparent` header. */
export interface TraceParent {
  traceId: string;
  parentId: string;
  sampled: boolean;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/**
 * Parses a W3C `traceparent` value; undefined if invalid (all-zero ids, version ff, bad form).
 *
 * @example
 * ```ts
 * import { parseTraceParent } from "./trace.ts";
 * import assert from "node:assert/strict";
 * const p = parseTraceParent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
 * assert.equal(p?.sampled, true);
 * ```
 */
export function parseTraceParent(value: string): TraceParent | undefined {
  const m = TRACEPARENT.exec(value.trim());
  if (!m) return undefined;
  const [, version, traceId, parentId, flags, rest] = m;
  if (version === "ff") return undefined;
  if (version === "00" && rest !== undefined) return undefined;
  if (/^0+$/.test(traceId) || /^0+$/.test(parentId)) return undefined;
  return { traceId, parentId, sampled: (parseInt(flags, 16) & 1) === 1 };
}

/** Formats a version-00 `traceparent` value. */
export function formatTraceParent(traceId: string, spanId: string, sampled: boolean): string {
  return `00-${traceId}-${spanId}-${sampled ? "01" : "00"}`;
}

/** Hands out trace and span ids from a pooled random source. */
export class IdSource {
  readonly #fill: RandomFill;
  readonly #pool = new Uint8Array(4096);
  #pos = 4096;

  /** @param fill Random source (defaults to `crypto.getRandomValues`). */
  constructor(fill?: RandomFill) {
    this.#fill = fill ?? ((b) => void crypto.getRandomValues(b));
  }

  #bytes(n: number): Uint8Array {
    if (this.#pos + n > this.#pool.length) {
      this.#fill(this.#pool);
      this.#pos = 0;
    }
    const out = this.#pool.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return out;
  }

  #nonZeroHex(n: number): string {
    for (;;) {
      const b = this.#bytes(n);
      if (b.some((x) => x !== 0)) return toHex(b);
    }
  }

  /** A new 16-byte trace id (hex). */
  traceId(): string {
    return this.#nonZeroHex(16);
  }

  /** A new 8-byte span id (hex). */
  spanId(): string {
    return this.#nonZeroHex(8);
  }

  /** A new finding id ("f_" + 16 hex digits). */
  findingId(): string {
    return "f_" + toHex(this.#bytes(8));
  }

  /** A uniform float in [0, 1). */
  float(): number {
    const b = this.#bytes(4);
    return ((b[0] << 24 >>> 0) + (b[1] << 16) + (b[2] << 8) + b[3]) / 2 ** 32;
  }
}

/** Sampling settings. */
export interface SamplingOptions {
  /** Fraction of new traces recorded, 0..1. */
  sampleRate: number;
  /** Follow the sampled flag of an incoming traceparent. */
  respectParent: boolean;
}

/**
 * Decides whether a request's span is recorded.
 *
 * @param parent Incoming trace context, if any.
 * @param options Sampling settings.
 * @param ids Random source.
 * @returns Whether to record.
 */
export function shouldSample(
  parent: TraceParent | undefined,
  options: SamplingOptions,
  ids: IdSource,
): boolean {
  if (parent && options.respectParent) return parent.sampled;
  if (options.sampleRate >= 1) return true;
  if (options.sampleRate <= 0) return false;
  return ids.float() < options.sampleRate;
}

/** Filter for {@linkcode RingBuffer.query} on spans. */
export interface SpanQuery {
  traceId?: string;
  /** Exact status. */
  status?: number;
  /** Status at least this (e.g. 500 for server errors). */
  minStatus?: number;
  /** Route prefix. */
  route?: string;
  method?: string;
  client?: string;
  decision?: Span["decision"];
  /** Only spans starting at or after this epoch ms. */
  since?: number;
  minDurationMs?: number;
  /** At most this many, newest first (default 100). */
  limit?: number;
}

/** A fixed-capacity ring buffer, newest entries overwrite the oldest. */
export class RingBuffer<T> {
  readonly #items: (T | undefined)[];
  #next = 0;
  #count = 0;
  #total = 0;

  /** @param capacity Most entries kept (at least 1). */
  constructor(capacity: number) {
    this.#items = new Array(Math.max(1, Math.floor(capacity)));
  }

  /** Adds an entry. */
  push(item: T): void {
    this.#items[this.#next] = item;
    this.#next = (this.#next + 1) % this.#items.length;
    if (this.#count < this.#items.length) this.#count++;
    this.#total++;
  }

  /** Entries currently held. */
  get size(): number {
    return this.#count;
  }

  /** Entries ever pushed. */
  get total(): number {
    return this.#total;
  }

  /** Entries matching `pred`, newest first, at most `limit`. */
  find(pred: (item: T) => boolean, limit = 100): T[] {
    const out: T[] = [];
    const cap = this.#items.length;
    for (let i = 1; i <= this.#count && out.length < limit; i++) {
      const item = this.#items[(this.#next - i + cap) % cap] as T;
      if (pred(item)) out.push(item);
    }
    return out;
  }
}

/** Spans kept in memory for the agent to query. */
export class TraceStore {
  readonly #ring: RingBuffer<Span>;
  /** @param capacity Most spans kept. */
  constructor(capacity: number) {
    this.#ring = new RingBuffer(capacity);
  }
  /** Records a span. */
  add(span: Span): void {
    this.#ring.push(span);
  }
  /** Spans held now. */
  get size(): number {
    return this.#ring.size;
  }
  /** Spans matching the query, newest first. */
  query(q: SpanQuery = {}): Span[] {
    return this.#ring.find(
      (s) =>
        (q.traceId === undefined || s.traceId === q.traceId) &&
        (q.status === undefined || s.status === q.status) &&
        (q.minStatus === undefined || s.status >= q.minStatus) &&
        (q.route === undefined || s.route.startsWith(q.route)) &&
        (q.method === undefined || s.method === q.method) &&
        (q.client === undefined || s.client === q.client) &&
        (q.decision === undefined || s.decision === q.decision) &&
        (q.since === undefined || s.start >= q.since) &&
        (q.minDurationMs === undefined || s.durationMs >= q.minDurationMs),
      q.limit ?? 100,
    );
  }
}
