/**
 * The reverse proxy: a strict HTTP/1.1 front end on `Deno.listen`, an HTTP/1.1 client to one
 * backend on `Deno.connect`, and between them the defences (limits, access lists, rate limits,
 * rule engines) and the tracing. It forwards bytes it does not need to understand untouched:
 * header values, bodies (compressed or not), WebSocket frames.
 *
 * It must never buffer a body beyond what a rule engine asked to inspect, never add a header to
 * the upstream request except the forwarding headers, `traceparent` and what framing requires,
 * and never wait on an exporter.
 *
 * @module
 */

import { ByteWriter, concatBytes, hexInto, hexOf, latin1Encode, utf8Encode } from "./_bytes.ts";
import { BufferedConn, Sweeper } from "./_conn.ts";
import {
  type BodySource,
  ChunkedBody,
  CloseBody,
  encodeChunk,
  F_CONTENT_LENGTH,
  F_EXPECT,
  F_FORWARDING,
  F_HOST,
  F_TRACEPARENT,
  type HeadLimits,
  HOP_KIND,
  LAST_CHUNK,
  LengthBody,
  parseRequestHead,
  parseResponseHead,
  Rejection,
  type RequestHead,
  type ResponseHead,
  scanHead,
  tooLarge,
} from "./_http1.ts";
import { ConnectFailure, UpstreamPool } from "./_upstream.ts";
import { createBaselineEngine } from "./baseline_rules.ts";
import { type BackendTarget, parseBackend, parseHostPort, type ProxyConfig } from "./config.ts";
import { ProxyError } from "./errors.ts";
import {
  BatchExporter,
  type ExportStats,
  type FindingSink,
  HttpJsonFindingSink,
  OtlpHttpTraceSink,
  type TraceSink,
} from "./export.ts";
import { type Finding, FindingStore, type Redaction, scrub, summarizeRequest } from "./findings.ts";
import { forwardingHeaders, HOP_BY_HOP, resolveClient } from "./forwarding.ts";
import { IpSet } from "./ip.ts";
import { RateLimiter } from "./rate_limit.ts";
import type {
  RuleEngine,
  RuleMatch,
  RuleRequest,
  RuleResponse,
  RuleVerdict,
} from "./rule_engine.ts";
import {
  formatTraceParent,
  IdSource,
  parseTraceParent,
  type RandomFill,
  type SamplingOptions,
  shouldSample,
  type Span,
  type SpanFields,
  type TraceParent,
  TraceStore,
} from "./trace.ts";

/** What {@linkcode createProxy} needs. */
export interface ProxyOptions {
  /** Resolved configuration (see `resolveConfig` / `parseConfig`). */
  config: ProxyConfig;
  /** Rule engines run after the baseline rules (e.g. the CRS engine). */
  ruleEngines?: RuleEngine[];
  /** Extra span sinks (e.g. the control plane); the OTLP collector comes from the config. */
  traceSinks?: TraceSink[];
  /** Extra finding sinks; an HTTP sink comes from the config. */
  findingSinks?: FindingSink[];
  /** Clock, epoch milliseconds (fractions allowed). */
  now?: () => number;
  /** Randomness for trace, span and finding ids. */
  random?: RandomFill;
  /** fetch used by the configured HTTP exporters. */
  fetch?: typeof fetch;
  /** Called with unexpected internal errors (default: ignored). */
  onError?: (err: unknown) => void;
}

/** Counters for health reporting. */
export interface ProxyStats {
  /** Client connections open now. */
  connections: number;
  /** Requests whose head was read. */
  requests: number;
  /** Requests refused by a protocol check or limit. */
  rejected: number;
  /** Requests blocked by access lists, rate limits or rules. */
  blocked: number;
  /** Rule-engine evaluations that threw (the request was allowed). */
  ruleErrors: number;
  /** Backend connections open and idle. */
  upstream: { open: number; idle: number };
  /** One entry per span exporter. */
  traceExport: ExportStats[];
  /** One entry per finding exporter. */
  findingExport: ExportStats[];
}

/** A running or ready-to-run proxy. */
export interface Proxy {
  /**
   * Starts listening on the configured address.
   *
   * @returns The bound address (the real port when the config said 0).
   * @throws {ProxyError} LISTEN_FAILED.
   */
  listen(): { hostname: string; port: number };
  /** Spans kept in memory. */
  readonly traces: TraceStore;
  /** Findings kept in memory. */
  readonly findings: FindingStore;
  /** Counters. */
  stats(): ProxyStats;
  /** Stops listening, closes every connection and flushes exporters. */
  close(): Promise<void>;
}

const REASONS: Record<number, string> = {
  400: "Bad Request",
  403: "Forbidden",
  405: "Method Not Allowed",
  408: "Request Timeout",
  413: "Content Too Large",
  414: "URI Too Long",
  417: "Expectation Failed",
  421: "Misdirected Request",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
};

const HOST_VALUE = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]*)(?::[0-9]*)?$/;
const CONTINUE = latin1Encode("HTTP/1.1 100 Continue\r\n\r\n");

/** The client went away or broke framing while we read its body. */
class ClientGone extends Error {}

const backendError = (m: string): Error => new Error(`backend: ${m}`);
const malformedBackend = (e: Error): Error => new Error(`malformed backend response: ${e.message}`);
const backendClosedInBody = (): Error => new Error("backend: closed inside the body");

const HTTP11_SP = latin1Encode("HTTP/1.1 ");
const CRLF = latin1Encode("\r\n");
const TE_CHUNKED = latin1Encode("Transfer-Encoding: chunked\r\n");
const CONNECTION_CLOSE = latin1Encode("Connection: close\r\n");
const CONNECTION_KEEP_ALIVE = latin1Encode("Connection: keep-alive\r\n");
const REQUEST_LINE_END = latin1Encode(" HTTP/1.1\r\n");
const COLON_SP = latin1Encode(": ");
const SPACE = latin1Encode(" ");
const TRACEPARENT_00 = latin1Encode("traceparent: 00-");
const DASH = latin1Encode("-");
const SAMPLED_END = latin1Encode("-01\r\n");
const UNSAMPLED_END = latin1Encode("-00\r\n");

/** The rule and finding ids of an exchange that has none (shared; replaced, never mutated). */
const NO_IDS: string[] = Object.freeze([]) as unknown as string[];

/** An engine's inspection of the response to a request it allowed. */
interface ResponseCheck {
  engine: RuleEngine;
  check: (res: RuleResponse) => RuleVerdict | Promise<RuleVerdict>;
}

/** An engine's answer, checked: a verdict without a list of matches is the engine's error. */
function checkedVerdict(v: RuleVerdict): RuleVerdict {
  if (v === null || typeof v !== "object" || !Array.isArray(v.matches)) {
    throw new TypeError(`rule engine returned ${v === null ? "null" : typeof v}, not a verdict`);
  }
  return v;
}
const NO_CHECKS: ResponseCheck[] = Object.freeze([]) as unknown as ResponseCheck[];

/** `#headBegin` / `#headMore`: the head is not complete yet. */
const MORE = -2;

/** A request body already in memory is sent with the head when at most this large. */
const COALESCE_BYTES = 64 * 1024;

/** One client connection: its buffers and per-connection caches. */
class ClientConn {
  readonly bc: BufferedConn;
  readonly peer: string;
  /** The upstream request head (and a small body) being sent. */
  readonly reqOut: ByteWriter = new ByteWriter(1024);
  /** The response head (and a small body) being sent. */
  readonly resOut: ByteWriter = new ByteWriter(1024);
  /** Trace id (16 bytes), span id (8) and parent span id (8) of the current exchange. */
  readonly ids: Uint8Array = new Uint8Array(32);
  /** Forwarding header lines for an untrusted peer, cached for the last host seen. */
  fwdHost: string | undefined;
  fwdBytes: Uint8Array | undefined;
  constructor(bc: BufferedConn, peer: string) {
    this.bc = bc;
    this.peer = peer;
  }
}

/** Whether the field named buf[a, b) is one of the lower-cased `names` (letters fold). */
function nameListed(buf: Uint8Array, a: number, b: number, names: readonly string[]): boolean {
  outer: for (const name of names) {
    if (name.length !== b - a) continue;
    for (let i = 0; i < name.length; i++) {
      const c = buf[a + i];
      const want = name.charCodeAt(i);
      if (c !== want && !(c >= 65 && c <= 90 && (c | 0x20) === want)) continue outer;
    }
    return true;
  }
  return false;
}

/** Per-request state, becomes the span. */
interface Exchange {
  conn: ClientConn;
  start: number;
  peer: string;
  client: string;
  method: string;
  target: string;
  protocol: string;
  headers: [string, string][];
  host: string | undefined;
  /** Whether conn.ids holds this exchange's trace and span ids. */
  idsSet: boolean;
  /** Hex of the ids, made on demand. */
  traceId: string | undefined;
  spanId: string | undefined;
  parent: TraceParent | undefined;
  sampled: boolean;
  status: number;
  requestBytes: number;
  responseBytes: number;
  upstreamMs: number | undefined;
  decision: Span["decision"];
  error: string | undefined;
  ruleIds: string[];
  findingIds: string[];
  redaction: Redaction | undefined;
  /** The engines that inspect this request's response. */
  responseChecks: ResponseCheck[];
}

/** A request body from the client: 100-continue, deadline refresh and size limit. */
class ClientBody implements BodySource {
  readonly #inner: BodySource;
  readonly #onFirst: (() => Promise<void>) | undefined;
  readonly #touch: () => void;
  readonly #max: number;
  #started = false;
  done = false;
  constructor(
    inner: BodySource,
    max: number,
    touch: () => void,
    onFirst: (() => Promise<void>) | undefined,
  ) {
    this.#inner = inner;
    this.#max = max;
    this.#touch = touch;
    this.#onFirst = onFirst;
  }
  get bytes(): number {
    return this.#inner.bytes;
  }
  async read(): Promise<Uint8Array | null> {
    if (this.done) return null;
    if (!this.#started) {
      this.#started = true;
      if (this.#onFirst) await this.#onFirst();
    }
    this.#touch();
    const c = await this.#inner.read();
    if (c === null) {
      this.done = true;
      return null;
    }
    if (this.#max > 0 && this.#inner.bytes > this.#max) throw tooLarge();
    return c;
  }
}

/** State of a request body being copied to the backend. */
class BodySender {
  /** Why reading the client's body failed, if it did. */
  error: unknown = undefined;
  /** Set once the whole body was sent. */
  done = false;
  promise: Promise<void> = Promise.resolve();
}

/** A body read partly into memory (for rule engines) then streamed. */
class BufferedThenStream implements BodySource {
  readonly #prefix: Uint8Array[];
  readonly #rest: BodySource | null;
  readonly #whole: number;
  /** `rest` null: the prefix is the whole body. */
  constructor(prefix: Uint8Array[], rest: BodySource | null) {
    this.#prefix = prefix;
    this.#rest = rest;
    let n = 0;
    if (rest === null) { for (const p of prefix) n += p.length; }
    this.#whole = n;
  }
  /** Like the source it wraps: every byte read from the peer, the prefix included. */
  get bytes(): number {
    return this.#rest === null ? this.#whole : this.#rest.bytes;
  }
  read(): Promise<Uint8Array | null> {
    const p = this.#prefix.shift();
    if (p) return Promise.resolve(p);
    return this.#rest === null ? Promise.resolve(null) : this.#rest.read();
  }
}

/**
 * Creates a proxy from a resolved configuration.
 *
 * @param options Configuration, extra rule engines and sinks, clock and randomness.
 * @returns The proxy; call `listen()` to start it.
 * @throws {ProxyError} CONFIG_INVALID when the backend or listen address is unusable.
 * @example
 * ```ts ignore
 * import { createProxy, resolveConfig } from "@infraveil/proxy";
 * const proxy = createProxy({
 *   config: resolveConfig({ listen: "127.0.0.1:0", backend: "http://127.0.0.1:3000" }),
 * });
 * const { port } = proxy.listen();
 * await proxy.close();
 * ```
 */
export function createProxy(options: ProxyOptions): Proxy {
  return new ProxyServer(options);
}

class ProxyServer implements Proxy {
  readonly traces: TraceStore;
  readonly findings: FindingStore;
  readonly #cfg: ProxyConfig;
  readonly #backend: BackendTarget;
  readonly #now: () => number;
  readonly #ids: IdSource;
  readonly #sampling: SamplingOptions;
  readonly #samplingNew: SamplingOptions;
  /** Reused for every span: recording copies it into the store. */
  readonly #spanFields: SpanFields = {
    ids: new Uint8Array(32),
    hasParent: false,
    method: "",
    route: "",
    start: 0,
    end: 0,
    status: 0,
    upstreamMs: NaN,
    requestBytes: 0,
    responseBytes: 0,
    client: "",
    host: undefined,
    decision: "allowed",
    ruleIds: [],
    findingIds: [],
    error: undefined,
  };
  readonly #onError: (err: unknown) => void;
  readonly #engines: RuleEngine[];
  readonly #inspectBytes: number;
  readonly #trusted: IpSet;
  readonly #allow: IpSet;
  readonly #deny: IpSet;
  readonly #limiter: RateLimiter | undefined;
  readonly #traceExporters: BatchExporter<Span>[] = [];
  readonly #findingExporters: BatchExporter<Finding>[] = [];
  readonly #headLimits: { maxHeadBytes: number; maxLineBytes: number; maxHeaderCount: number };
  readonly #upstreamHeadLimits: {
    maxHeadBytes: number;
    maxLineBytes: number;
    maxHeaderCount: number;
  };
  readonly #clients = new Set<BufferedConn>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #absoluteHosts = new Set<string>();
  #sweeper: Sweeper | undefined;
  #pool: UpstreamPool | undefined;
  #listener: Deno.Listener | undefined;
  #acceptLoop: Promise<void> | undefined;
  #closing = false;
  #requests = 0;
  #rejected = 0;
  #blocked = 0;
  #ruleErrors = 0;

  constructor(options: ProxyOptions) {
    const cfg = options.config;
    this.#cfg = cfg;
    const backend = parseBackend(cfg.backend);
    if (typeof backend === "string") throw new ProxyError("CONFIG_INVALID", backend);
    this.#backend = backend;
    const origin = performance.timeOrigin;
    this.#now = options.now ?? (() => origin + performance.now());
    this.#ids = new IdSource(options.random);
    this.#sampling = {
      sampleRate: cfg.tracing.sampleRate,
      respectParent: cfg.tracing.respectParentSampling,
    };
    this.#samplingNew = { sampleRate: cfg.tracing.sampleRate, respectParent: false };
    this.#onError = options.onError ?? (() => {});
    this.#engines = [
      ...(cfg.rules.baseline ? [createBaselineEngine({ disabled: cfg.rules.disabled })] : []),
      ...(options.ruleEngines ?? []),
    ];
    this.#inspectBytes = Math.max(
      0,
      ...this.#engines.filter((e) => e.inspectsBody).map((e) => e.maxBodyBytes ?? 128 * 1024),
    );
    this.#trusted = new IpSet(cfg.trustedProxies);
    this.#allow = new IpSet(cfg.access.allow);
    this.#deny = new IpSet(cfg.access.deny);
    if (cfg.rateLimit.enabled) {
      this.#limiter = new RateLimiter({
        requestsPerSecond: cfg.rateLimit.requestsPerSecond,
        burst: cfg.rateLimit.burst,
        maxClients: cfg.rateLimit.maxClients,
        now: this.#now,
      });
    }
    this.traces = new TraceStore(cfg.tracing.bufferSize);
    this.findings = new FindingStore(cfg.findings.bufferSize);
    const otlp = cfg.tracing.otlp;
    if (cfg.tracing.enabled && otlp) {
      this.#traceExporters.push(
        new BatchExporter(
          new OtlpHttpTraceSink({
            url: otlp.url,
            headers: otlp.headers,
            timeoutMs: otlp.timeoutMs,
            serviceName: cfg.tracing.serviceName,
            fetch: options.fetch,
          }),
          otlp,
        ),
      );
    }
    if (cfg.tracing.enabled) {
      for (const s of options.traceSinks ?? []) this.#traceExporters.push(new BatchExporter(s));
    }
    const fx = cfg.findings.export;
    if (fx) {
      this.#findingExporters.push(
        new BatchExporter(
          new HttpJsonFindingSink({
            url: fx.url,
            headers: fx.headers,
            timeoutMs: fx.timeoutMs,
            fetch: options.fetch,
          }),
          fx,
        ),
      );
    }
    for (const s of options.findingSinks ?? []) this.#findingExporters.push(new BatchExporter(s));
    this.#headLimits = {
      maxHeadBytes: cfg.limits.maxHeaderBytes,
      maxLineBytes: cfg.limits.maxRequestLineBytes,
      maxHeaderCount: cfg.limits.maxHeaderCount,
    };
    const maxUp = cfg.upstream.maxResponseHeaderBytes;
    this.#upstreamHeadLimits = {
      maxHeadBytes: maxUp,
      maxLineBytes: maxUp,
      maxHeaderCount: 10_000,
    };
    for (const h of cfg.hosts) this.#absoluteHosts.add(h.toLowerCase());
  }

  listen(): { hostname: string; port: number } {
    if (this.#listener) throw new ProxyError("LISTEN_FAILED", "proxy is already listening");
    if (this.#closing) throw new ProxyError("CLOSED", "proxy was closed");
    const addr = parseHostPort(this.#cfg.listen);
    if (!addr) throw new ProxyError("CONFIG_INVALID", `listen: bad address "${this.#cfg.listen}"`);
    try {
      this.#listener = Deno.listen({
        hostname: addr.hostname,
        port: addr.port,
        transport: "tcp",
        reusePort: this.#cfg.workers > 1,
      });
    } catch (err) {
      if (this.#cfg.workers > 1 && /unstable/i.test((err as Error).message)) {
        throw new ProxyError(
          "LISTEN_FAILED",
          `Cannot listen on ${this.#cfg.listen} with ${this.#cfg.workers} threads: SO_REUSEPORT ` +
            `needs Deno's --unstable-net flag — add it, or set "workers": 1`,
          { cause: err },
        );
      }
      throw new ProxyError(
        "LISTEN_FAILED",
        `Cannot listen on ${this.#cfg.listen}: ${(err as Error).message} — choose a free port or ` +
          `grant net permission for it`,
        { cause: err },
      );
    }
    const bound = this.#listener.addr as Deno.NetAddr;
    const authority = bound.hostname.includes(":")
      ? `[${bound.hostname}]:${bound.port}`
      : `${bound.hostname}:${bound.port}`;
    this.#absoluteHosts.add(authority.toLowerCase());
    if (bound.hostname === "127.0.0.1" || bound.hostname === "::1") {
      this.#absoluteHosts.add(`localhost:${bound.port}`);
    }
    const L = this.#cfg.limits;
    const U = this.#cfg.upstream;
    const tick = Math.max(
      10,
      Math.min(250, Math.floor(Math.min(L.headerTimeoutMs, U.responseTimeoutMs) / 4)),
    );
    this.#sweeper = new Sweeper(this.#now, tick);
    this.#pool = new UpstreamPool(this.#backend, {
      connectTimeoutMs: U.connectTimeoutMs,
      maxIdle: U.maxIdleConnections,
      idleTimeoutMs: U.idleTimeoutMs,
      maxHeadBytes: U.maxResponseHeaderBytes,
      now: this.#now,
      sweeper: this.#sweeper,
    });
    this.#acceptLoop = this.#accept(this.#listener);
    return { hostname: bound.hostname, port: bound.port };
  }

  async #accept(listener: Deno.Listener): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        if (this.#closing) return;
        // Transient accept errors (EMFILE…): back off briefly and continue.
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      if (this.#clients.size >= this.#cfg.limits.maxConnections) {
        try {
          conn.close();
        } catch { /* ignore */ }
        continue;
      }
      const task = this.#serveClient(conn as Deno.TcpConn).catch((e) => this.#onError(e));
      this.#tasks.add(task);
      task.finally(() => this.#tasks.delete(task));
    }
  }

  stats(): ProxyStats {
    return {
      connections: this.#clients.size,
      requests: this.#requests,
      rejected: this.#rejected,
      blocked: this.#blocked,
      ruleErrors: this.#ruleErrors,
      upstream: { open: this.#pool?.open ?? 0, idle: this.#pool?.idle ?? 0 },
      traceExport: this.#traceExporters.map((e) => e.stats()),
      findingExport: this.#findingExporters.map((e) => e.stats()),
    };
  }

  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    try {
      this.#listener?.close();
    } catch { /* already closed */ }
    await this.#acceptLoop;
    for (const c of this.#clients) c.close();
    this.#pool?.close();
    await Promise.allSettled([...this.#tasks]);
    this.#sweeper?.stop();
    await Promise.all([
      ...this.#traceExporters.map((e) => e.close(2000)),
      ...this.#findingExporters.map((e) => e.close(2000)),
    ]);
  }

  // ---- client side -------------------------------------------------------------------------

  async #serveClient(conn: Deno.TcpConn): Promise<void> {
    const L = this.#cfg.limits;
    const bc = new BufferedConn(conn, 16384, L.maxHeaderBytes + 16384, true);
    const sweeper = this.#sweeper!;
    try {
      conn.setNoDelay(true);
    } catch { /* not fatal */ }
    const cc = new ClientConn(bc, (conn.remoteAddr as Deno.NetAddr).hostname);
    this.#clients.add(bc);
    sweeper.add(bc);
    bc.deadline = this.#sweeper!.now + L.headerTimeoutMs;
    try {
      let first = true;
      // Each exchange runs in this loop rather than in a call of its own: one async frame per
      // connection, not one per request.
      while (!this.#closing && !bc.closed) {
        if (!first) {
          bc.deadline = sweeper.now + (bc.buffered > 0 ? L.headerTimeoutMs : L.idleTimeoutMs);
        }
        first = false;
        bc.mark = 0;
        let headEnd: number;
        try {
          headEnd = this.#headBegin(bc, this.#headLimits, true);
          while (headEnd === MORE) {
            let n: number | null = null;
            if (!bc.closed) {
              try {
                n = await bc.readRaw(bc.space());
              } catch (err) {
                if (!bc.closed) throw err;
              }
            }
            headEnd = this.#headMore(bc, this.#headLimits, true, n);
          }
        } catch (err) {
          await this.#headFailed(cc, err);
          break;
        }
        if (headEnd === -1) break;
        this.#requests++;
        const ex = this.#newExchange(cc, bc.mark || this.#stamp());
        let head: RequestHead;
        try {
          head = parseRequestHead(bc.buf, bc.start, headEnd, this.#headLimits, bc.headFields);
        } catch (err) {
          if (!(err instanceof Rejection)) throw err;
          this.#partialRequestLine(ex, bc);
          this.#sampleNew(ex);
          await this.#reject(bc, ex, err, false);
          this.#finishSpan(ex);
          break;
        }
        bc.start = headEnd;
        bc.deadline = 0;
        ex.method = head.method;
        ex.target = head.target;
        ex.protocol = head.protocol;
        ex.headers = head.headers;
        ex.host = head.host;
        let keep = false;
        try {
          keep = await this.#handle(bc, ex, head);
        } catch (err) {
          if (err instanceof Rejection) await this.#reject(bc, ex, err, false);
          else {
            ex.decision = "error";
            ex.error = (err as Error)?.message ?? String(err);
            if (!(err instanceof ClientGone)) this.#onError(err);
          }
        } finally {
          this.#finishSpan(ex);
        }
        if (!keep) break;
      }
    } finally {
      bc.close();
      sweeper.delete(bc);
      this.#clients.delete(bc);
    }
  }

  /**
   * Starts reading a head: looks for a complete one in what is buffered. Returns the index just
   * past the blank line, or {@linkcode MORE} when bytes are needed: the caller reads into
   * `bc.space()` and passes the count to {@linkcode ProxyServer.#headMore}. The read is the
   * caller's so that no async frame is made per head. For a client head (`client`), the first
   * byte sets the start time (`bc.mark`) and the header deadline.
   */
  #headBegin(bc: BufferedConn, limits: HeadLimits, client: boolean): number {
    bc.headScanned = 0;
    bc.headSeen = bc.buffered > 0;
    if (bc.headSeen && client) this.#headStarted(bc);
    return this.#headScan(bc, limits, client);
  }

  /**
   * Continues reading a head after a read of `n` bytes (0 or null: end of stream, or the
   * connection was closed while reading). Returns as {@linkcode ProxyServer.#headBegin}, or -1 when the
   * stream ended cleanly before any byte of a new message.
   */
  #headMore(bc: BufferedConn, limits: HeadLimits, client: boolean, n: number | null): number {
    if (n === null || n === 0) {
      if (bc.buffered === 0 && !bc.headSeen) return -1;
      const r = new Rejection(
        400,
        "proxy-incomplete-head",
        "connection closed inside a message head",
      );
      throw client ? r : malformedBackend(r);
    }
    bc.commit(n);
    if (!bc.headSeen) {
      bc.headSeen = true;
      if (client) this.#headStarted(bc);
    }
    return this.#headScan(bc, limits, client);
  }

  #headScan(bc: BufferedConn, limits: HeadLimits, client: boolean): number {
    let end: number;
    try {
      end = scanHead(bc, limits, bc.headScanned);
    } catch (err) {
      throw client ? err : malformedBackend(err as Error);
    }
    if (end >= 0) return end;
    bc.headScanned = Math.max(0, bc.buffered - 3);
    return MORE;
  }

  /** The first byte of a client head arrived: start time and header deadline. */
  #headStarted(bc: BufferedConn): void {
    bc.mark = this.#stamp();
    bc.deadline = bc.mark + this.#cfg.limits.headerTimeoutMs;
  }

  /** Precise time when spans are recorded, the sweeper's coarse time otherwise. */
  #stamp(): number {
    return this.#cfg.tracing.enabled ? this.#now() : this.#sweeper!.now;
  }

  #newExchange(cc: ClientConn, start: number): Exchange {
    return {
      conn: cc,
      start,
      peer: cc.peer,
      client: cc.peer,
      method: "-",
      target: "-",
      protocol: "-",
      headers: [],
      host: undefined,
      idsSet: false,
      traceId: undefined,
      spanId: undefined,
      parent: undefined,
      sampled: false,
      status: 0,
      requestBytes: 0,
      responseBytes: 0,
      upstreamMs: undefined,
      decision: "allowed",
      error: undefined,
      ruleIds: NO_IDS,
      findingIds: NO_IDS,
      redaction: undefined,
      responseChecks: NO_CHECKS,
    };
  }

  /** Reading a client head failed: records a header timeout or answers a malformed head. */
  async #headFailed(cc: ClientConn, err: unknown): Promise<void> {
    const L = this.#cfg.limits;
    const bc = cc.bc;
    const ex = this.#newExchange(cc, bc.mark || this.#stamp());
    if (bc.expired) {
      // Slowloris: the head did not arrive within the header timeout.
      this.#sampleNew(ex);
      ex.decision = "rejected";
      ex.error = "header timeout";
      this.#rejected++;
      this.#finding(ex, {
        category: "protocol",
        severity: "warning",
        ruleId: "proxy-header-timeout",
        message: `request head not received within ${L.headerTimeoutMs} ms; connection closed`,
        engine: "proxy",
        action: "blocked",
      });
      this.#finishSpan(ex);
      return;
    }
    if (err instanceof Rejection) {
      this.#partialRequestLine(ex, bc);
      this.#sampleNew(ex);
      await this.#reject(bc, ex, err, false);
      this.#finishSpan(ex);
    }
  }

  /** Fills method and target from the first buffered line, for findings on unparsable heads. */
  #partialRequestLine(ex: Exchange, bc: BufferedConn): void {
    const view = bc.buf.subarray(bc.start, Math.min(bc.end, bc.start + 512));
    let end = view.indexOf(13);
    if (end === -1) end = view.length;
    let line = "";
    for (let i = 0; i < end; i++) line += String.fromCharCode(view[i]);
    const parts = line.split(" ");
    if (parts.length >= 2) {
      ex.method = parts[0].slice(0, 32);
      ex.target = parts[1].slice(0, 256);
      if (parts[2]) ex.protocol = parts[2].slice(0, 16);
    }
  }

  #sampleNew(ex: Exchange): void {
    if (this.#cfg.tracing.enabled) {
      ex.sampled = shouldSample(undefined, this.#samplingNew, this.#ids);
    }
  }

  #ensureIds(ex: Exchange): void {
    if (ex.idsSet) return;
    const ids = ex.conn.ids;
    if (ex.parent !== undefined) {
      hexInto(ids, 0, ex.parent.traceId);
      hexInto(ids, 24, ex.parent.parentId);
    } else this.#ids.fillId(ids, 0, 16);
    this.#ids.fillId(ids, 16, 8);
    ex.idsSet = true;
  }

  /** The trace id as hex (ids must be set). */
  #traceId(ex: Exchange): string {
    return ex.traceId ??= hexOf(ex.conn.ids, 0, 16);
  }

  /** The span id as hex (ids must be set). */
  #spanId(ex: Exchange): string {
    return ex.spanId ??= hexOf(ex.conn.ids, 16, 24);
  }

  /**
   * Checks a request and forwards it. Not async: the usual request (no rule engine, no body to
   * read first) costs no frame of its own; a refusal throws synchronously, which the caller's
   * `try` catches as it would a rejection.
   */
  #handle(bc: BufferedConn, ex: Exchange, head: RequestHead): Promise<boolean> {
    const cfg = this.#cfg;
    const tracing = cfg.tracing;
    const headers = head.headers;
    const kinds = head.kinds;
    let traceparent: string | undefined;
    for (let i = 0; i < kinds.length; i++) {
      if (kinds[i] === F_TRACEPARENT) {
        traceparent = traceparent === undefined ? headers[i][1] : "";
      }
    }
    if (tracing.enabled || tracing.propagate) {
      ex.parent = traceparent ? parseTraceParent(traceparent) : undefined;
      if (tracing.enabled) {
        ex.sampled = shouldSample(ex.parent, this.#sampling, this.#ids);
        this.#ensureIds(ex);
      }
    }

    // --- protocol checks (always enforced) ---
    if (head.hostCount > 1) {
      throw new Rejection(400, "proxy-host-multiple", "more than one Host header");
    }
    if (head.minor === 1 && head.hostCount === 0) {
      throw new Rejection(400, "proxy-host-missing", "HTTP/1.1 request without Host");
    }
    if (head.host !== undefined && !HOST_VALUE.test(head.host)) {
      throw new Rejection(400, "proxy-host-invalid", "invalid Host header");
    }
    let target = head.target;
    let absoluteHost: string | undefined;
    if (target.charCodeAt(0) !== 47 /* "/" */) {
      if (head.method === "CONNECT") {
        throw new Rejection(405, "proxy-connect", "CONNECT is not supported by a reverse proxy");
      }
      if (target === "*" && head.method === "OPTIONS") {
        // asterisk-form, forwarded as is
      } else {
        const m = /^(https?):\/\/([^\/?#]*)([^#]*)$/i.exec(target);
        if (!m) throw new Rejection(400, "proxy-bad-target", "unsupported request-target form");
        const authority = m[2].toLowerCase();
        if (authority === "" || authority.includes("@") || !HOST_VALUE.test(authority)) {
          throw new Rejection(400, "proxy-bad-target", "invalid authority in absolute-form target");
        }
        if (!this.#hostAllowed(authority, m[1].toLowerCase())) {
          throw new Rejection(
            400,
            "proxy-absolute-form-foreign",
            `absolute-form target for a host this proxy does not serve: ${authority}`,
          );
        }
        const rest = m[3];
        target = rest === "" ? "/" : rest.charCodeAt(0) === 47 ? rest : "/" + rest;
        absoluteHost = m[2];
        ex.host = absoluteHost;
      }
    }
    ex.target = target;

    // --- client address, access, rate ---
    const trustedPeer = this.#trusted.size > 0 && this.#trusted.has(ex.peer);
    ex.client = trustedPeer ? resolveClient(ex.peer, headers, this.#trusted) : ex.peer;
    const blockMode = cfg.mode === "block";
    if (this.#deny.has(ex.client) || (this.#allow.size > 0 && !this.#allow.has(ex.client))) {
      const denied = this.#deny.has(ex.client);
      const ruleId = denied ? "proxy-ip-deny" : "proxy-ip-not-allowed";
      const message = denied
        ? "client address is on the deny list"
        : "client address is not on the allow list";
      if (blockMode) {
        throw new Rejection(403, ruleId, message, "access");
      }
      this.#finding(ex, {
        category: "access",
        severity: "warning",
        ruleId,
        message,
        engine: "access",
        action: "detected",
      });
    }
    if (this.#limiter) {
      const d = this.#limiter.take(ex.client);
      if (!d.allowed) {
        if (blockMode) return this.#rateLimited(bc, ex, head, d.retryAfter);
        this.#finding(ex, {
          category: "rate_limit",
          severity: "warning",
          ruleId: "proxy-rate-limit",
          message: "rate limit exceeded",
          engine: "rate_limit",
          action: "detected",
        });
      }
    }

    // --- body framing and size ---
    const maxBody = cfg.limits.maxBodyBytes;
    if (maxBody > 0 && head.contentLength > maxBody) throw tooLarge();
    let body: ClientBody | null = null;
    if (head.chunked || head.contentLength > 0) body = this.#clientBody(bc, head);

    // --- rules, and a small body read before sending ---
    if (
      this.#engines.length > 0 ||
      (body !== null && !head.chunked && !head.expectContinue &&
        head.contentLength <= bc.buffered)
    ) return this.#handleBody(bc, ex, head, target, absoluteHost, trustedPeer, body);
    return this.#sendRequest(
      bc,
      ex,
      head,
      target,
      absoluteHost,
      trustedPeer,
      undefined,
      body,
      body,
    );
  }

  /** Answers a rate-limited request (block mode). */
  async #rateLimited(
    bc: BufferedConn,
    ex: Exchange,
    head: RequestHead,
    retryAfter: number,
  ): Promise<boolean> {
    const r = new Rejection(429, "proxy-rate-limit", "rate limit exceeded", "rate_limit");
    await this.#reject(bc, ex, r, !head.chunked && head.contentLength <= 0, [[
      "Retry-After",
      String(retryAfter),
    ]]);
    return !head.chunked && head.contentLength <= 0 && !this.#clientWantsClose(head);
  }

  /** Runs the rule engines and reads a small buffered body before the request is sent. */
  async #handleBody(
    bc: BufferedConn,
    ex: Exchange,
    head: RequestHead,
    target: string,
    absoluteHost: string | undefined,
    trustedPeer: boolean,
    body: ClientBody | null,
  ): Promise<boolean> {
    const headers = head.headers;
    let source: BodySource | null = body;
    let fixed: Uint8Array | undefined;
    if (this.#engines.length > 0) {
      const rr: RuleRequest = {
        method: head.method,
        target,
        protocol: head.protocol,
        headers,
        remoteAddr: ex.client,
      };
      if (body && this.#inspectBytes > 0) {
        const prefix: Uint8Array[] = [];
        let have = 0;
        while (have < this.#inspectBytes) {
          const c = await body.read();
          if (c === null) break;
          prefix.push(c.slice());
          have += c.length;
        }
        const all = concatBytes(prefix);
        rr.body = all;
        if (body.done) fixed = all;
        else source = new BufferedThenStream(prefix, body);
      }
      const blockStatus = await this.#runRules(ex, rr);
      if (blockStatus !== undefined) {
        this.#blocked++;
        ex.decision = "blocked";
        const bodyPending = body !== null && !body.done;
        const keep = !bodyPending && !this.#clientWantsClose(head);
        await this.#sendSimple(bc, ex, blockStatus, keep);
        return keep;
      }
    }

    // A small body already buffered is sent with the head and can be retried.
    if (
      body && source === body && fixed === undefined && !head.chunked && !head.expectContinue &&
      head.contentLength <= bc.buffered
    ) {
      const c = await body.read();
      fixed = c ? c.slice() : new Uint8Array(0);
      await body.read();
    }
    return await this.#sendRequest(
      bc,
      ex,
      head,
      target,
      absoluteHost,
      trustedPeer,
      fixed,
      source,
      body,
    );
  }

  /** Writes the upstream request head (as bytes) and forwards the request. */
  #sendRequest(
    bc: BufferedConn,
    ex: Exchange,
    head: RequestHead,
    target: string,
    absoluteHost: string | undefined,
    trustedPeer: boolean,
    fixed: Uint8Array | undefined,
    source: BodySource | null,
    body: ClientBody | null,
  ): Promise<boolean> {
    const cfg = this.#cfg;
    const tracing = cfg.tracing;
    const headers = head.headers;
    const kinds = head.kinds;
    if (fixed !== undefined) {
      source = null;
      ex.requestBytes = fixed.length;
    }

    // --- upstream request head, written as bytes ---
    const connTokens = head.connection;
    const upgrade = head.upgrade !== undefined && head.minor === 1 &&
        connTokens.includes("upgrade")
      ? head.upgrade
      : undefined;
    const cc = ex.conn;
    const w = cc.reqOut;
    w.reset();
    w.str(head.method);
    w.bytes(SPACE);
    w.str(target);
    w.bytes(REQUEST_LINE_END);
    let sawHost = false;
    for (let i = 0; i < headers.length; i++) {
      const k = kinds[i];
      if (HOP_KIND[k] === 1) continue;
      const name = headers[i][0];
      if (connTokens.length > 0 && connTokens.includes(name.toLowerCase())) continue;
      if (k === F_HOST) {
        sawHost = true;
        w.str(name);
        w.bytes(COLON_SP);
        w.str(absoluteHost !== undefined ? absoluteHost : headers[i][1]);
        w.bytes(CRLF);
        continue;
      }
      if (k === F_FORWARDING && cfg.forwardedHeaders) continue;
      if (k === F_EXPECT) continue;
      if (k === F_TRACEPARENT && tracing.propagate) continue;
      if (k === F_CONTENT_LENGTH && fixed !== undefined && head.chunked) continue;
      w.str(name);
      w.bytes(COLON_SP);
      w.str(headers[i][1]);
      w.bytes(CRLF);
    }
    if (!sawHost) w.str(`Host: ${absoluteHost ?? this.#backend.authority}\r\n`);
    if (cfg.forwardedHeaders) {
      if (trustedPeer) {
        for (
          const [n, v] of forwardingHeaders(headers, {
            peer: ex.peer,
            trustedPeer,
            scheme: "http",
            host: ex.host,
          })
        ) w.str(`${n}: ${v}\r\n`);
      } else {
        // Untrusted peer: the lines depend only on the peer and the host; cache them.
        if (cc.fwdBytes === undefined || cc.fwdHost !== ex.host) {
          let f = "";
          for (
            const [n, v] of forwardingHeaders([], {
              peer: ex.peer,
              trustedPeer: false,
              scheme: "http",
              host: ex.host,
            })
          ) f += `${n}: ${v}\r\n`;
          cc.fwdHost = ex.host;
          cc.fwdBytes = latin1Encode(f);
        }
        w.bytes(cc.fwdBytes);
      }
    }
    if (tracing.propagate) {
      if (tracing.enabled) {
        const ids = cc.ids;
        w.bytes(TRACEPARENT_00);
        w.hex(ids, 0, 16);
        w.bytes(DASH);
        w.hex(ids, 16, 24);
        w.bytes(ex.sampled ? SAMPLED_END : UNSAMPLED_END);
      } else if (ex.parent) {
        w.str(
          `traceparent: ${
            formatTraceParent(ex.parent.traceId, ex.parent.parentId, ex.parent.sampled)
          }\r\n`,
        );
      }
    }
    if (upgrade !== undefined) w.str(`Connection: upgrade\r\nUpgrade: ${upgrade}\r\n`);
    if (fixed !== undefined && head.chunked) w.str(`Content-Length: ${fixed.length}\r\n`);
    else if (head.chunked) w.bytes(TE_CHUNKED);
    w.bytes(CRLF);
    if (fixed !== undefined && fixed.length <= COALESCE_BYTES) {
      w.bytes(fixed);
      fixed = undefined;
    }
    return this.#forward(
      bc,
      ex,
      head,
      w.view(),
      fixed,
      source,
      body,
      head.chunked,
      upgrade !== undefined,
    );
  }

  /** The request body as a stream with 100-continue, deadline refresh and size limit. */
  #clientBody(bc: BufferedConn, head: RequestHead): ClientBody {
    const cfg = this.#cfg;
    const touch = (): void => {
      bc.deadline = this.#sweeper!.now + cfg.limits.bodyTimeoutMs;
    };
    const inner = head.chunked
      ? new ChunkedBody(bc, (m) => new Rejection(400, "proxy-bad-chunk", m))
      : new LengthBody(
        bc,
        head.contentLength,
        () => new ClientGone("client closed inside the body"),
      );
    const onFirst = head.expectContinue && head.minor === 1 ? () => bc.write(CONTINUE) : undefined;
    return new ClientBody(inner, cfg.limits.maxBodyBytes, touch, onFirst);
  }

  #hostAllowed(authority: string, scheme: string): boolean {
    if (this.#absoluteHosts.has(authority)) return true;
    const colon = authority.lastIndexOf(":");
    const hasPort = colon !== -1 && !authority.endsWith("]");
    const host = hasPort ? authority.slice(0, colon) : authority;
    if (this.#absoluteHosts.has(host)) return true;
    if (!hasPort) {
      return this.#absoluteHosts.has(`${host}:${scheme === "https" ? 443 : 80}`);
    }
    return false;
  }

  #clientWantsClose(head: RequestHead): boolean {
    return head.connection.includes("close") ||
      (head.minor === 0 && !head.connection.includes("keep-alive"));
  }

  /** Runs every engine; returns the block status when a verdict blocks (block mode). */
  async #runRules(ex: Exchange, rr: RuleRequest): Promise<number | undefined> {
    let blockStatus: number | undefined;
    const noBody: RuleRequest | undefined = rr.body ? { ...rr, body: undefined } : undefined;
    for (const engine of this.#engines) {
      let verdict: RuleVerdict;
      try {
        let req = rr;
        if (!engine.inspectsBody && noBody) req = noBody;
        else if (
          rr.body && engine.maxBodyBytes !== undefined && rr.body.length > engine.maxBodyBytes
        ) {
          req = { ...rr, body: rr.body.subarray(0, engine.maxBodyBytes) };
        }
        const v = engine.evaluate(req);
        verdict = checkedVerdict(v instanceof Promise ? await v : v);
      } catch (err) {
        // Fail open: a broken engine must not take the site down; it is counted and reported.
        this.#ruleErrors++;
        this.#onError(err);
        continue;
      }
      if (verdict.response !== undefined) {
        if (ex.responseChecks === NO_CHECKS) ex.responseChecks = [];
        ex.responseChecks.push({ engine, check: verdict.response });
      }
      const status = this.#applyVerdict(ex, engine, verdict);
      if (status !== undefined && blockStatus === undefined) blockStatus = status;
    }
    return blockStatus;
  }

  /**
   * Runs the response checks of the request's engines (each sees the body when its
   * `responseBody` covers the media type). Returns the status to answer with instead of the
   * response when one blocks. Like request checks they fail open: a check that throws or gives
   * no verdict is counted in `ruleErrors` and the response passes.
   */
  async #runResponseRules(
    ex: Exchange,
    res: RuleResponse,
    mediaType: string,
  ): Promise<number | undefined> {
    let blockStatus: number | undefined;
    const checks = ex.responseChecks;
    ex.responseChecks = NO_CHECKS;
    for (const { engine, check } of checks) {
      let verdict: RuleVerdict;
      try {
        const access = engine.responseBody;
        const body = res.body === undefined || access === undefined ||
            !access.mediaTypes.includes(mediaType)
          ? undefined
          : res.body.length > access.maxBytes
          ? res.body.subarray(0, access.maxBytes)
          : res.body;
        const v = check(body === res.body ? res : { ...res, body });
        verdict = checkedVerdict(v instanceof Promise ? await v : v);
      } catch (err) {
        this.#ruleErrors++;
        this.#onError(err);
        continue;
      }
      const status = this.#applyVerdict(ex, engine, verdict);
      if (status !== undefined && blockStatus === undefined) blockStatus = status;
    }
    return blockStatus;
  }

  /** Records a verdict's matches as findings; returns the status when it blocks. */
  #applyVerdict(ex: Exchange, engine: RuleEngine, verdict: RuleVerdict): number | undefined {
    if (verdict.matches.length === 0 && verdict.action !== "block") return undefined;
    const blocking = verdict.action === "block" && this.#cfg.mode === "block";
    const status = verdict.status ?? 403;
    let n = 0;
    for (const m of verdict.matches) {
      if (ex.ruleIds === NO_IDS) ex.ruleIds = [];
      ex.ruleIds.push(m.ruleId);
      if (n++ < 16) this.#ruleFinding(ex, engine.name, m, blocking, status, verdict.score);
    }
    if (ex.decision === "allowed") ex.decision = "detected";
    return blocking ? status : undefined;
  }

  #ruleFinding(
    ex: Exchange,
    engine: string,
    m: RuleMatch,
    blocking: boolean,
    status: number,
    score: number | undefined,
  ): void {
    this.#finding(ex, {
      category: m.category,
      severity: m.severity,
      ruleId: m.ruleId,
      message: m.message,
      engine,
      action: blocking ? "blocked" : "detected",
      status: blocking ? status : undefined,
      matched: m.matched,
      score,
    });
  }

  #finding(
    ex: Exchange,
    f: {
      category: string;
      severity: Finding["severity"];
      ruleId: string;
      message: string;
      engine: string;
      action: Finding["action"];
      status?: number;
      matched?: string;
      score?: number;
    },
  ): void {
    this.#ensureIds(ex);
    const red = ex.redaction ??= summarizeRequest({
      method: ex.method,
      target: ex.target,
      protocol: ex.protocol,
      headers: ex.headers,
      client: ex.client,
      host: ex.host,
    });
    const finding: Finding = {
      id: this.#ids.findingId(),
      time: this.#now(),
      category: f.category,
      severity: f.severity,
      ruleId: f.ruleId,
      message: scrub(f.message, red.secrets).slice(0, 500),
      engine: f.engine,
      action: f.action,
      traceId: this.#traceId(ex),
      spanId: this.#spanId(ex),
      request: red.summary,
    };
    if (f.status !== undefined) finding.status = f.status;
    if (f.matched !== undefined) finding.matched = scrub(f.matched, red.secrets).slice(0, 300);
    if (f.score !== undefined) finding.score = f.score;
    if (ex.findingIds === NO_IDS) ex.findingIds = [];
    ex.findingIds.push(finding.id);
    this.findings.add(finding);
    for (const e of this.#findingExporters) e.offer(finding);
  }

  /** Answers a refused request, records the finding and marks the span. */
  async #reject(
    bc: BufferedConn,
    ex: Exchange,
    r: Rejection,
    keepAlive: boolean,
    extra: [string, string][] = [],
  ): Promise<void> {
    ex.decision = r.category === "protocol" ? "rejected" : "blocked";
    ex.error = r.message;
    if (r.category === "protocol") this.#rejected++;
    else this.#blocked++;
    this.#finding(ex, {
      category: r.category,
      severity: r.category === "protocol" ? (r.status >= 500 ? "notice" : "warning") : "warning",
      ruleId: r.ruleId,
      message: r.message,
      engine: r.category === "protocol" ? "proxy" : r.category,
      action: "blocked",
      status: r.status,
    });
    await this.#sendSimple(bc, ex, r.status, keepAlive, extra);
  }

  /** Sends a small text response generated by the proxy. */
  async #sendSimple(
    bc: BufferedConn,
    ex: Exchange,
    status: number,
    keepAlive: boolean,
    extra: [string, string][] = [],
  ): Promise<void> {
    ex.status = status;
    const reason = REASONS[status] ?? "Error";
    let text = `${status} ${reason}\n`;
    if (ex.idsSet) text += `trace id: ${this.#traceId(ex)}\n`;
    const payload = utf8Encode(text);
    let s = `HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${payload.length}\r\n`;
    for (const [n, v] of extra) s += `${n}: ${v}\r\n`;
    if (this.#cfg.debugHeaders) s += `x-infraveil-rules: ${ex.ruleIds.join(",")}\r\n`;
    s += keepAlive
      ? (ex.protocol === "HTTP/1.0" ? "Connection: keep-alive\r\n" : "")
      : "Connection: close\r\n";
    s += "\r\n";
    const head = latin1Encode(s);
    const out = new Uint8Array(head.length + (ex.method === "HEAD" ? 0 : payload.length));
    out.set(head, 0);
    if (ex.method !== "HEAD") out.set(payload, head.length);
    bc.deadline = this.#sweeper!.now + this.#cfg.limits.idleTimeoutMs;
    try {
      await bc.write(out);
      ex.responseBytes = ex.method === "HEAD" ? 0 : payload.length;
    } catch {
      // client gone
    }
  }

  // ---- upstream side -----------------------------------------------------------------------

  async #forward(
    bc: BufferedConn,
    ex: Exchange,
    head: RequestHead,
    reqHead: Uint8Array,
    fixed: Uint8Array | undefined,
    source: BodySource | null,
    body: ClientBody | null,
    chunked: boolean,
    upgrade: boolean,
  ): Promise<boolean> {
    const pool = this.#pool!;
    const U = this.#cfg.upstream;
    const sweeper = this.#sweeper!;
    let up: BufferedConn | undefined;
    // Streams the request body while the response is awaited (a separate object, so that this
    // function keeps no closure context per request).
    let sender: BodySender | undefined;
    let res: ResponseHead | undefined;
    let tSend = 0;
    for (let attempt = 0; res === undefined; attempt++) {
      up = pool.takeIdle();
      const reused = up !== undefined;
      if (up === undefined) {
        try {
          up = await pool.connect();
        } catch (err) {
          const timedOut = err instanceof ConnectFailure && err.timedOut;
          return await this.#upstreamFailed(
            bc,
            ex,
            head,
            body,
            timedOut ? 504 : 502,
            (err as Error).message,
          );
        }
      }
      const readBefore = up.bytesRead;
      tSend = this.#stamp();
      up.deadline = sweeper.now + U.responseTimeoutMs;
      // Retry once on a reused connection the backend had closed, when nothing is lost.
      const retryable = reused && source === null && attempt === 0;
      try {
        // The socket write inline (no wrapper frame or closure); rarely partial.
        up.bytesWritten += reqHead.length;
        const n = await up.conn.write(reqHead);
        if (n < reqHead.length) await up.writeRest(reqHead.subarray(n));
        if (fixed !== undefined) await up.write(fixed);
      } catch (err) {
        pool.discard(up);
        if (retryable) continue;
        return await this.#upstreamFailed(
          bc,
          ex,
          head,
          body,
          502,
          `write to backend failed: ${(err as Error).message}`,
        );
      }
      if (source !== null) {
        sender = new BodySender();
        sender.promise = this.#sendBody(sender, source, up, ex, chunked);
      }
      try {
        // Inline like the write above (the rare 1xx loop below repeats it): no async frame.
        let end = this.#headBegin(up, this.#upstreamHeadLimits, false);
        while (end === MORE) {
          let n: number | null = null;
          if (!up.closed) {
            try {
              n = await up.readRaw(up.space());
            } catch (err) {
              if (!up.closed) throw err;
            }
          }
          end = this.#headMore(up, this.#upstreamHeadLimits, false, n);
        }
        res = this.#responseHeadAt(up, end);
      } catch (err) {
        const expired = up.expired;
        pool.discard(up);
        if (sender !== undefined) await sender.promise;
        if (sender !== undefined && sender.error !== undefined) {
          if (sender.error instanceof Rejection) {
            await this.#reject(bc, ex, sender.error, false);
            return false;
          }
          throw sender.error;
        }
        if (!expired && retryable && up.bytesRead === readBefore) continue;
        return await this.#upstreamFailed(
          bc,
          ex,
          head,
          body,
          expired ? 504 : 502,
          expired ? "backend response timed out" : (err as Error).message,
        );
      }
    }
    up = up!;
    ex.upstreamMs = this.#stamp() - tSend;

    // 1xx interim responses: 100 is ours to send (we answered Expect), others pass to 1.1 clients.
    while (res.status < 200 && res.status !== 101) {
      if (res.status !== 100 && head.minor === 1) {
        try {
          const w = ex.conn.resOut;
          w.reset();
          this.#writeResponseHead(w, res, undefined, "none", true, head);
          await bc.write(w.view());
        } catch {
          pool.discard(up);
          throw new ClientGone("client closed");
        }
      }
      try {
        let end = this.#headBegin(up, this.#upstreamHeadLimits, false);
        while (end === MORE) {
          let n: number | null = null;
          if (!up.closed) {
            try {
              n = await up.readRaw(up.space());
            } catch (err) {
              if (!up.closed) throw err;
            }
          }
          end = this.#headMore(up, this.#upstreamHeadLimits, false, n);
        }
        res = this.#responseHeadAt(up, end);
      } catch (err) {
        const why = (err as Error).message;
        return await this.#upstreamLost(bc, ex, head, body, up, why, why);
      }
    }

    if (res.status === 101) {
      if (!upgrade) {
        pool.discard(up);
        return await this.#upstreamFailed(
          bc,
          ex,
          head,
          body,
          502,
          "backend switched protocols unasked",
        );
      }
      await this.#splice(bc, up, ex, res, head);
      return false;
    }

    const noBody = head.method === "HEAD" || res.status === 204 || res.status === 304;
    // Engines that inspect responses see this one before any of it leaves: its head, and the
    // first bytes of a body of a media type they read, which are then sent on from memory.
    let inspected: BodySource | null | undefined;
    let inspectedWhole: Uint8Array | undefined;
    if (ex.responseChecks !== NO_CHECKS) {
      // Reading the body reuses the connection's buffer: the head must be a copy.
      const copy = up.buf.slice(up.start - res.headBytes, up.start);
      res = parseResponseHead(copy, 0, copy.length);
      const headers = res.headers;
      const ct = headers.find(([n]) => n.toLowerCase() === "content-type")?.[1] ?? "";
      const mediaType = ct.split(";")[0].trim().toLowerCase();
      let limit = 0;
      for (const { engine } of ex.responseChecks) {
        const a = engine.responseBody;
        if (a !== undefined && a.mediaTypes.includes(mediaType)) {
          limit = Math.max(limit, a.maxBytes);
        }
      }
      let bodyBytes: Uint8Array | undefined;
      if (limit > 0 && !noBody) {
        const rest: BodySource = res.chunked
          ? new ChunkedBody(up, backendError)
          : res.contentLength >= 0
          ? new LengthBody(up, res.contentLength, backendClosedInBody)
          : new CloseBody(up);
        const prefix: Uint8Array[] = [];
        let have = 0;
        let whole = false;
        while (have < limit) {
          up.deadline = sweeper.now + U.responseTimeoutMs;
          let c: Uint8Array | null;
          try {
            c = await rest.read();
          } catch {
            const why = "backend closed inside the body";
            return await this.#upstreamLost(bc, ex, head, body, up, why, "backend body timed out");
          }
          if (c === null) {
            whole = true;
            break;
          }
          prefix.push(c.slice());
          have += c.length;
        }
        bodyBytes = concatBytes(prefix);
        inspected = new BufferedThenStream(prefix, whole ? null : rest);
        if (whole) inspectedWhole = bodyBytes;
      }
      const blockStatus = await this.#runResponseRules(ex, {
        status: res.status,
        protocol: `HTTP/1.${res.minor}`,
        headers,
        body: bodyBytes,
      }, mediaType);
      if (blockStatus !== undefined) {
        pool.discard(up);
        this.#blocked++;
        ex.decision = "blocked";
        const sent = sender === undefined || sender.done;
        const keep = sent && (body === null || body.done) && !this.#clientWantsClose(head) &&
          !this.#closing;
        await this.#sendSimple(bc, ex, blockStatus, keep);
        if (sender !== undefined) {
          // A request body still coming cannot be skipped: the connection ends with it.
          if (!sent) bc.close();
          await sender.promise;
        }
        return keep;
      }
    }
    // How the body reaches the client: "length" as received, or re-framed as chunked, or
    // delimited by closing the connection (HTTP/1.0 clients).
    const framing: "none" | "length" | "chunked" | "close" = noBody
      ? "none"
      : !res.chunked && res.contentLength >= 0
      ? "length"
      : head.minor === 1
      ? "chunked"
      : "close";
    let upReusable = res.minor === 1 && !res.connection.includes("close") &&
      (noBody || res.chunked || res.contentLength >= 0);
    const sendDone = sender === undefined || sender.done;
    const requestDone = body === null || body.done || sendDone;
    const keepClient = !this.#clientWantsClose(head) && framing !== "close" && requestDone &&
      !this.#closing;
    ex.status = res.status;
    const w = ex.conn.resOut;
    w.reset();
    this.#writeResponseHead(w, res, ex, framing, keepClient, head);

    let ok = true;
    try {
      // An inspected body read whole and small leaves with the head, like a buffered one.
      const whole = inspectedWhole !== undefined && framing === "length" &&
        inspectedWhole.length <= COALESCE_BYTES;
      if (
        whole ||
        (inspected === undefined && framing === "length" && up.buffered >= res.contentLength)
      ) {
        // Whole response buffered: head and body in one write.
        const n = whole ? inspectedWhole!.length : res.contentLength;
        if (n <= COALESCE_BYTES) {
          if (whole) w.bytes(inspectedWhole!);
          else {
            w.range(up.buf, up.start, up.start + n);
            up.start += n;
          }
          bc.deadline = sweeper.now + this.#cfg.limits.idleTimeoutMs;
          const out = w.view();
          bc.bytesWritten += out.length;
          const wrote = await bc.conn.write(out);
          if (wrote < out.length) await bc.writeRest(out.subarray(wrote));
        } else {
          bc.deadline = sweeper.now + this.#cfg.limits.idleTimeoutMs;
          await bc.write(w.view());
          await bc.write(up.take(n));
        }
        ex.responseBytes = n;
      } else {
        // The body source is made only here: a response buffered whole needs none.
        const src: BodySource | null = inspected !== undefined
          ? inspected
          : noBody
          ? null
          : res.chunked
          ? new ChunkedBody(up, backendError)
          : res.contentLength >= 0
          ? new LengthBody(up, res.contentLength, backendClosedInBody)
          : new CloseBody(up);
        if (
          inspected === undefined && framing === "length" && up.buffered > 0 &&
          up.buffered <= COALESCE_BYTES
        ) {
          // Part of the body is here already: it leaves with the head.
          const c = up.take(up.buffered);
          (src as LengthBody).skip(c.length);
          w.bytes(c);
          ex.responseBytes = c.length;
        }
        bc.deadline = sweeper.now + this.#cfg.limits.idleTimeoutMs;
        await bc.write(w.view());
        if (src !== null) {
          for (;;) {
            up.deadline = sweeper.now + U.responseTimeoutMs;
            let c: Uint8Array | null;
            try {
              c = await src.read();
            } catch {
              ok = false;
              upReusable = false;
              ex.error = up.expired ? "backend body timed out" : "backend closed inside the body";
              break;
            }
            if (c === null) break;
            bc.deadline = sweeper.now + this.#cfg.limits.idleTimeoutMs;
            await bc.write(framing === "chunked" ? encodeChunk(c) : c);
            ex.responseBytes += c.length;
          }
          if (ok && framing === "chunked") await bc.write(LAST_CHUNK);
        }
      }
    } catch {
      // Client went away while we wrote.
      ok = false;
      upReusable = false;
      ex.error ??= "client closed during the response";
    }
    bc.deadline = 0;
    if (sender !== undefined && !sender.done) {
      // Response complete before the request body: the backend did not want the rest, and the
      // client connection cannot be reused either (its next request starts after that body).
      up.close();
      bc.close();
      upReusable = false;
    }
    if (sender !== undefined) await sender.promise;
    if (ok && upReusable && (sender === undefined || sender.done)) {
      up.deadline = 0;
      pool.release(up);
    } else pool.discard(up);
    if (!ok) {
      ex.decision = ex.decision === "allowed" ? "error" : ex.decision;
      return false;
    }
    return keepClient && (body === null || body.done);
  }

  /** Copies the request body to the backend; records failures in `state`. */
  async #sendBody(
    state: BodySender,
    source: BodySource,
    target: BufferedConn,
    ex: Exchange,
    chunked: boolean,
  ): Promise<void> {
    const sweeper = this.#sweeper!;
    const timeout = this.#cfg.upstream.responseTimeoutMs;
    try {
      for (;;) {
        let c: Uint8Array | null;
        try {
          c = await source.read();
        } catch (err) {
          state.error = err;
          target.close(); // abort the exchange: the response read fails next
          return;
        }
        if (c === null) break;
        ex.requestBytes += c.length;
        target.deadline = sweeper.now + timeout;
        await target.write(chunked ? encodeChunk(c) : c);
      }
      if (chunked) await target.write(LAST_CHUNK);
      target.deadline = sweeper.now + timeout;
      state.done = true;
    } catch {
      // The backend stopped reading; its response (if any) decides.
    }
  }

  /** Parses the backend's head ending at `end` (from `#headBegin`/`#headMore`); -1 means it
   * closed. */
  #responseHeadAt(up: BufferedConn, end: number): ResponseHead {
    if (end === -1) throw new Error("backend closed the connection without a response");
    const res = parseResponseHead(up.buf, up.start, end, up.headFields);
    up.start = end;
    return res;
  }

  /** Writes the client's response head for `res` (fields passed on as received). */
  #writeResponseHead(
    w: ByteWriter,
    res: ResponseHead,
    ex: Exchange | undefined,
    framing: "none" | "length" | "chunked" | "close",
    keepClient: boolean,
    req: RequestHead,
  ): void {
    const buf = res.buf;
    w.bytes(HTTP11_SP);
    w.decimal(res.status);
    w.bytes(SPACE);
    w.range(buf, res.reasonStart, res.reasonEnd);
    w.bytes(CRLF);
    const f = res.fields;
    const named = res.connection;
    const dropLength = framing !== "length" && framing !== "none";
    // Kept lines are copied in runs, as received (CRLF included).
    let runStart = -1;
    let runEnd = -1;
    for (let i = 0; i < f.length; i += 4) {
      const kind = f[i + 3];
      if (
        HOP_KIND[kind] === 1 || (kind === F_CONTENT_LENGTH && dropLength) ||
        (named.length > 0 && nameListed(buf, f[i], f[i + 1], named))
      ) {
        if (runStart !== -1) w.range(buf, runStart, runEnd);
        runStart = -1;
        continue;
      }
      if (runStart === -1) runStart = f[i];
      runEnd = f[i + 2] + 2;
    }
    if (runStart !== -1) w.range(buf, runStart, runEnd);
    if (ex !== undefined) {
      if (this.#cfg.debugHeaders) w.str(`x-infraveil-rules: ${ex.ruleIds.join(",")}\r\n`);
      if (framing === "chunked") w.bytes(TE_CHUNKED);
      if (!keepClient) w.bytes(CONNECTION_CLOSE);
      else if (req.minor === 0) w.bytes(CONNECTION_KEEP_ALIVE);
    }
    w.bytes(CRLF);
  }

  /** Drops a backend connection that failed or timed out, then answers 502 or 504. */
  #upstreamLost(
    bc: BufferedConn,
    ex: Exchange,
    head: RequestHead,
    body: ClientBody | null,
    up: BufferedConn,
    why: string,
    timedOutWhy: string,
  ): Promise<boolean> {
    const expired = up.expired;
    this.#pool!.discard(up);
    return this.#upstreamFailed(
      bc,
      ex,
      head,
      body,
      expired ? 504 : 502,
      expired ? timedOutWhy : why,
    );
  }

  async #upstreamFailed(
    bc: BufferedConn,
    ex: Exchange,
    head: RequestHead,
    body: ClientBody | null,
    status: 502 | 504,
    why: string,
  ): Promise<boolean> {
    ex.decision = "error";
    ex.error = why;
    const keep = (body === null || body.done) && !this.#clientWantsClose(head);
    await this.#sendSimple(bc, ex, status, keep);
    return keep;
  }

  /** Forwards a 101 and then copies bytes both ways until either side closes. */
  async #splice(
    bc: BufferedConn,
    up: BufferedConn,
    ex: Exchange,
    res: ResponseHead,
    req: RequestHead,
  ): Promise<void> {
    let s = `HTTP/1.1 101 ${res.reason}\r\n`;
    for (const [n, v] of res.headers) {
      const l = n.toLowerCase();
      if (l === "connection" || l === "upgrade" || HOP_BY_HOP.has(l)) continue;
      s += `${n}: ${v}\r\n`;
    }
    const upgradeValue = res.headers.find(([n]) => n.toLowerCase() === "upgrade")?.[1] ??
      req.upgrade ?? "websocket";
    if (this.#cfg.debugHeaders) s += `x-infraveil-rules: ${ex.ruleIds.join(",")}\r\n`;
    s += `Connection: upgrade\r\nUpgrade: ${upgradeValue}\r\n\r\n`;
    ex.status = 101;
    bc.deadline = 0;
    up.deadline = 0;
    try {
      await bc.write(latin1Encode(s));
      if (up.buffered > 0) await bc.write(up.take(Infinity));
      if (bc.buffered > 0) await up.write(bc.take(Infinity));
    } catch {
      this.#pool!.discard(up);
      return;
    }
    const pump = async (from: BufferedConn, to: BufferedConn, count: (n: number) => void) => {
      const buf = new Uint8Array(32 * 1024);
      try {
        for (;;) {
          const n = await from.conn.read(buf);
          if (n === null) break;
          await to.write(buf.subarray(0, n));
          count(n);
        }
      } catch {
        // either side closed
      }
    };
    const a = pump(bc, up, (n) => ex.requestBytes += n);
    const b = pump(up, bc, (n) => ex.responseBytes += n);
    await Promise.race([a, b]);
    bc.close();
    this.#pool!.discard(up);
    await Promise.allSettled([a, b]);
  }

  // ---- tracing -----------------------------------------------------------------------------

  #finishSpan(ex: Exchange): void {
    if (!this.#cfg.tracing.enabled || !ex.sampled) return;
    this.#ensureIds(ex);
    const f = this.#spanFields;
    const q = ex.target.indexOf("?");
    f.ids = ex.conn.ids;
    f.hasParent = ex.parent !== undefined;
    f.method = ex.method;
    f.route = q === -1 ? ex.target : ex.target.slice(0, q);
    f.start = ex.start;
    f.end = this.#now();
    f.status = ex.status;
    f.upstreamMs = ex.upstreamMs ?? NaN;
    f.requestBytes = ex.requestBytes;
    f.responseBytes = ex.responseBytes;
    f.client = ex.client;
    f.host = ex.host;
    f.decision = ex.decision;
    f.ruleIds = ex.ruleIds;
    f.findingIds = ex.findingIds;
    f.error = ex.error;
    const slot = this.traces.record(f);
    if (this.#traceExporters.length > 0) {
      const span = this.traces.get(slot);
      for (const e of this.#traceExporters) e.offer(span);
    }
  }
}
