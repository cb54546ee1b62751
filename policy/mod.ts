/**
 * Governance policy: the DSL parser, linter, formatter, compiler, evaluator, explainer, test
 * runner and the `infraveil policy` commands (see `./main`). Pure: reads no file and no clock
 * of its own unless a default is used.
 *
 * The control plane and the agent enforce the same policy text, identified by its content hash:
 *
 * ```ts
 * import { compilePolicy, evaluate, parsePolicy, validateAction } from "@infraveil/policy";
 * import assert from "node:assert/strict";
 *
 * const text = `policy "production" {
 *   version 1
 *   deploy {
 *     require_approval true
 *     block_paths ".env", "secrets/**", "**\/id_rsa"
 *     max_files 50
 *   }
 *   agent "deployer" {
 *     allow restart, deploy, rollback
 *     deny delete, db_migrate, drop_table
 *     blast_radius single_host
 *   }
 * }
 * `;
 * const parsed = parsePolicy(text, { file: "infraveil.policy" });
 * const compiled = compilePolicy(parsed);
 * const action = { agent: "deployer", action: "deploy", files: ["src/app.ts"], targets: ["web-1"] };
 * assert.deepEqual(validateAction(action), []);
 * const d = evaluate(compiled, action, { now: Date.parse("2026-06-01T00:00:00Z") });
 * assert.equal(d.decision, "approval_required");
 * assert.equal(d.policyHash, compiled.hash);
 * ```
 *
 * @module
 */
export type * from "./types.ts";
export { parsePolicy } from "./parse.ts";
export { lintPolicy, SUPPORTED_VERSIONS } from "./lint.ts";
export { compilePolicy, decisionFor } from "./compile.ts";
export { compileDocument, type CompiledPolicy, evaluate } from "./evaluate.ts";
export { explainAction, type ExplainStep, type Explanation } from "./explain.ts";
export { formatPolicy } from "./format.ts";
export { policyHash } from "./hash.ts";
export { canonicalPolicyText } from "./_canonical.ts";
export {
  type ActionError,
  type ActionInput,
  actionSchema,
  readActions,
  validateAction,
} from "./action.ts";
export { compileGlob, type GlobMatcher, isNormalizedPath } from "./glob.ts";
export {
  parseTestSuite,
  type PolicyTestCase,
  type PolicyTestResult,
  type PolicyTestSuite,
  runPolicyTests,
} from "./testing.ts";
export { ACTION_NAMES, ACTIONS, isMutating } from "./vocabulary.ts";
export { PolicyError } from "./error.ts";
