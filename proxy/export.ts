/**
 * Exporting spans and findings without touching the request path: the proxy only calls
 * {@linkcode BatchExporter.offer}, which appends to a bounded queue (dropping and counting when
 * full) and returns at once. A timer drains the queue in batches into a sink, one export in
 * flight at a time. Also: OTLP/JSON encoding of spans and an HTTP sink for a collector.
 *
 * @module
 */

import type { Finding } from "./findings.ts";
import type { Span } from "./trace.ts";

/** Receives batches of spans (the control plane, an OTLP collector, a parent Worker…). */
export interface TraceSink {
  /** Exports one batch; may reject, the exporter counts the failure. */
  export(spans: Span[]): Promise<void>;
}

/** Receives batches of findings. */
export interface FindingSink {
  /** Exports one batch; may reject, the exporter counts the failure. */
  export(findings: Finding[]): Promise<void>;
}

/** Exporter counters. */
export interface ExportStats {
  /** Items accepted into the queue. */
  queued: number;
  /** Items dropped because the queue was full. */
  dropped: number;
  /** Items exported successfully. */
  exported: number;
  /** Items in batches whose export failed. */
  failed: number;
  /** Items waiting now. */
  pending: number;
}

/** Batching options. */
export interface BatchOptions {
  /** Most items waiting; beyond it, new items are dropped (default 8192). */
  queueSize?: number;
  /** Items per export call (default 512). */
  batchSize?: number;
  /** Longest wait before a partial batch is exported, ms (default 1000). */
  flushIntervalMs?: number;
}

/** Queues items and exports them in batches off the request path. */
export class BatchExporter<T> {
  readonly #sink: { export(items: T[]): Promise<void> };
  readonly #queueSize: number;
  readonly #batchSize: number;
  readonly #interval: number;
  #queue: T[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #inFlight: Promise<void> | undefined;
  #closed = false;
  readonly #stats: ExportStats = { queued: 0, dropped: 0, exported: 0, failed: 0, pending: 0 };

  /**
   * @param sink Where batches go.
   * @param options Queue size, batch size, flush interval.
   */
  constructor(sink: { export(items: T[]): Promise<void> }, options: BatchOptions = {}) {
    this.#sink = sink;
    this.#queueSize = options.queueSize ?? 8192;
    this.#batchSize = options.batchSize ?? 512;
    this.#interval = options.flushIntervalMs ?? 1000;
  }

  /** Queues one item; never blocks. Returns false when it was dropped. */
  offer(item: T): boolean {
    if (this.#closed || this.#queue.length >= this.#queueSize) {
      this.#stats.dropped++;
      return false;
    }
    this.#queue.push(item);
    this.#stats.queued++;
    if (this.#timer === undefined && this.#inFlight === undefined) {
      const delay = this.#queue.length >= this.#batchSize ? 0 : this.#interval;
      this.#timer = setTimeout(() => this.#drain(), delay);
    }
    return true;
  }

  #drain(): void {
    this.#timer = undefined;
    if (this.#inFlight !== undefined || this.#queue.length === 0) return;
    const batch = this.#queue.length <= this.#batchSize
      ? this.#queue
      : this.#queue.slice(0, this.#batchSize);
    this.#queue = batch === this.#queue ? [] : this.#queue.slice(this.#batchSize);
    this.#inFlight = (async () => {
      try {
        await this.#sink.export(batch);
        this.#stats.exported += batch.length;
      } catch {
        this.#stats.failed += batch.length;
      }
    })().finally(() => {
      this.#inFlight = undefined;
      if (this.#queue.length > 0 && this.#timer === undefined) {
        const delay = this.#closed || this.#queue.length >= this.#batchSize ? 0 : this.#interval;
        this.#timer = setTimeout(() => this.#drain(), delay);
      }
    });
  }

  /** Counters. */
  stats(): ExportStats {
    return { ...this.#stats, pending: this.#queue.length };
  }

  /** Exports what is queued now and waits for it (bounded by `timeoutMs`). */
  async flush(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((this.#queue.length > 0 || this.#inFlight) && Date.now() < deadline) {
      if (this.#timer !== undefined) {
        clearTimeout(this.#timer);
        this.#timer = undefined;
      }
      if (!this.#inFlight) this.#drain();
      const inFlight = this.#inFlight;
      if (!inFlight) break;
      let t: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        inFlight,
        new Promise<void>((r) => t = setTimeout(r, Math.max(0, deadline - Date.now()))),
      ]);
      clearTimeout(t);
    }
  }

  /** Flushes, then refuses further items and stops timers. */
  async close(timeoutMs = 5000): Promise<void> {
    await this.flush(timeoutMs);
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#stats.dropped += this.#queue.length;
    this.#queue = [];
  }
}

type OtlpValue = { stringValue: string } | { intValue: string } | { doubleValue: number } | {
  arrayValue: { values: OtlpValue[] };
};
/** One OTLP attribute. */
export interface OtlpAttribute {
  key: string;
  value: OtlpValue;
}

/** The OTLP/JSON `ExportTraceServiceRequest` body. */
export interface OtlpTraceRequest {
  resourceSpans: {
    resource: { attributes: OtlpAttribute[] };
    scopeSpans: {
      scope: { name: string; version: string };
      spans: {
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        name: string;
        kind: number;
        startTimeUnixNano: string;
        endTimeUnixNano: string;
        attributes: OtlpAttribute[];
        status: { code: number; message?: string };
      }[];
    }[];
  }[];
}

function nanos(ms: number): string {
  const whole = Math.floor(ms);
  const frac = Math.round((ms - whole) * 1e6);
  return (BigInt(whole) * 1_000_000n + BigInt(frac)).toString();
}

const str = (key: string, v: string): OtlpAttribute => ({ key, value: { stringValue: v } });
const int = (key: string, v: number): OtlpAttribute => ({
  key,
  value: { intValue: String(Math.round(v)) },
});
const dbl = (key: string, v: number): OtlpAttribute => ({ key, value: { doubleValue: v } });

/**
 * Encodes spans as an OTLP/JSON trace export request (OpenTelemetry semantic conventions for
 * HTTP servers; proxy-specific attributes under `infraveil.`).
 *
 * @param spans Spans to encode.
 * @param serviceName `service.name` resource attribute.
 * @returns The request body object.
 */
export function spansToOtlp(
  spans: readonly Span[],
  serviceName = "infraveil-proxy",
): OtlpTraceRequest {
  return {
    resourceSpans: [{
      resource: { attributes: [str("service.name", serviceName)] },
      scopeSpans: [{
        scope: { name: "infraveil.proxy", version: "0.1.0" },
        spans: spans.map((s) => {
          const attributes: OtlpAttribute[] = [
            str("http.request.method", s.method),
            str("url.path", s.route),
            int("http.response.status_code", s.status),
            str("client.address", s.client),
            int("http.request.body.size", s.requestBytes),
            int("http.response.body.size", s.responseBytes),
            dbl("infraveil.duration_ms", s.durationMs),
            str("infraveil.decision", s.decision),
          ];
          if (s.host !== undefined) attributes.push(str("server.address", s.host));
          if (s.upstreamMs !== undefined) {
            attributes.push(dbl("infraveil.upstream_ms", s.upstreamMs));
          }
          if (s.ruleIds.length) {
            attributes.push({
              key: "infraveil.rule_ids",
              value: { arrayValue: { values: s.ruleIds.map((r) => ({ stringValue: r })) } },
            });
          }
          if (s.findingIds.length) {
            attributes.push({
              key: "infraveil.finding_ids",
              value: { arrayValue: { values: s.findingIds.map((r) => ({ stringValue: r })) } },
            });
          }
          if (s.error !== undefined) attributes.push(str("error.type", s.error));
          const span: OtlpTraceRequest["resourceSpans"][0]["scopeSpans"][0]["spans"][0] = {
            traceId: s.traceId,
            spanId: s.spanId,
            name: s.name,
            kind: 2, // SPAN_KIND_SERVER
            startTimeUnixNano: nanos(s.start),
            endTimeUnixNano: nanos(s.end),
            attributes,
            // STATUS_CODE_ERROR for 5xx and proxy errors, otherwise UNSET.
            status: s.status >= 500 || s.decision === "error" ? { code: 2 } : { code: 0 },
          };
          if (s.parentSpanId !== undefined) span.parentSpanId = s.parentSpanId;
          return span;
        }),
      }],
    }],
  };
}

/** Options for {@linkcode OtlpHttpTraceSink}. */
export interface OtlpHttpOptions {
  /** Collector URL, e.g. "http://127.0.0.1:4318/v1/traces". */
  url: string;
  /** Extra request headers (e.g. an API key for the collector). */
  headers?: Record<string, string>;
  /** Per-export timeout, ms (default 5000). */
  timeoutMs?: number;
  /** `service.name` (default "infraveil-proxy"). */
  serviceName?: string;
  /** Injected fetch (default globalThis.fetch). */
  fetch?: typeof fetch;
}

/** Posts OTLP/JSON to a collector over HTTP. */
export class OtlpHttpTraceSink implements TraceSink {
  readonly #opts: OtlpHttpOptions;
  /** @param options Collector URL, headers, timeout, fetch. */
  constructor(options: OtlpHttpOptions) {
    this.#opts = options;
  }
  /** Posts one batch; rejects on a non-2xx answer. */
  async export(spans: Span[]): Promise<void> {
    const f = this.#opts.fetch ?? fetch;
    const res = await f(this.#opts.url, {
      method: "POST",
      headers: { "content-type": "application/json", ...this.#opts.headers },
      body: JSON.stringify(spansToOtlp(spans, this.#opts.serviceName)),
      signal: AbortSignal.timeout(this.#opts.timeoutMs ?? 5000),
    });
    await res.body?.cancel();
    if (!res.ok) throw new Error(`OTLP collector answered ${res.status}`);
  }
}

/** Posts findings as a JSON array to a URL. */
export class HttpJsonFindingSink implements FindingSink {
  readonly #opts: Omit<OtlpHttpOptions, "serviceName">;
  /** @param options URL, headers, timeout, fetch. */
  constructor(options: Omit<OtlpHttpOptions, "serviceName">) {
    this.#opts = options;
  }
  /** Posts one batch; rejects on a non-2xx answer. */
  async export(findings: Finding[]): Promise<void> {
    const f = this.#opts.fetch ?? fetch;
    const res = await f(this.#opts.url, {
      method: "POST",
      headers: { "content-type": "application/json", ...this.#opts.headers },
      body: JSON.stringify({ findings }),
      signal: AbortSignal.timeout(this.#opts.timeoutMs ?? 5000),
    });
    await res.body?.cancel();
    if (!res.ok) throw new Error(`finding sink answered ${res.status}`);
  }
}
