/**
 * Converts the proxy's spans and findings to the control plane's ingestion format
 * (`POST` batches of `{spans}` and `{findings}`), keeping each item within the control plane's
 * size limits: attributes and details are cut, never the identifying fields.
 *
 * @module
 */
import type { Finding, Span } from "@infraveil/proxy";
import { sha256Hex } from "@infraveil/trust";

/** A span as the control plane ingests it. */
export interface WireSpan {
  trace_id: string;
  span_id: string;
  parent_span_id?: string;
  name: string;
  service?: string;
  start_ms: number;
  duration_ms: number;
  status: number;
  attributes: Record<string, unknown>;
}

/** A finding as the control plane ingests it. */
export interface WireFinding {
  fingerprint: string;
  category: string;
  severity: "low" | "medium" | "high" | "critical";
  title: string;
  service?: string;
  status: "open";
  trace_id: string;
  detail: Record<string, unknown>;
  observed_ms: number;
}

const SEVERITY: Record<Finding["severity"], WireFinding["severity"]> = {
  critical: "critical",
  error: "high",
  warning: "medium",
  notice: "low",
};

const cut = (s: string, n: number) => (s.length > n ? s.slice(0, n - 1) + "…" : s);

function fit<T extends Record<string, unknown>>(value: T, max: number, shrink: (v: T) => T): T {
  let v = value;
  for (let i = 0; i < 4 && JSON.stringify(v).length > max; i++) v = shrink(v);
  return v;
}

/**
 * A proxy span in the control plane's format.
 *
 * @param span the span
 * @param service the service this host runs
 * @returns the wire span
 */
export function spanToWire(span: Span, service?: string): WireSpan {
  const attributes = fit(
    {
      method: span.method,
      route: cut(span.route, 2048),
      decision: span.decision,
      client: span.client,
      host: span.host ?? null,
      request_bytes: span.requestBytes,
      response_bytes: span.responseBytes,
      upstream_ms: span.upstreamMs ?? null,
      rule_ids: span.ruleIds.slice(0, 32),
      finding_ids: span.findingIds.slice(0, 32),
      error: span.error ? cut(span.error, 512) : null,
    },
    8_000,
    (a) => ({ ...a, route: cut(a.route, 256), rule_ids: [], finding_ids: [] }),
  );
  const out: WireSpan = {
    trace_id: span.traceId,
    span_id: span.spanId,
    name: cut(span.name, 512),
    start_ms: Math.floor(span.start),
    duration_ms: Math.max(0, Math.round(span.durationMs)),
    status: span.status,
    attributes,
  };
  if (span.parentSpanId) out.parent_span_id = span.parentSpanId;
  if (service) out.service = service;
  return out;
}

/**
 * A proxy finding in the control plane's format. The fingerprint groups repeats of the same
 * rule on the same route (the control plane deduplicates per host and fingerprint).
 *
 * @param finding the finding
 * @param service the service this host runs
 * @returns the wire finding
 */
export function findingToWire(finding: Finding, service?: string): WireFinding {
  const path = finding.request.target.split("?")[0];
  const detail = fit(
    {
      rule_id: finding.ruleId,
      engine: finding.engine,
      action: finding.action,
      status: finding.status ?? null,
      matched: finding.matched ? cut(finding.matched, 512) : null,
      score: finding.score ?? null,
      span_id: finding.spanId,
      request: finding.request,
    },
    8_000,
    (d) => ({
      ...d,
      request: { ...d.request, target: cut(d.request.target, 256), headers: [] },
    }),
  );
  const out: WireFinding = {
    fingerprint: sha256Hex(
      `${finding.engine}\n${finding.ruleId}\n${finding.request.method} ${path}`,
    ),
    category: /^[A-Za-z_][A-Za-z0-9_-]*$/.test(finding.category) ? finding.category : "other",
    severity: SEVERITY[finding.severity] ?? "medium",
    title: cut(finding.message, 512),
    status: "open",
    trace_id: finding.traceId,
    detail,
    observed_ms: Math.floor(finding.time),
  };
  if (service) out.service = service;
  return out;
}
