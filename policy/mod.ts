/**
 * Governance policy: the DSL parser, linter, formatter, evaluator, test runner and the
 * `infraveil policy` commands. Pure: reads no file itself.
 *
 * @module
 */
export {};
