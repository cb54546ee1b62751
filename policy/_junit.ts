/**
 * JUnit XML reports for lint, check and policy tests (for CI test-report widgets). Loaded only
 * on demand.
 *
 * @module
 */
import type { CheckResult } from "./_cli_check.ts";
import type { Diagnostic } from "./types.ts";

function esc(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c]!,
  )
    // XML 1.0 cannot carry most control characters; replace them.
    // deno-lint-ignore no-control-regex
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, "\ufffd");
}

/** A test case for the JUnit writer. */
export interface JunitCase {
  /** Test name. */
  name: string;
  /** Class name (the group). */
  classname: string;
  /** Failure message and details, when failed. */
  failure?: { message: string; body: string };
}

/** Serialize one JUnit test suite. */
export function junit(suite: string, cases: readonly JunitCase[]): string {
  const failures = cases.filter((c) => c.failure).length;
  let out = `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="${
    esc(suite)
  }" tests="${cases.length}" failures="${failures}">\n`;
  out += `  <testsuite name="${
    esc(suite)
  }" tests="${cases.length}" failures="${failures}" errors="0" skipped="0">\n`;
  for (const c of cases) {
    out += `    <testcase name="${esc(c.name)}" classname="${esc(c.classname)}"`;
    if (!c.failure) {
      out += "/>\n";
      continue;
    }
    out += `>\n      <failure message="${esc(c.failure.message)}">${
      esc(c.failure.body)
    }</failure>\n    </testcase>\n`;
  }
  return out + "  </testsuite>\n</testsuites>\n";
}

/** Lint as JUnit: one case per file, failed when it has errors. */
export function lintJunit(diags: readonly Diagnostic[], files: readonly string[]): string {
  return junit(
    "infraveil policy lint",
    files.map((f) => {
      const mine = diags.filter((d) => d.file === f);
      const errors = mine.filter((d) => d.severity === "error");
      const body = mine.map((d) =>
        `${d.file}:${d.line}:${d.col}: ${d.severity}[${d.code}]: ${d.message}`
      )
        .join("\n");
      return {
        name: f,
        classname: "policy.lint",
        ...(errors.length ? { failure: { message: `${errors.length} error(s)`, body } } : {}),
      };
    }),
  );
}

/** Check as JUnit: one case per action, failed when denied (or gated, with --fail-on-approval). */
export function checkJunit(results: readonly CheckResult[]): string {
  return junit(
    "infraveil policy check",
    results.map((r) => {
      const d = r.decision;
      const body = d.reasons.map((x) =>
        `${x.file}:${x.line}:${x.col} ${x.effect} ${x.rule}: ${x.message}`
      )
        .join("\n");
      return {
        name: `${r.label} ${r.agent} ${r.action}`,
        classname: "policy.check",
        ...(r.failed ? { failure: { message: d.decision, body } } : {}),
      };
    }),
  );
}
