/**
 * SARIF 2.1.0 reports for lint and check (for code-scanning uploads). Loaded only on demand.
 *
 * @module
 */
import type { CheckResult } from "./_cli_check.ts";
import type { Diagnostic } from "./types.ts";

const SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json";

function location(at: { file: string; line: number; col: number }) {
  return {
    physicalLocation: {
      artifactLocation: { uri: at.file },
      region: { startLine: at.line, startColumn: at.col },
    },
  };
}

function run(results: unknown[], ruleIds: string[]) {
  return {
    $schema: SCHEMA,
    version: "2.1.0",
    runs: [{
      tool: {
        driver: {
          name: "infraveil-policy",
          rules: [...new Set(ruleIds)].sort().map((id) => ({ id })),
        },
      },
      results,
    }],
  };
}

/** Lint diagnostics as a SARIF log. */
export function lintSarif(diags: readonly Diagnostic[]): string {
  const results = diags.map((d) => ({
    ruleId: d.code,
    level: d.severity === "error" ? "error" : "warning",
    message: { text: d.message },
    locations: [location(d)],
  }));
  return JSON.stringify(run(results, diags.map((d) => d.code)), null, 2) + "\n";
}

/** Check decisions as a SARIF log: one result per reason, located at the deciding rule. */
export function checkSarif(results: readonly CheckResult[]): string {
  const out: unknown[] = [];
  for (const r of results) {
    const d = r.decision;
    for (const x of d.reasons) {
      if (d.decision === "deny" && x.effect !== "deny") continue;
      out.push({
        ruleId: x.rule,
        level: d.decision === "deny" || r.failed
          ? "error"
          : d.decision === "approval_required"
          ? "warning"
          : "note",
        message: { text: `${d.decision}: ${r.agent} ${r.action} (${r.label}): ${x.message}` },
        locations: [location(x)],
        properties: { decision: d.decision, input: r.label, policyHash: d.policyHash },
      });
    }
  }
  return JSON.stringify(run(out, out.map((o) => (o as { ruleId: string }).ruleId)), null, 2) + "\n";
}
