/**
 * The rule-engine seam: the proxy hands every request to each configured {@linkcode RuleEngine}
 * and acts on the verdicts (block, or record only in monitor mode). The built-in baseline rules
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
  /** sqli, xss, lfi, rfi, rce, php, java, scanner, protocol, session, generic, … */
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
}

/** A pluggable request inspector. */
export interface RuleEngine {
  /** Short engine name used in findings and spans, e.g. "baseline" or "crs". */
  readonly name: string;
  /** Whether evaluate() wants the request body. */
  readonly inspectsBody: boolean;
  /** Largest body the engine will inspect. */
  readonly maxBodyBytes?: number;
  /** Inspects one request. */
  evaluate(req: RuleRequest): RuleVerdict | Promise<RuleVerdict>;
}
