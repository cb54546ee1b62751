/**
 * Request tracing: W3C Trace Context (`traceparent`), one span per request, and an in-memory
 * ring buffer the agent queries. Ids come from injected randomness. Nothing here does I/O; the
 * exporters live in export.ts.
 *
 * @module
 */

import { hexOf, toHex } from "./_bytes.ts";

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

  /**
   * Writes a new non-zero id of `n` bytes to out[at, at + n), without allocating: the bytes
   * come from a pool refilled by one call to the random source per 4 KiB.
   */
  fillId(out: Uint8Array, at: number, n: number): void {
    for (;;) {
      if (this.#pos + n > this.#pool.length) {
        this.#fill(this.#pool);
        this.#pos = 0;
      }
      const pool = this.#pool;
      let nonZero = 0;
      for (let i = 0; i < n; i++) nonZero |= out[at + i] = pool[this.#pos + i];
      this.#pos += n;
      if (nonZero !== 0) return;
    }
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

/**
 * A span as the proxy records it, without allocating a {@linkcode Span}: the proxy fills one
 * reusable object per request and {@linkcode TraceStore.record} copies it into the store.
 */
export interface SpanFields {
  /** 32 bytes: trace id (16), span id (8), parent span id (8). */
  ids: Uint8Array;
  /** Whether the parent span id bytes are set. */
  hasParent: boolean;
  method: string;
  /** Path without the query string. */
  route: string;
  start: number;
  end: number;
  status: number;
  /** NaN when there was no upstream exchange. */
  upstreamMs: number;
  requestBytes: number;
  responseBytes: number;
  client: string;
  host: string | undefined;
  decision: Span["decision"];
  ruleIds: string[];
  findingIds: string[];
  error: string | undefined;
}

const NO_STRINGS: readonly string[] = Object.freeze([]);

/**
 * Spans kept in memory for the agent to query: a ring of preallocated columns (typed arrays
 * for numbers and ids, interned strings), so recording a span allocates nothing that outlives
 * the request. {@linkcode Span} objects are built only when queried.
 */
export class TraceStore {
  readonly #cap: number;
  readonly #ids: Uint8Array;
  readonly #hasParent: Uint8Array;
  readonly #num: Float64Array; // start, end, upstreamMs, status, requestBytes, responseBytes
  readonly #method: string[];
  readonly #route: string[];
  readonly #client: string[];
  readonly #host: (string | undefined)[];
  readonly #decision: Span["decision"][];
  readonly #ruleIds: (readonly string[])[];
  readonly #findingIds: (readonly string[])[];
  readonly #error: (string | undefined)[];
  readonly #interned = new Map<string, string>();
  // The last value seen per field: consecutive requests mostly repeat them, and comparing two
  // short strings is cheaper than hashing one for the map.
  readonly #lastMethod = [""];
  readonly #lastRoute = [""];
  readonly #lastHost = [""];
  #next = 0;
  #count = 0;

  /** @param capacity Most spans kept (at least 1). */
  constructor(capacity: number) {
    const cap = this.#cap = Math.max(1, Math.floor(capacity));
    this.#ids = new Uint8Array(cap * 32);
    this.#hasParent = new Uint8Array(cap);
    this.#num = new Float64Array(cap * 6);
    this.#method = new Array(cap).fill("");
    this.#route = new Array(cap).fill("");
    this.#client = new Array(cap).fill("");
    this.#host = new Array(cap).fill(undefined);
    this.#decision = new Array(cap).fill("allowed");
    this.#ruleIds = new Array(cap).fill(NO_STRINGS);
    this.#findingIds = new Array(cap).fill(NO_STRINGS);
    this.#error = new Array(cap).fill(undefined);
  }

  /**
   * The same string, shared with earlier spans that had it: the store then keeps one copy per
   * distinct route or host instead of one per request (and never a slice of a request head).
   */
  #intern(s: string, last: string[]): string {
    // Strings compare by content: keep the interned copy, not the request's string.
    if (s === last[0]) return last[0];
    return last[0] = this.#internMap(s);
  }

  #internMap(s: string): string {
    const hit = this.#interned.get(s);
    if (hit !== undefined) return hit;
    if (this.#interned.size >= 4096) this.#interned.clear();
    const copy = s.length < 13 ? s : JSON.parse(JSON.stringify(s)) as string;
    this.#interned.set(copy, copy);
    return copy;
  }

  /** Records a span given as fields; returns its slot (for {@linkcode TraceStore.get}). */
  record(f: SpanFields): number {
    const i = this.#next;
    this.#next = i + 1 === this.#cap ? 0 : i + 1;
    if (this.#count < this.#cap) this.#count++;
    this.#ids.set(f.ids.subarray(0, 32), i * 32);
    this.#hasParent[i] = f.hasParent ? 1 : 0;
    const n = this.#num;
    const o = i * 6;
    n[o] = f.start;
    n[o + 1] = f.end;
    n[o + 2] = f.upstreamMs;
    n[o + 3] = f.status;
    n[o + 4] = f.requestBytes;
    n[o + 5] = f.responseBytes;
    this.#method[i] = this.#intern(f.method, this.#lastMethod);
    this.#route[i] = this.#intern(
      f.route.length > 2048 ? f.route.slice(0, 2048) : f.route,
      this.#lastRoute,
    );
    this.#client[i] = f.client;
    this.#host[i] = f.host === undefined ? undefined : this.#intern(f.host, this.#lastHost);
    this.#decision[i] = f.decision;
    this.#ruleIds[i] = f.ruleIds.length ? f.ruleIds : NO_STRINGS;
    this.#findingIds[i] = f.findingIds.length ? f.findingIds : NO_STRINGS;
    this.#error[i] = f.error;
    return i;
  }

  /** Records a span. */
  add(span: Span): void {
    const ids = new Uint8Array(32);
    const hex = (s: string, at: number): void => {
      for (let k = 0; k + 1 < s.length; k += 2) ids[at + k / 2] = parseInt(s.slice(k, k + 2), 16);
    };
    hex(span.traceId, 0);
    hex(span.spanId, 16);
    if (span.parentSpanId !== undefined) hex(span.parentSpanId, 24);
    this.record({
      ids,
      hasParent: span.parentSpanId !== undefined,
      method: span.method,
      route: span.route,
      start: span.start,
      end: span.end,
      status: span.status,
      upstreamMs: span.upstreamMs ?? NaN,
      requestBytes: span.requestBytes,
      responseBytes: span.responseBytes,
      client: span.client,
      host: span.host,
      decision: span.decision,
      ruleIds: span.ruleIds,
      findingIds: span.findingIds,
      error: span.error,
    });
  }

  /** The span in a slot, as a new object. */
  get(i: number): Span {
    const ids = this.#ids;
    const n = this.#num;
    const o = i * 6;
    const route = this.#route[i];
    const method = this.#method[i];
    const span: Span = {
      traceId: hexOf(ids, i * 32, i * 32 + 16),
      spanId: hexOf(ids, i * 32 + 16, i * 32 + 24),
      name: `${method} ${route.length > 200 ? route.slice(0, 200) : route}`,
      start: n[o],
      end: n[o + 1],
      method,
      route,
      status: n[o + 3],
      durationMs: n[o + 1] - n[o],
      requestBytes: n[o + 4],
      responseBytes: n[o + 5],
      client: this.#client[i],
      decision: this.#decision[i],
      ruleIds: [...this.#ruleIds[i]],
      findingIds: [...this.#findingIds[i]],
    };
    if (this.#hasParent[i] === 1) span.parentSpanId = hexOf(ids, i * 32 + 24, i * 32 + 32);
    if (!Number.isNaN(n[o + 2])) span.upstreamMs = n[o + 2];
    const host = this.#host[i];
    if (host !== undefined) span.host = host;
    const error = this.#error[i];
    if (error !== undefined) span.error = error;
    return span;
  }

  /** Spans held now. */
  get size(): number {
    return this.#count;
  }

  /** Spans matching the query, newest first. */
  query(q: SpanQuery = {}): Span[] {
    const out: Span[] = [];
    const limit = q.limit ?? 100;
    const cap = this.#cap;
    for (let k = 1; k <= this.#count && out.length < limit; k++) {
      const s = this.get((this.#next - k + cap) % cap);
      if (
        (q.traceId === undefined || s.traceId === q.traceId) &&
        (q.status === undefined || s.status === q.status) &&
        (q.minStatus === undefined || s.status >= q.minStatus) &&
        (q.route === undefined || s.route.startsWith(q.route)) &&
        (q.method === undefined || s.method === q.method) &&
        (q.client === undefined || s.client === q.client) &&
        (q.decision === undefined || s.decision === q.decision) &&
        (q.since === undefined || s.start >= q.since) &&
        (q.minDurationMs === undefined || s.durationMs >= q.minDurationMs)
      ) out.push(s);
    }
    return out;
  }
}
