/**
 * The built-in baseline rules: a small, low-false-positive set that catches the obvious
 * (path traversal, sensitive-file probes, classic SQL injection and XSS payloads, shell
 * injection, Log4Shell, known scanner user agents). It is a floor, not a WAF: the OWASP CRS
 * engine is the thorough option. It looks at the request target and a few headers, never the
 * body.
 *
 * @module
 */

import type { RuleEngine, RuleMatch, RuleRequest, RuleVerdict } from "./rule_engine.ts";

interface BaselineRule {
  id: string;
  category: string;
  severity: RuleMatch["severity"];
  message: string;
  pattern: RegExp;
  /** Where to look: the decoded target, the User-Agent, or every header value. */
  on: "target" | "user-agent" | "headers";
}

const RULES: readonly BaselineRule[] = [
  {
    id: "baseline-lfi-traversal",
    category: "lfi",
    severity: "critical",
    message: "Path traversal sequence",
    pattern: /(?:^|[\/\\=])\.\.(?:[\/\\]|$)/,
    on: "target",
  },
  {
    id: "baseline-lfi-sensitive-file",
    category: "lfi",
    severity: "critical",
    message: "Access to a sensitive system file",
    pattern:
      /\/etc\/(?:passwd|shadow|group|hosts)\b|\/proc\/self\/|\bwin\.ini\b|\bboot\.ini\b|php:\/\/(?:input|filter)/,
    on: "target",
  },
  {
    id: "baseline-scanner-dotfile",
    category: "scanner",
    severity: "error",
    message: "Probe for a configuration or version-control file",
    pattern: /\/\.(?:env|git|svn|hg|htpasswd|htaccess|aws|ssh|docker|DS_Store)(?:[\/?#.]|$)/,
    on: "target",
  },
  {
    id: "baseline-protocol-null-byte",
    category: "protocol",
    severity: "error",
    message: "NUL byte in the request target",
    // deno-lint-ignore no-control-regex -- matching NUL is the point of this rule
    pattern: /\x00/,
    on: "target",
  },
  {
    id: "baseline-sqli",
    category: "sqli",
    severity: "critical",
    message: "SQL injection pattern",
    pattern:
      /\bunion\b[\s\S]{0,40}?\bselect\b|['"`]\s*(?:or|and)\s+['"`]?\w*['"`]?\s*=\s*['"`]?\w*|\bor\s+\d+\s*=\s*\d+|;\s*(?:drop|truncate|delete\s+from|insert\s+into|update\s+\w+\s+set)\b|\bsleep\s*\(\s*\d+\s*\)|\bbenchmark\s*\(|\bwaitfor\s+delay\b|\binformation_schema\b|\bpg_sleep\s*\(/,
    on: "target",
  },
  {
    id: "baseline-xss",
    category: "xss",
    severity: "critical",
    message: "Cross-site scripting pattern",
    pattern:
      /<\s*script\b|javascript\s*:|<[^>]*\bon(?:error|load|mouseover|focus|click|begin|toggle)\s*=|<\s*(?:iframe|object|embed)\b|document\.cookie|\balert\s*\(/,
    on: "target",
  },
  {
    id: "baseline-rce",
    category: "rce",
    severity: "critical",
    message: "Shell command injection pattern",
    pattern:
      /(?:;|\|\|?|&&)\s*(?:cat|ls|id|whoami|uname|wget|curl|nc|ncat|bash|sh|python|perl|ping)\b|\$\([^)]*\)|`[^`]*`/,
    on: "target",
  },
  {
    id: "baseline-java-jndi",
    category: "java",
    severity: "critical",
    message: "JNDI lookup (Log4Shell)",
    pattern: /\$\{\s*jndi\s*:|\$\{[^}]*\$\{/,
    on: "headers",
  },
  {
    id: "baseline-scanner-user-agent",
    category: "scanner",
    severity: "error",
    message: "Known security scanner user agent",
    pattern:
      /sqlmap|nikto|nmap|masscan|zgrab|nuclei|dirbuster|gobuster|wpscan|acunetix|netsparker|havij|w3af|openvas|fimap|commix|arachni|jaeles/,
    on: "user-agent",
  },
];

/** Percent-decodes leniently (invalid escapes stay as they are). */
function pctDecode(s: string): string {
  if (s.indexOf("%") === -1 && s.indexOf("+") === -1) return s;
  return s.replace(/\+/g, " ").replace(
    /%([0-9a-fA-F]{2})/g,
    (_, h: string) => String.fromCharCode(parseInt(h, 16)),
  );
}

function excerpt(s: string, m: RegExpExecArray): string {
  const a = Math.max(0, m.index - 16);
  return s.slice(a, Math.min(s.length, m.index + m[0].length + 16)).slice(0, 80);
}

/** Options for {@linkcode createBaselineEngine}. */
export interface BaselineOptions {
  /** Rule ids to leave out. */
  disabled?: readonly string[];
}

/**
 * Creates the baseline rule engine. It blocks on any match (the proxy's monitor mode turns
 * blocks into detections).
 *
 * @param options Rules to disable.
 * @returns A rule engine named "baseline".
 * @example
 * ```ts
 * import { createBaselineEngine } from "./baseline_rules.ts";
 * import assert from "node:assert/strict";
 * const engine = createBaselineEngine();
 * const v = await engine.evaluate({
 *   method: "GET", target: "/files?name=../../etc/passwd", protocol: "HTTP/1.1",
 *   headers: [["Host", "example.com"]], remoteAddr: "127.0.0.1",
 * });
 * assert.equal(v.action, "block");
 * ```
 */
export function createBaselineEngine(options: BaselineOptions = {}): RuleEngine {
  const disabled = new Set(options.disabled ?? []);
  const rules = RULES.filter((r) => !disabled.has(r.id));
  return {
    name: "baseline",
    inspectsBody: false,
    evaluate(req: RuleRequest): RuleVerdict {
      // Decode twice to see through double encoding; compare case-insensitively.
      const target = pctDecode(pctDecode(req.target)).toLowerCase();
      let ua: string | undefined;
      const matches: RuleMatch[] = [];
      for (const rule of rules) {
        if (rule.on === "target") {
          const m = rule.pattern.exec(target);
          if (m) {
            matches.push({
              ruleId: rule.id,
              category: rule.category,
              severity: rule.severity,
              message: rule.message,
              matched: `REQUEST_URI:${excerpt(target, m)}`,
            });
          }
        } else if (rule.on === "user-agent") {
          if (ua === undefined) {
            ua = "";
            for (const [n, v] of req.headers) {
              if (n.length === 10 && n.toLowerCase() === "user-agent") ua = v.toLowerCase();
            }
          }
          const m = ua ? rule.pattern.exec(ua) : null;
          if (m) {
            matches.push({
              ruleId: rule.id,
              category: rule.category,
              severity: rule.severity,
              message: rule.message,
              matched: `REQUEST_HEADERS:User-Agent:${excerpt(ua, m)}`,
            });
          }
        } else {
          for (const [n, v] of [["REQUEST_URI", target], ...req.headers] as [string, string][]) {
            const m = rule.pattern.exec(n === "REQUEST_URI" ? v : pctDecode(v).toLowerCase());
            if (m) {
              matches.push({
                ruleId: rule.id,
                category: rule.category,
                severity: rule.severity,
                message: rule.message,
                matched: `${n === "REQUEST_URI" ? n : "REQUEST_HEADERS:" + n}:${excerpt(v, m)}`,
              });
              break;
            }
          }
        }
      }
      return { action: matches.length ? "block" : "allow", matches };
    },
  };
}
