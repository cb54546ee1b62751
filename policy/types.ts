/**
 * Types shared by the policy parser, linter, compiler, evaluator and CLI.
 *
 * @module
 */

/** A position in a policy file: 1-based line and column (UTF-16 code units). */
export interface Loc {
  /** The file name given to {@linkcode parsePolicy} (`"policy"` when none). */
  file: string;
  /** 1-based line. */
  line: number;
  /** 1-based column. */
  col: number;
}

/** Severity of a diagnostic: errors make a policy unusable, warnings do not. */
export type Severity = "error" | "warning";

/** One problem found in a policy file or an action. */
export interface Diagnostic {
  /** Stable code, e.g. `PL203`; see docs/policy.md for the list. */
  code: string;
  /** `error` blocks `check` (exit 3); `warning` does not. */
  severity: Severity;
  /** What is wrong and, where possible, how to fix it. */
  message: string;
  /** File name. */
  file: string;
  /** 1-based line. */
  line: number;
  /** 1-based column. */
  col: number;
}

/** A value together with where it was written. */
export interface Located<T> {
  /** The value. */
  value: T;
  /** Where it was written. */
  loc: Loc;
}

/** How many hosts one action may touch. */
export type BlastRadius = "single_host" | "service" | "fleet";

/** A parsed policy file: one or more `policy "<environment>"` blocks. */
export interface PolicyDocument {
  /** File name used in diagnostics and reasons. */
  file: string;
  /** The policy blocks, in source order. */
  policies: PolicyBlock[];
}

/** One `policy "<environment>" { … }` block. */
export interface PolicyBlock {
  /** The environment this block governs. */
  environment: string;
  /** Location of the `policy` keyword. */
  loc: Loc;
  /** `version N`. */
  version?: Located<number>;
  /** `approvals N` at policy level: the default number of distinct approvers. */
  approvals?: Located<number>;
  /** `freeze "start" .. "end" ["reason"]` windows. */
  freezes: FreezeWindow[];
  /** The `deploy { … }` block. */
  deploy?: DeployBlock;
  /** The `remediation { … }` block. */
  remediation?: RemediationBlock;
  /** `agent "<name>" { … }` blocks, in source order. */
  agents: AgentBlock[];
  /** Policy-level `action <name> { … }` overrides. */
  actions: ActionOverride[];
}

/** A freeze window: mutating actions are denied in `[start, end)` unless break-glass. */
export interface FreezeWindow {
  /** Start instant as written (RFC 3339). */
  start: string;
  /** End instant as written (RFC 3339). */
  end: string;
  /** Start in epoch milliseconds (NaN when invalid). */
  startMs: number;
  /** End in epoch milliseconds (NaN when invalid). */
  endMs: number;
  /** Optional reason shown in decisions. */
  reason?: string;
  /** Location of the `freeze` keyword. */
  loc: Loc;
}

/** The `deploy { … }` block, governing `deploy` and `rollback`. */
export interface DeployBlock {
  /** Location of the `deploy` keyword. */
  loc: Loc;
  /** `require_approval true|false`. */
  requireApproval?: Located<boolean>;
  /** `approvals N`. */
  approvals?: Located<number>;
  /** `block_paths "glob", …` in source order. */
  blockPaths: Located<string>[];
  /** `max_files N`. */
  maxFiles?: Located<number>;
}

/** The `remediation { … }` block, governing `remediate`. */
export interface RemediationBlock {
  /** Location of the `remediation` keyword. */
  loc: Loc;
  /** `block_categories a, b`. */
  blockCategories: Located<string>[];
  /** `require_approval true|false`. */
  requireApproval?: Located<boolean>;
  /** `approvals N`. */
  approvals?: Located<number>;
}

/** An `agent "<name>" { … }` block. */
export interface AgentBlock {
  /** The agent's name, matched exactly against the action's `agent`. */
  name: string;
  /** Location of the `agent` keyword. */
  loc: Loc;
  /** Actions listed in `allow` statements, in source order. */
  allow: Located<string>[];
  /** Location of the first `allow` statement. */
  allowLoc?: Loc;
  /** Actions listed in `deny` statements, in source order. */
  deny: Located<string>[];
  /** `blast_radius single_host|service|fleet`. */
  blastRadius?: Located<BlastRadius>;
  /** Agent-level `action <name> { … }` overrides. */
  actions: ActionOverride[];
}

/** An `action <name> { … }` override, at policy level or inside an agent. */
export interface ActionOverride {
  /** The action it applies to. */
  action: string;
  /** Location of the `action` keyword. */
  loc: Loc;
  /** `require_approval true|false`. */
  requireApproval?: Located<boolean>;
  /** `approvals N`. */
  approvals?: Located<number>;
  /** `max_files N`. */
  maxFiles?: Located<number>;
  /** `blast_radius …`. */
  blastRadius?: Located<BlastRadius>;
}

/** Result of {@linkcode parsePolicy}: the model plus syntax and structure diagnostics. */
export interface ParsedPolicy {
  /** The policy model (as much as could be understood). */
  policy: PolicyDocument;
  /** Syntax and structure diagnostics; run {@linkcode lintPolicy} for all of them. */
  diagnostics: Diagnostic[];
}

/** The input to a decision: one action an agent wants to perform. */
export interface PolicyAction {
  /** The agent asking, matched against `agent "<name>"` blocks. */
  agent: string;
  /** The action, e.g. `deploy`. */
  action: string;
  /** Selects the `policy "<environment>"` block. */
  environment?: string;
  /** The service acted on. */
  service?: string;
  /** Hosts acted on; executors never act beyond this list. */
  targets?: string[];
  /** Changed files (repository-relative, `/`-separated), required for deploy and rollback. */
  files?: string[];
  /** Finding category, required for `remediate`. */
  category?: string;
  /** Free text for approvers. */
  reason?: string;
}

/** The three outcomes. */
export type DecisionKind = "allow" | "approval_required" | "deny";

/** One reason behind a decision, naming the rule and where it is written. */
export interface Reason {
  /** Rule id, e.g. `deploy.block_paths`; see docs/policy.md. */
  rule: string;
  /** What this reason contributed. */
  effect: "allow" | "approval" | "deny" | "note";
  /** Human-readable explanation. */
  message: string;
  /** Policy file. */
  file: string;
  /** 1-based line of the rule. */
  line: number;
  /** 1-based column of the rule. */
  col: number;
}

/** The outcome of evaluating one action. */
export interface Decision {
  /** `deny` beats everything; then `approval_required`; else `allow`. */
  decision: DecisionKind;
  /** Why, in evaluation order; never empty. */
  reasons: Reason[];
  /** Distinct approvers required (0 unless `approval_required`). */
  approvals: number;
  /** The environment whose policy block decided, or null when none could be selected. */
  environment: string | null;
  /** Content hash of the policy file (`sha256:<hex>`). */
  policyHash: string;
}

/** Options for evaluation: the clock and break-glass. */
export interface EvaluateOptions {
  /** The current time (epoch ms or Date); defaults to `Date.now()`. */
  now?: number | Date;
  /** Break-glass in effect: lifts freeze windows and nothing else. */
  breakGlass?: boolean;
}
