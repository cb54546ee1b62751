/**
 * Policy authors' tests: a `*.policytest.json` file names a policy and lists cases (an action and
 * the expected decision); {@linkcode runPolicyTests} runs them against a compiled policy.
 *
 * @module
 */
import { validateAction } from "./action.ts";
import { type CompiledPolicy, evaluate } from "./evaluate.ts";
import { parseInstant } from "./parse.ts";
import type { Decision, DecisionKind, PolicyAction } from "./types.ts";

/** One case of a policy test file. */
export interface PolicyTestCase {
  /** Shown in reports. */
  name: string;
  /** The action (validated against the action schema). */
  action: PolicyAction;
  /** The expected decision. */
  expect: DecisionKind;
  /** Expected number of approvers (only with `approval_required`). */
  approvals?: number;
  /** Rule ids that must appear among the decision's reasons. */
  rules?: string[];
  /** Clock for this case (RFC 3339); defaults to the file's `now`, else the real clock. */
  now?: string;
  /** Evaluate with break-glass in effect. */
  break_glass?: boolean;
}

/** A parsed policy test file. */
export interface PolicyTestSuite {
  /** Policy file, relative to the test file. */
  policy?: string;
  /** Default clock for the cases (RFC 3339). */
  now?: string;
  /** The cases. */
  cases: PolicyTestCase[];
}

/** Outcome of one case. */
export interface PolicyTestResult {
  /** Case name. */
  name: string;
  /** Whether every expectation held. */
  passed: boolean;
  /** What did not hold. */
  failures: string[];
  /** The actual decision. */
  actual: Decision;
}

const DECISIONS = ["allow", "approval_required", "deny"];
const CASE_KEYS = ["name", "action", "expect", "approvals", "rules", "now", "break_glass"];

/**
 * Validate a parsed test file.
 *
 * @param value The parsed JSON.
 * @returns The suite, or the errors (each naming a JSON path).
 */
export function parseTestSuite(value: unknown): { suite?: PolicyTestSuite; errors: string[] } {
  const errors: string[] = [];
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { errors: ['$: a test file is an object: {"policy": …, "cases": […]}'] };
  }
  const v = value as Record<string, unknown>;
  for (const k of Object.keys(v)) {
    if (!["policy", "now", "cases", "$schema"].includes(k)) {
      errors.push(`$.${k}: unknown property; allowed: policy, now, cases`);
    }
  }
  if (v.policy !== undefined && typeof v.policy !== "string") {
    errors.push("$.policy: must be a string (a path relative to the test file)");
  }
  if (v.now !== undefined && (typeof v.now !== "string" || Number.isNaN(parseInstant(v.now)))) {
    errors.push('$.now: must be an RFC 3339 instant like "2026-12-25T12:00:00Z"');
  }
  if (!Array.isArray(v.cases) || v.cases.length === 0) {
    errors.push("$.cases: must be a non-empty array of cases");
    return { errors };
  }
  v.cases.forEach((c: unknown, i: number): void => {
    const p = `$.cases[${i}]`;
    if (typeof c !== "object" || c === null || Array.isArray(c)) {
      errors.push(`${p}: must be an object`);
      return;
    }
    const o = c as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      if (!CASE_KEYS.includes(k)) {
        errors.push(`${p}.${k}: unknown property; allowed: ${CASE_KEYS.join(", ")}`);
      }
    }
    if (typeof o.name !== "string" || o.name === "") {
      errors.push(`${p}.name: must be a non-empty string`);
    }
    if (typeof o.expect !== "string" || !DECISIONS.includes(o.expect)) {
      errors.push(`${p}.expect: must be one of ${DECISIONS.join(", ")}`);
    }
    if (
      o.approvals !== undefined && (!Number.isInteger(o.approvals) || (o.approvals as number) < 0)
    ) errors.push(`${p}.approvals: must be a whole number`);
    if (
      o.rules !== undefined &&
      (!Array.isArray(o.rules) || o.rules.some((r) => typeof r !== "string"))
    ) errors.push(`${p}.rules: must be an array of rule ids`);
    if (o.now !== undefined && (typeof o.now !== "string" || Number.isNaN(parseInstant(o.now)))) {
      errors.push(`${p}.now: must be an RFC 3339 instant`);
    }
    if (o.break_glass !== undefined && typeof o.break_glass !== "boolean") {
      errors.push(`${p}.break_glass: must be true or false`);
    }
    if (o.action === undefined) errors.push(`${p}.action: is required`);
    else {for (const e of validateAction(o.action, `${p}.action`)) {
        errors.push(`${e.path}: ${e.message}`);
      }}
  });
  return errors.length ? { errors } : { suite: value as PolicyTestSuite, errors };
}

/**
 * Run a validated suite against a compiled policy.
 *
 * @param suite From {@linkcode parseTestSuite}.
 * @param compiled The policy under test.
 * @param options `now`: the clock for cases that name none (defaults to the real clock).
 * @returns One result per case, in order.
 *
 * @example
 * ```ts
 * import { compilePolicy, parsePolicy, parseTestSuite, runPolicyTests } from "@infraveil/policy";
 * import assert from "node:assert/strict";
 *
 * const c = compilePolicy(parsePolicy('policy "p" {\n  version 1\n  agent "a" {\n    allow restart\n  }\n}\n'));
 * const { suite } = parseTestSuite({ cases: [
 *   { name: "a restarts", action: { agent: "a", action: "restart" }, expect: "allow" },
 *   { name: "b cannot", action: { agent: "b", action: "restart" }, expect: "deny", rules: ["agent.unknown"] },
 * ] });
 * assert.ok(runPolicyTests(suite!, c).every((r) => r.passed));
 * ```
 */
export function runPolicyTests(
  suite: PolicyTestSuite,
  compiled: CompiledPolicy,
  options: { now?: number } = {},
): PolicyTestResult[] {
  const fileNow = suite.now === undefined ? undefined : parseInstant(suite.now);
  return suite.cases.map((c) => {
    const now = c.now !== undefined ? parseInstant(c.now) : fileNow ?? options.now ?? Date.now();
    const actual = evaluate(compiled, c.action, { now, breakGlass: c.break_glass === true });
    const failures: string[] = [];
    if (actual.decision !== c.expect) failures.push(`expected ${c.expect}, got ${actual.decision}`);
    if (c.approvals !== undefined && actual.approvals !== c.approvals) {
      failures.push(`expected ${c.approvals} approval(s), got ${actual.approvals}`);
    }
    for (const r of c.rules ?? []) {
      if (!actual.reasons.some((x) => x.rule === r)) {
        failures.push(`expected a reason from rule ${r}`);
      }
    }
    return { name: c.name, passed: failures.length === 0, failures, actual };
  });
}
