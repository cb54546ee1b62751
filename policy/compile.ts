/**
 * Compiling a parsed policy for enforcement: refuses policies with lint errors, computes the
 * content hash, and builds the fast evaluator's tables.
 *
 * @module
 */
import { PolicyError } from "./error.ts";
import { compileDocument, type CompiledPolicy, evaluate } from "./evaluate.ts";
import { policyHash } from "./hash.ts";
import { lintPolicy } from "./lint.ts";
import { parsePolicy } from "./parse.ts";
import type { Decision, EvaluateOptions, ParsedPolicy, PolicyAction } from "./types.ts";

/**
 * Compile a parsed policy for fast evaluation.
 *
 * @param parsed The result of {@linkcode parsePolicy}.
 * @param options `hash`: a content hash already computed for this policy (skips hashing).
 * @returns The compiled policy, carrying its content hash.
 * @throws {PolicyError} `INVALID_POLICY` when the policy has lint errors (in `diagnostics`).
 *
 * @example
 * ```ts
 * import { compilePolicy, parsePolicy } from "@infraveil/policy";
 * import assert from "node:assert/strict";
 *
 * const compiled = compilePolicy(parsePolicy('policy "p" {\n  version 1\n  agent "a" {\n    allow restart\n  }\n}\n'));
 * assert.deepEqual(compiled.environments, ["p"]);
 * assert.match(compiled.hash, /^sha256:/);
 * ```
 */
export function compilePolicy(
  parsed: ParsedPolicy,
  options: { hash?: string } = {},
): CompiledPolicy {
  const errors = lintPolicy(parsed).filter((d) => d.severity === "error");
  if (errors.length > 0) {
    const e = errors[0];
    throw new PolicyError(
      "INVALID_POLICY",
      `Cannot compile ${parsed.policy.file}: ${errors.length} lint error(s), first at ${e.file}:${e.line}:${e.col}: ${e.message}`,
      { diagnostics: errors },
    );
  }
  return compileDocument(parsed.policy, options.hash ?? policyHash(parsed.policy));
}

/**
 * One-shot convenience: parse, compile and evaluate. For repeated decisions compile once and
 * call {@linkcode evaluate}.
 *
 * @param policy Policy text or an already compiled policy.
 * @param action The action to decide.
 * @param options Evaluation options plus `file` (the policy's name in reasons).
 * @returns The decision.
 * @throws {PolicyError} `INVALID_POLICY` when the policy text has lint errors.
 *
 * @example
 * ```ts
 * import { decisionFor } from "@infraveil/policy";
 * import assert from "node:assert/strict";
 *
 * const text = 'policy "p" {\n  version 1\n  agent "a" {\n    allow restart\n  }\n}\n';
 * assert.equal(decisionFor(text, { agent: "a", action: "restart" }).decision, "allow");
 * assert.equal(decisionFor(text, { agent: "b", action: "restart" }).decision, "deny");
 * ```
 */
export function decisionFor(
  policy: string | CompiledPolicy,
  action: PolicyAction,
  options: EvaluateOptions & { file?: string } = {},
): Decision {
  const compiled = typeof policy === "string"
    ? compilePolicy(parsePolicy(policy, { file: options.file }))
    : policy;
  return evaluate(compiled, action, options);
}
