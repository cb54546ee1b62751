/**
 * `explain`: every rule considered for one action, whether it held, and where it is written.
 * The decision itself comes from the compiled evaluator, so explain never disagrees with check.
 *
 * @module
 */
import { type CompiledPolicy, evaluate } from "./evaluate.ts";
import { compileGlob, isNormalizedPath } from "./glob.ts";
import type { Decision, EvaluateOptions, Loc, PolicyAction, Reason } from "./types.ts";
import { isMutating } from "./vocabulary.ts";

/** One rule considered: the condition, whether it held, and what holding means. */
export interface ExplainStep {
  /** Rule id, as in decision reasons. */
  rule: string;
  /** The condition, in words. */
  condition: string;
  /** Whether the condition held. */
  result: boolean;
  /** What a true condition does: select, grant, deny, require approval, or nothing. */
  effect: "select" | "allow" | "deny" | "approval" | "note" | "none";
  /** Policy file. */
  file: string;
  /** 1-based line. */
  line: number;
  /** 1-based column. */
  col: number;
}

/** The result of {@linkcode explainAction}. */
export interface Explanation {
  /** The decision, exactly as {@linkcode evaluate} returns it. */
  decision: Decision;
  /** Every rule considered, in evaluation order. */
  steps: ExplainStep[];
}

/**
 * Explain how a compiled policy decides an action.
 *
 * @param compiled The compiled policy.
 * @param action The action.
 * @param options As for {@linkcode evaluate}.
 * @returns The decision and every rule considered, true or false, with its location.
 *
 * @example
 * ```ts
 * import { compilePolicy, explainAction, parsePolicy } from "@infraveil/policy";
 * import assert from "node:assert/strict";
 *
 * const c = compilePolicy(parsePolicy('policy "p" {\n  version 1\n  agent "a" {\n    allow restart\n  }\n}\n'));
 * const e = explainAction(c, { agent: "a", action: "restart" });
 * assert.equal(e.decision.decision, "allow");
 * assert.ok(e.steps.some((s) => s.rule === "agent.allow" && s.result));
 * ```
 */
export function explainAction(
  compiled: CompiledPolicy,
  action: PolicyAction,
  options: EvaluateOptions = {},
): Explanation {
  const decision = evaluate(compiled, action, options);
  const steps: ExplainStep[] = [];
  const step = (
    rule: string,
    effect: ExplainStep["effect"],
    loc: Loc,
    result: boolean,
    condition: string,
  ) =>
    steps.push({ rule, condition, result, effect, file: loc.file, line: loc.line, col: loc.col });
  const doc = compiled.document;
  if (decision.environment === null) {
    const r: Reason = decision.reasons[0];
    step(r.rule, "deny", r, true, r.message);
    return { decision, steps };
  }
  const pol = doc.policies.find((p) => p.environment === decision.environment)!;
  const act = action.action;
  step("environment", "select", pol.loc, true, `policy "${pol.environment}" governs the action`);
  const agent = pol.agents.find((a) => a.name === action.agent);
  step(
    "agent.unknown",
    "deny",
    agent?.loc ?? pol.loc,
    agent === undefined,
    `agent ${JSON.stringify(action.agent)} is not defined`,
  );
  if (!agent) return { decision, steps };
  for (const d of agent.deny) {
    step("agent.deny", "deny", d.loc, d.value === act, `deny ${d.value} matches "${act}"`);
  }
  if (agent.deny.some((d) => d.value === act)) return { decision, steps };
  for (const a of agent.allow) {
    step("agent.allow", "allow", a.loc, a.value === act, `allow ${a.value} matches "${act}"`);
  }
  let granted = agent.allow.some((a) => a.value === act);
  if (!granted && act === "remediate") {
    const at = pol.remediation?.loc ?? agent.loc;
    step(
      "remediation",
      "allow",
      at,
      pol.remediation !== undefined,
      "a remediation block lets any agent request remediate",
    );
    granted = pol.remediation !== undefined;
  }
  if (!granted) {
    if (act === "remediate") {
      step(
        "remediation",
        "deny",
        agent.loc,
        true,
        `agent "${agent.name}" may not remediate: no remediation block and remediate is not in its allow list`,
      );
    } else {
      step(
        "agent.allow",
        "deny",
        agent.allowLoc ?? agent.loc,
        true,
        `"${act}" is not in agent "${agent.name}"'s allow list`,
      );
    }
    return { decision, steps };
  }
  const now = options.now === undefined ? Date.now() : Number(options.now);
  for (const f of pol.freezes) {
    const inside = isMutating(act) && f.startMs <= now && now < f.endMs;
    step(
      "freeze",
      options.breakGlass ? "note" : "deny",
      f.loc,
      inside,
      `a mutating action at ${new Date(now).toISOString()} falls in ${f.start} .. ${f.end}${
        options.breakGlass ? " (lifted by break-glass)" : ""
      }`,
    );
  }
  const ao = agent.actions.find((o) => o.action === act);
  const po = pol.actions.find((o) => o.action === act);
  if (act === "deploy" || act === "rollback") {
    const files = Array.isArray(action.files) ? action.files : undefined;
    const at = pol.deploy?.loc ?? agent.loc;
    step("files.required", "deny", at, files === undefined, `${act} lists no "files"`);
    if (files) {
      const bad = files.filter((f) => typeof f !== "string" || !isNormalizedPath(f));
      step(
        "files.invalid",
        "deny",
        at,
        bad.length > 0,
        bad.length
          ? `files not normalized: ${bad.map((f) => JSON.stringify(f)).join(", ")}`
          : "every file is a normalized path",
      );
      for (const g of pol.deploy?.blockPaths ?? []) {
        const m = compileGlob(g.value);
        const hits = files.filter((f) => typeof f === "string" && isNormalizedPath(f) && m.test(f));
        step(
          "deploy.block_paths",
          "deny",
          g.loc,
          hits.length > 0,
          `block_paths ${JSON.stringify(g.value)} matches ${
            hits.length ? hits.map((f) => JSON.stringify(f)).join(", ") : "no changed file"
          }`,
        );
      }
      const max = ao?.maxFiles ?? po?.maxFiles;
      const eff = max ?? pol.deploy?.maxFiles;
      if (eff) {
        step(
          max ? "action.max_files" : "deploy.max_files",
          "deny",
          eff.loc,
          files.length > eff.value,
          `${files.length} files exceed max_files ${eff.value}`,
        );
      }
    }
  }
  const radius = ao?.blastRadius ?? agent.blastRadius ?? po?.blastRadius;
  const n = Array.isArray(action.targets) ? action.targets.length : 0;
  const kind = radius?.value ?? "single_host";
  const wide = kind === "single_host"
    ? n > 1
    : kind === "service"
    ? n > 1 && !action.service
    : false;
  step(
    "blast_radius",
    "deny",
    radius?.loc ?? agent.loc,
    wide,
    `${n} target(s) exceed blast_radius ${kind}${radius ? "" : " (the default)"}`,
  );
  if (act === "remediate" && pol.remediation) {
    const blocked = pol.remediation.blockCategories;
    if (action.category === undefined) {
      step(
        "remediation.category_required",
        "deny",
        pol.remediation.loc,
        blocked.length > 0,
        'the action has no "category" while categories are blocked',
      );
    }
    for (const c of blocked) {
      step(
        "remediation.block_categories",
        "deny",
        c.loc,
        c.value === action.category,
        `category ${c.value} matches ${JSON.stringify(action.category ?? null)}`,
      );
    }
  }
  const gov = act === "deploy" || act === "rollback"
    ? pol.deploy
    : act === "remediate"
    ? pol.remediation
    : undefined;
  const req = ao?.requireApproval ?? po?.requireApproval ?? gov?.requireApproval;
  if (req) {
    step(
      "require_approval",
      "approval",
      req.loc,
      req.value,
      `require_approval ${req.value} for "${act}"`,
    );
    const count = ao?.approvals ?? po?.approvals ?? gov?.approvals ?? pol.approvals;
    if (count && req.value) {
      step("approvals", "approval", count.loc, true, `${count.value} distinct approver(s)`);
    }
  } else {
    step("require_approval", "none", pol.loc, false, `no require_approval applies to "${act}"`);
  }
  return { decision, steps };
}
