/**
 * Reverse proxy: forwards traffic to one backend correctly, defends it (limits, rate limits,
 * rules) and traces every request.
 *
 * ```ts ignore
 * import { createProxy, resolveConfig } from "@infraveil/proxy";
 * const proxy = createProxy({
 *   config: resolveConfig({ listen: "127.0.0.1:8080", backend: "http://127.0.0.1:3000" }),
 * });
 * proxy.listen();
 * // later: proxy.traces.query({ minStatus: 500 }), proxy.findings.query({ category: "sqli" })
 * ```
 *
 * @module
 */
export { createProxy, type Proxy, type ProxyOptions, type ProxyStats } from "./proxy.ts";
export {
  type BackendTarget,
  type DeepPartial,
  defaultConfig,
  type ExportConfig,
  parseBackend,
  parseConfig,
  parseHostPort,
  type ProxyConfig,
  type ProxyConfigInput,
  resolveConfig,
} from "./config.ts";
export { ProxyError } from "./errors.ts";
export type { RuleEngine, RuleMatch, RuleRequest, RuleVerdict } from "./rule_engine.ts";
export { type BaselineOptions, createBaselineEngine } from "./baseline_rules.ts";
export {
  type Finding,
  type FindingQuery,
  FindingStore,
  isSecretName,
  REDACTED,
  type Redaction,
  type RequestSummary,
  scrub,
  summarizeRequest,
} from "./findings.ts";
export {
  formatTraceParent,
  IdSource,
  parseTraceParent,
  type RandomFill,
  RingBuffer,
  type SamplingOptions,
  shouldSample,
  type Span,
  type SpanQuery,
  type TraceParent,
  TraceStore,
} from "./trace.ts";
export {
  BatchExporter,
  type BatchOptions,
  type ExportStats,
  type FindingSink,
  HttpJsonFindingSink,
  type OtlpAttribute,
  type OtlpHttpOptions,
  OtlpHttpTraceSink,
  type OtlpTraceRequest,
  spansToOtlp,
  type TraceSink,
} from "./export.ts";
export { type RateDecision, RateLimiter, type RateLimitOptions } from "./rate_limit.ts";
export { type Cidr, cidrContains, type IpBytes, IpSet, parseCidr, parseIp } from "./ip.ts";
export {
  FORWARDING,
  forwardingHeaders,
  HOP_BY_HOP,
  hopByHop,
  resolveClient,
  stripHopByHop,
} from "./forwarding.ts";
