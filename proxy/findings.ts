/**
 * Findings: every block or detection the proxy makes, with a request summary from which
 * secrets (cookies, authorization, tokens, secret-looking query parameters) are redacted before
 * the finding is stored or exported. A finding must never carry a credential to the control
 * plane or the AI agent.
 *
 * @module
 */

import { RingBuffer } from "./trace.ts";

/** Replacement text for redacted values. */
export const REDACTED = "[REDACTED]";

/** What the proxy saw of a request, with secrets redacted. */
export interface RequestSummary {
  method: string;
  /** Target with secret query values redacted, truncated to 2048 characters. */
  target: string;
  protocol: string;
  host?: string;
  client: string;
  /** Headers in arrival order; secret values redacted; at most 64, values ≤ 512 chars. */
  headers: [string, string][];
}

/** One block or detection. */
export interface Finding {
  /** Unique id ("f_" + 16 hex digits). */
  id: string;
  /** Epoch ms. */
  time: number;
  /** sqli, xss, lfi, rfi, rce, scanner, protocol, rate_limit, access, … */
  category: string;
  severity: "critical" | "error" | "warning" | "notice";
  ruleId: string;
  message: string;
  /** Which engine produced it: "proxy" (limits, protocol), "rate_limit", "access", "baseline", "crs", … */
  engine: string;
  /** "blocked" when the request was refused, "detected" when it was only recorded. */
  action: "blocked" | "detected";
  /** Status sent to the client when blocked. */
  status?: number;
  /** What matched (redacted). */
  matched?: string;
  /** Anomaly score, when the engine scores. */
  score?: number;
  traceId: string;
  spanId: string;
  request: RequestSummary;
}

/** Filter for {@linkcode FindingStore.query}. */
export interface FindingQuery {
  category?: string;
  ruleId?: string;
  traceId?: string;
  client?: string;
  action?: Finding["action"];
  since?: number;
  /** At most this many, newest first (default 100). */
  limit?: number;
}

/** Findings kept in memory for the agent to query. */
export class FindingStore {
  readonly #ring: RingBuffer<Finding>;
  /** @param capacity Most findings kept. */
  constructor(capacity: number) {
    this.#ring = new RingBuffer(capacity);
  }
  /** Records a finding. */
  add(f: Finding): void {
    this.#ring.push(f);
  }
  /** Findings held now. */
  get size(): number {
    return this.#ring.size;
  }
  /** Findings ever recorded. */
  get total(): number {
    return this.#ring.total;
  }
  /** Findings matching the query, newest first. */
  query(q: FindingQuery = {}): Finding[] {
    return this.#ring.find(
      (f) =>
        (q.category === undefined || f.category === q.category) &&
        (q.ruleId === undefined || f.ruleId === q.ruleId) &&
        (q.traceId === undefined || f.traceId === q.traceId) &&
        (q.client === undefined || f.request.client === q.client) &&
        (q.action === undefined || f.action === q.action) &&
        (q.since === undefined || f.time >= q.since),
      q.limit ?? 100,
    );
  }
}

const SECRET_HEADERS = new Set([
  "authorization",
  "proxy-authorization",
  "cookie",
  "set-cookie",
  "x-api-key",
  "x-auth-token",
  "x-csrf-token",
  "x-xsrf-token",
  "x-amz-security-token",
]);
const SECRET_NAME =
  /token|secret|passw|pwd|api[-_]?key|apikey|auth|session|sess|sid|signature|sig|credential|jwt|key|code|otp|nonce/i;

/** Whether a header or parameter name looks like it carries a secret. */
export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name);
}

/** A redacted summary plus the secret strings found, to scrub from other finding text. */
export interface Redaction {
  summary: RequestSummary;
  secrets: string[];
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, " "));
  } catch {
    return s;
  }
}

/**
 * Summarises a request for a finding, redacting secrets.
 *
 * @param req The request as received.
 * @returns The summary and the secret values it removed.
 */
export function summarizeRequest(req: {
  method: string;
  target: string;
  protocol: string;
  headers: readonly [string, string][];
  client: string;
  host?: string;
}): Redaction {
  const secrets: string[] = [];
  const keep = (v: string): void => {
    if (v.length >= 4) {
      secrets.push(v);
      const d = safeDecode(v);
      if (d !== v && d.length >= 4) secrets.push(d);
    }
  };
  let target = req.target;
  const q = target.indexOf("?");
  if (q !== -1) {
    const parts = target.slice(q + 1).split("&").map((p) => {
      const eq = p.indexOf("=");
      if (eq === -1) return p;
      const name = safeDecode(p.slice(0, eq));
      if (!isSecretName(name)) return p;
      keep(p.slice(eq + 1));
      return `${p.slice(0, eq)}=${REDACTED}`;
    });
    target = `${target.slice(0, q)}?${parts.join("&")}`;
  }
  const headers: [string, string][] = [];
  for (const [name, value] of req.headers) {
    const lower = name.toLowerCase();
    let v = value;
    if (lower === "cookie" || lower === "set-cookie") {
      v = value.split(";").map((pair) => {
        const eq = pair.indexOf("=");
        if (eq === -1) return pair;
        keep(pair.slice(eq + 1).trim());
        return `${pair.slice(0, eq + 1)}${REDACTED}`;
      }).join(";");
    } else if (lower === "authorization" || lower === "proxy-authorization") {
      const sp = value.indexOf(" ");
      keep(sp === -1 ? value : value.slice(sp + 1).trim());
      v = sp === -1 ? REDACTED : `${value.slice(0, sp)} ${REDACTED}`;
    } else if (SECRET_HEADERS.has(lower) || isSecretName(lower)) {
      keep(value);
      v = REDACTED;
    }
    if (headers.length < 64) headers.push([name, v.length > 512 ? v.slice(0, 512) + "…" : v]);
  }
  secrets.sort((a, b) => b.length - a.length);
  const summary: RequestSummary = {
    method: req.method,
    target: scrub(target.length > 2048 ? target.slice(0, 2048) + "…" : target, secrets),
    protocol: req.protocol,
    client: req.client,
    headers,
  };
  if (req.host !== undefined) summary.host = req.host;
  return { summary, secrets };
}

/** Replaces every occurrence of each secret in `text` with the redaction marker. */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join(REDACTED);
  return out;
}
