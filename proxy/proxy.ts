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

import { latin1Encode, utf8Encode } from "./_bytes.ts";
import { BufferedConn, Sweeper } from "./_conn.ts";
import {
  type BodySource,
  ChunkedBody,
  CloseBody,
  encodeChunk,
  LAST_CHUNK,
  LengthBody,
  parseRequestHead,
  parseResponseHead,
  readHead,
  Rejection,
  type RequestHead,
  type ResponseHead,
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
import { FORWARDING, forwardingHeaders, HOP_BY_HOP, resolveClient } from "./forwarding.ts";
import { IpSet } from "./ip.ts";
import { RateLimiter } from "./rate_limit.ts";
import type { RuleEngine, RuleMatch, RuleRequest, RuleVerdict } from "./rule_engine.ts";
import {
  formatTraceParent,
  IdSource,
  parseTraceParent,
  type RandomFill,
  shouldSample,
  type Span,
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

/** Per-request state, becomes the span. */
interface Exchange {
  start: number;
  peer: string;
  client: string;
  method: string;
  target: string;
  protocol: string;
  headers: [string, string][];
  host: string | undefined;
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

/** A body read partly into memory (for rule engines) then streamed. */
class BufferedThenStream implements BodySource {
  readonly #prefix: Uint8Array[];
  readonly #rest: ClientBody;
  constructor(prefix: Uint8Array[], rest: ClientBody) {
    this.#prefix = prefix;
    this.#rest = rest;
  }
  get bytes(): number {
    return this.#rest.bytes;
  }
  read(): Promise<Uint8Array | null> {
    const p = this.#prefix.shift();
    return p ? Promise.resolve(p) : this.#rest.read();
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
    const bc = new BufferedConn(conn, 16384, L.maxHeaderBytes + 16384);
    const sweeper = this.#sweeper!;
    try {
      conn.setNoDelay(true);
    } catch { /* not fatal */ }
    const peer = (conn.remoteAddr as Deno.NetAddr).hostname;
    this.#clients.add(bc);
    sweeper.add(bc);
    bc.deadline = this.#sweeper!.now + L.headerTimeoutMs;
    try {
      let first = true;
      while (!this.#closing && !bc.closed) {
        const keep = await this.#exchange(bc, peer, first);
        first = false;
        if (!keep) break;
      }
    } finally {
      bc.close();
      sweeper.delete(bc);
      this.#clients.delete(bc);
    }
  }

  /** Precise time when spans are recorded, the sweeper's coarse time otherwise. */
  #stamp(): number {
    return this.#cfg.tracing.enabled ? this.#now() : this.#sweeper!.now;
  }

  #newExchange(peer: string, start: number): Exchange {
    return {
      start,
      peer,
      client: peer,
      method: "-",
      target: "-",
      protocol: "-",
      headers: [],
      host: undefined,
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
      ruleIds: [],
      findingIds: [],
      redaction: undefined,
    };
  }

  /** Serves one request; returns whether the connection may carry another. */
  async #exchange(bc: BufferedConn, peer: string, first: boolean): Promise<boolean> {
    const L = this.#cfg.limits;
    if (!first) {
      bc.deadline = this.#sweeper!.now + (bc.buffered > 0 ? L.headerTimeoutMs : L.idleTimeoutMs);
    }
    let start = 0;
    let headEnd: number;
    try {
      headEnd = await readHead(bc, this.#headLimits, () => {
        start = this.#stamp();
        bc.deadline = start + L.headerTimeoutMs;
      });
    } catch (err) {
      const ex = this.#newExchange(peer, start || this.#stamp());
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
        return false;
      }
      if (err instanceof Rejection) {
        this.#partialRequestLine(ex, bc);
        this.#sampleNew(ex);
        await this.#reject(bc, ex, err, false);
        this.#finishSpan(ex);
        return false;
      }
      return false;
    }
    if (headEnd === -1) return false;
    this.#requests++;
    if (start === 0) start = this.#stamp();
    const ex = this.#newExchange(peer, start);
    let head: RequestHead;
    try {
      head = parseRequestHead(bc.buf, bc.start, headEnd, this.#headLimits);
    } catch (err) {
      if (!(err instanceof Rejection)) throw err;
      this.#partialRequestLine(ex, bc);
      this.#sampleNew(ex);
      await this.#reject(bc, ex, err, false);
      this.#finishSpan(ex);
      return false;
    }
    bc.start = headEnd;
    bc.deadline = 0;
    ex.method = head.method;
    ex.target = head.target;
    ex.protocol = head.protocol;
    ex.headers = head.headers;
    ex.host = head.host;
    try {
      return await this.#handle(bc, ex, head);
    } catch (err) {
      if (err instanceof Rejection) {
        await this.#reject(bc, ex, err, false);
        return false;
      }
      ex.decision = "error";
      ex.error = (err as Error)?.message ?? String(err);
      if (!(err instanceof ClientGone)) this.#onError(err);
      return false;
    } finally {
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
      ex.sampled = shouldSample(undefined, {
        sampleRate: this.#cfg.tracing.sampleRate,
        respectParent: false,
      }, this.#ids);
    }
  }

  #ensureIds(ex: Exchange): void {
    if (ex.traceId === undefined) ex.traceId = ex.parent?.traceId ?? this.#ids.traceId();
    if (ex.spanId === undefined) ex.spanId = this.#ids.spanId();
  }

  async #handle(bc: BufferedConn, ex: Exchange, head: RequestHead): Promise<boolean> {
    const cfg = this.#cfg;
    const tracing = cfg.tracing;
    // Names are compared in lower case throughout; compute them once.
    const headers = head.headers;
    const lower = new Array<string>(headers.length);
    let traceparent: string | undefined;
    for (let i = 0; i < headers.length; i++) {
      const l = headers[i][0].toLowerCase();
      lower[i] = l;
      if (l === "traceparent") traceparent = traceparent === undefined ? headers[i][1] : "";
    }
    if (tracing.enabled || tracing.propagate) {
      ex.parent = traceparent ? parseTraceParent(traceparent) : undefined;
      if (tracing.enabled) {
        ex.sampled = shouldSample(ex.parent, {
          sampleRate: tracing.sampleRate,
          respectParent: tracing.respectParentSampling,
        }, this.#ids);
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
        if (blockMode) {
          const r = new Rejection(429, "proxy-rate-limit", "rate limit exceeded", "rate_limit");
          await this.#reject(bc, ex, r, !head.chunked && head.contentLength <= 0, [[
            "Retry-After",
            String(d.retryAfter),
          ]]);
          return !head.chunked && head.contentLength <= 0 && !this.#clientWantsClose(head);
        }
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
    if (head.chunked || head.contentLength > 0) {
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
      const onFirst = head.expectContinue && head.minor === 1
        ? () => bc.write(CONTINUE)
        : undefined;
      body = new ClientBody(inner, maxBody, touch, onFirst);
    }

    // --- rules ---
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
        const all = new Uint8Array(have);
        let o = 0;
        for (const p of prefix) {
          all.set(p, o);
          o += p.length;
        }
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
    if (fixed !== undefined) {
      source = null;
      ex.requestBytes = fixed.length;
    }

    // --- upstream request head ---
    const connTokens = head.connection;
    const connSet = connTokens.length > 0 ? new Set(connTokens) : undefined;
    const upgrade = head.upgrade !== undefined && head.minor === 1 && connSet?.has("upgrade")
      ? head.upgrade
      : undefined;
    let s = `${head.method} ${target} HTTP/1.1\r\n`;
    let sawHost = false;
    for (let i = 0; i < headers.length; i++) {
      const l = lower[i];
      if (HOP_BY_HOP.has(l) || (connSet !== undefined && connSet.has(l))) continue;
      if (l === "host") {
        sawHost = true;
        s += absoluteHost !== undefined
          ? `${headers[i][0]}: ${absoluteHost}\r\n`
          : `${headers[i][0]}: ${headers[i][1]}\r\n`;
        continue;
      }
      if (cfg.forwardedHeaders && FORWARDING.has(l)) continue;
      if (l === "expect") continue;
      if (l === "traceparent" && tracing.propagate) continue;
      if (fixed !== undefined && head.chunked === true && l === "content-length") continue;
      s += `${headers[i][0]}: ${headers[i][1]}\r\n`;
    }
    if (!sawHost) s += `Host: ${absoluteHost ?? this.#backend.authority}\r\n`;
    if (cfg.forwardedHeaders) {
      for (
        const [n, v] of forwardingHeaders(headers, {
          peer: ex.peer,
          trustedPeer,
          scheme: "http",
          host: ex.host,
        })
      ) s += `${n}: ${v}\r\n`;
    }
    if (tracing.propagate) {
      if (tracing.enabled) {
        s += `traceparent: ${formatTraceParent(ex.traceId!, ex.spanId!, ex.sampled)}\r\n`;
      } else if (ex.parent) {
        s += `traceparent: ${
          formatTraceParent(ex.parent.traceId, ex.parent.parentId, ex.parent.sampled)
        }\r\n`;
      }
    }
    if (upgrade !== undefined) s += `Connection: upgrade\r\nUpgrade: ${upgrade}\r\n`;
    if (fixed !== undefined && head.chunked) s += `Content-Length: ${fixed.length}\r\n`;
    else if (head.chunked) s += "Transfer-Encoding: chunked\r\n";
    s += "\r\n";
    return await this.#forward(
      bc,
      ex,
      head,
      s,
      fixed,
      source,
      body,
      head.chunked,
      upgrade !== undefined,
    );
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
        verdict = v instanceof Promise ? await v : v;
      } catch (err) {
        // Fail open: a broken engine must not take the site down; it is counted and reported.
        this.#ruleErrors++;
        this.#onError(err);
        continue;
      }
      if (verdict.matches.length === 0 && verdict.action !== "block") continue;
      const blocking = verdict.action === "block" && this.#cfg.mode === "block";
      const status = verdict.status ?? 403;
      if (blocking && blockStatus === undefined) blockStatus = status;
      let n = 0;
      for (const m of verdict.matches) {
        ex.ruleIds.push(m.ruleId);
        if (n++ < 16) this.#ruleFinding(ex, engine.name, m, blocking, status, verdict.score);
      }
      if (ex.decision === "allowed") ex.decision = "detected";
    }
    return blockStatus;
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
      traceId: ex.traceId!,
      spanId: ex.spanId!,
      request: red.summary,
    };
    if (f.status !== undefined) finding.status = f.status;
    if (f.matched !== undefined) finding.matched = scrub(f.matched, red.secrets).slice(0, 300);
    if (f.score !== undefined) finding.score = f.score;
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
    if (ex.traceId) text += `trace id: ${ex.traceId}\n`;
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
    headText: string,
    fixed: Uint8Array | undefined,
    source: BodySource | null,
    body: ClientBody | null,
    chunked: boolean,
    upgrade: boolean,
  ): Promise<boolean> {
    const pool = this.#pool!;
    const U = this.#cfg.upstream;
    const now = (): number => this.#stamp();
    const sweeper = this.#sweeper!;
    let up: BufferedConn | undefined;
    let sendError: unknown;
    let sendDone = source === null;
    let sending: Promise<void> | undefined;
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
      tSend = now();
      up.deadline = sweeper.now + U.responseTimeoutMs;
      // Retry once on a reused connection the backend had closed, when nothing is lost.
      const retryable = reused && source === null && attempt === 0;
      try {
        const enc = up.encodeHead(headText, fixed);
        await up.write(enc.bytes);
        if (fixed !== undefined && !enc.tailIncluded) await up.write(fixed);
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
        const target = up;
        sending = (async () => {
          try {
            for (;;) {
              let c: Uint8Array | null;
              try {
                c = await source.read();
              } catch (err) {
                sendError = err;
                target.close(); // abort the exchange: the response read fails next
                return;
              }
              if (c === null) break;
              ex.requestBytes += c.length;
              target.deadline = sweeper.now + U.responseTimeoutMs;
              await target.write(chunked ? encodeChunk(c) : c);
            }
            if (chunked) await target.write(LAST_CHUNK);
            target.deadline = sweeper.now + U.responseTimeoutMs;
            sendDone = true;
          } catch {
            // The backend stopped reading; its response (if any) decides.
          }
        })();
      }
      try {
        res = await this.#readResponseHead(up);
      } catch (err) {
        const expired = up.expired;
        pool.discard(up);
        if (sending) await sending;
        if (sendError !== undefined) {
          if (sendError instanceof Rejection) {
            await this.#reject(bc, ex, sendError, false);
            return false;
          }
          throw sendError;
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
    ex.upstreamMs = now() - tSend;

    // 1xx interim responses: 100 is ours to send (we answered Expect), others pass to 1.1 clients.
    while (res.status < 200 && res.status !== 101) {
      if (res.status !== 100 && head.minor === 1) {
        try {
          await bc.write(latin1Encode(this.#responseHead(res, undefined, "none", true, head)));
        } catch {
          pool.discard(up);
          throw new ClientGone("client closed");
        }
      }
      try {
        res = await this.#readResponseHead(up);
      } catch (err) {
        const expired = up.expired;
        pool.discard(up);
        return await this.#upstreamFailed(
          bc,
          ex,
          head,
          body,
          expired ? 504 : 502,
          (err as Error).message,
        );
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
    let framing: "none" | "length" | "chunked" | "close";
    let src: BodySource | null = null;
    const upErr = (m: string): Error => new Error(`backend: ${m}`);
    if (noBody) framing = "none";
    else if (res.chunked) {
      src = new ChunkedBody(up, upErr);
      framing = head.minor === 1 ? "chunked" : "close";
    } else if (res.contentLength >= 0) {
      src = new LengthBody(up, res.contentLength, () => upErr("closed inside the body"));
      framing = "length";
    } else {
      src = new CloseBody(up);
      framing = head.minor === 1 ? "chunked" : "close";
    }
    let upReusable = res.minor === 1 && !res.connection.includes("close") &&
      (noBody || res.chunked || res.contentLength >= 0);
    const requestDone = body === null || body.done || sendDone;
    const keepClient = !this.#clientWantsClose(head) && framing !== "close" && requestDone &&
      !this.#closing;
    ex.status = res.status;
    const resHead = this.#responseHead(res, ex, framing, keepClient, head);

    let ok = true;
    try {
      if (framing === "length" && up.buffered >= res.contentLength) {
        // Whole response buffered: one write.
        const data = up.take(res.contentLength);
        const enc = bc.encodeHead(resHead, data);
        bc.deadline = sweeper.now + this.#cfg.limits.idleTimeoutMs;
        await bc.write(enc.bytes);
        if (!enc.tailIncluded) await bc.write(data);
        ex.responseBytes = data.length;
      } else {
        bc.deadline = sweeper.now + this.#cfg.limits.idleTimeoutMs;
        await bc.write(bc.encodeHead(resHead).bytes);
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
    if (!sendDone) {
      // Response complete before the request body: the backend did not want the rest, and the
      // client connection cannot be reused either (its next request starts after that body).
      up.close();
      bc.close();
      upReusable = false;
    }
    if (sending) await sending;
    if (ok && upReusable && sendDone) {
      up.deadline = 0;
      pool.release(up);
    } else pool.discard(up);
    if (!ok) {
      ex.decision = ex.decision === "allowed" ? "error" : ex.decision;
      return false;
    }
    return keepClient && (body === null || body.done);
  }

  async #readResponseHead(up: BufferedConn): Promise<ResponseHead> {
    const max = this.#cfg.upstream.maxResponseHeaderBytes;
    let end: number;
    try {
      end = await readHead(up, { maxHeadBytes: max, maxLineBytes: max, maxHeaderCount: 10_000 });
    } catch (err) {
      if (err instanceof Rejection) throw new Error(`malformed backend response: ${err.message}`);
      throw err;
    }
    if (end === -1) throw new Error("backend closed the connection without a response");
    const res = parseResponseHead(up.buf, up.start, end);
    up.start = end;
    return res;
  }

  #responseHead(
    res: ResponseHead,
    ex: Exchange | undefined,
    framing: "none" | "length" | "chunked" | "close",
    keepClient: boolean,
    req: RequestHead,
  ): string {
    let s = `HTTP/1.1 ${res.status} ${res.reason}\r\n`;
    const connSet = res.connection.length ? new Set(res.connection) : undefined;
    for (const [n, v] of res.headers) {
      const l = n.toLowerCase();
      if (HOP_BY_HOP.has(l)) continue;
      if (connSet !== undefined && connSet.has(l)) continue;
      if (l === "content-length" && framing !== "length" && framing !== "none") continue;
      s += `${n}: ${v}\r\n`;
    }
    if (ex === undefined) return s + "\r\n"; // 1xx
    if (this.#cfg.debugHeaders) s += `x-infraveil-rules: ${ex.ruleIds.join(",")}\r\n`;
    if (framing === "chunked") s += "Transfer-Encoding: chunked\r\n";
    if (!keepClient) s += "Connection: close\r\n";
    else if (req.minor === 0) s += "Connection: keep-alive\r\n";
    return s + "\r\n";
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
    const end = this.#now();
    const q = ex.target.indexOf("?");
    const route = q === -1 ? ex.target : ex.target.slice(0, q);
    const span: Span = {
      traceId: ex.traceId!,
      spanId: ex.spanId!,
      name: `${ex.method} ${route.length > 200 ? route.slice(0, 200) : route}`,
      start: ex.start,
      end,
      method: ex.method,
      route: route.length > 2048 ? route.slice(0, 2048) : route,
      status: ex.status,
      durationMs: end - ex.start,
      requestBytes: ex.requestBytes,
      responseBytes: ex.responseBytes,
      client: ex.client,
      decision: ex.decision,
      ruleIds: ex.ruleIds,
      findingIds: ex.findingIds,
    };
    if (ex.parent) span.parentSpanId = ex.parent.parentId;
    if (ex.upstreamMs !== undefined) span.upstreamMs = ex.upstreamMs;
    if (ex.host !== undefined) span.host = ex.host;
    if (ex.error !== undefined) span.error = ex.error;
    this.traces.add(span);
    for (const e of this.#traceExporters) e.offer(span);
  }
}
