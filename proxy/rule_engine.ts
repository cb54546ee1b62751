/**
 * The rule-engine seam: the proxy hands every request to each configured {@linkcode RuleEngine}
 * and acts on the verdicts (block, or record only in monitor mode); an engine that inspects
 * responses too gets the response of each request that is forwarded. The built-in baseline rules
 * and the OWASP CRS engine both implement this interface.
 *
 * This module holds types only; it must never import proxy internals, so that engines can be
 * built and tested on their own.
 *
 * @module
 */

/** One request as the rule engine sees it. */
export interface RuleRequest {
  /** Request method as received, e.g. "GET". */
  method: string;
  /** Request target exactly as received (origin-form path + query), e.g. "/a/b?x=1". */
  target: string;
  /** "HTTP/1.1" etc. */
  protocol: string;
  /** Header lines in arrival order, names as received. */
  headers: [string, string][];
  /** Client address (after trusted-proxy resolution). */
  remoteAddr: string;
  /** Buffered request body when the engine asked for it (inspectsBody), possibly truncated to maxBodyBytes. */
  body?: Uint8Array;
}

/** One rule that matched a request. */
export interface RuleMatch {
  /** Rule identifier, e.g. "942100" or "baseline-path-traversal". */
  ruleId: string;
  /** sqli, xss, lfi, rfi, rce, php, java, scanner, protocol, session, generic, disclosure, … */
  category: string;
  /** How serious the match is. */
  severity: "critical" | "error" | "warning" | "notice";
  /** Human-readable description of the rule. */
  message: string;
  /** What matched, e.g. "ARGS:q" and a short excerpt of the matched value. */
  matched?: string;
  /** CRS paranoia level of the rule, when it has one. */
  paranoia?: number;
}

/** One response as a rule engine sees it: the backend's answer to a forwarded request. */
export interface RuleResponse {
  /** Status code, e.g. 200. */
  status: number;
  /** "HTTP/1.1" etc. */
  protocol: string;
  /** Header lines in arrival order, names as received. */
  headers: [string, string][];
  /**
   * The body, or its first {@linkcode ResponseBodyAccess.maxBytes}, when the engine asked for
   * bodies of this media type; undefined otherwise.
   */
  body?: Uint8Array;
}

/** Which response bodies an engine wants to see. */
export interface ResponseBodyAccess {
  /** Media types (lowercase, without parameters) whose bodies are buffered for inspection. */
  mediaTypes: readonly string[];
  /** How much of a body is inspected; the rest passes uninspected. */
  maxBytes: number;
}

/** An engine's decision on one request. */
export interface RuleVerdict {
  /** Whether the engine wants the request blocked. */
  action: "allow" | "block";
  /** HTTP status to answer with when blocking (default 403). */
  status?: number;
  /** Every rule that matched, blocking or not. */
  matches: RuleMatch[];
  /** Anomaly score when the engine scores. */
  score?: number;
  /**
   * Present when the engine also inspects the response to this request: when the request is
   * forwarded (allowed, or in monitor mode whatever the verdict), call it once with the
   * response, before any of it reaches the client.
   */
  response?: (res: RuleResponse) => RuleVerdict | Promise<RuleVerdict>;
}

/** A pluggable request inspector. */
export interface RuleEngine {
  /** Short engine name used in findings and spans, e.g. "baseline" or "crs". */
  readonly name: string;
  /** Whether evaluate() wants the request body. */
  readonly inspectsBody: boolean;
  /** Largest body the engine will inspect. */
  readonly maxBodyBytes?: number;
  /** Response bodies the engine inspects, when it inspects any (see `RuleVerdict.response`). */
  readonly responseBody?: ResponseBodyAccess;
  /** Inspects one request. */
  evaluate(req: RuleRequest): RuleVerdict | Promise<RuleVerdict>;
}
