/**
 * The compiled form of a policy and the fast evaluator over it. Compiling turns each agent into
 * hash maps from action name to a precomputed plan (granting reason, limits, approval reasons)
 * and each `block_paths` glob into a string-operation or RegExp matcher, so a decision is a few
 * map lookups plus one pass over the changed files. Holds no hashing code, so the CLI's `check`
 * path loads no npm module. Never throws on any action.
 *
 * @module
 */
import { compileGlobSet, isNormalizedPath } from "./glob.ts";
import type {
  Decision,
  DecisionKind,
  EvaluateOptions,
  Loc,
  PolicyAction,
  PolicyBlock,
  PolicyDocument,
  Reason,
} from "./types.ts";
import { ACTIONS } from "./vocabulary.ts";

interface Plan {
  grant: Reason;
  mutating: boolean;
  files: boolean;
  filesLoc: Loc;
  maxFiles: number;
  maxRule: string;
  maxLoc: Loc | null;
  /** 0 single_host, 1 service, 2 fleet */
  blast: 0 | 1 | 2;
  blastLoc: Loc;
  blastDefault: boolean;
  remediation: boolean;
  require: boolean;
  approvals: number;
  approvalReasons: readonly Reason[];
}

interface CompiledAgent {
  name: string;
  loc: Loc;
  allowLoc: Loc;
  denied: Map<string, Reason>;
  plans: Map<string, Plan>;
}

interface CompiledEnv {
  environment: string;
  loc: Loc;
  agents: Map<string, CompiledAgent>;
  freezes: {
    startMs: number;
    endMs: number;
    start: string;
    end: string;
    reason?: string;
    loc: Loc;
  }[];
  globs: { source: string; loc: Loc }[];
  firstGlob: (path: string) => number;
  hasRemediation: boolean;
  remediationLoc: Loc | null;
  blockedCategories: Map<string, Loc>;
}

/** A policy compiled for fast, repeated evaluation. Immutable; safe to share. */
export interface CompiledPolicy {
  /** Content hash of the policy file, `sha256:<hex>`. */
  readonly hash: string;
  /** The file name used in reasons. */
  readonly file: string;
  /** Environments defined, in source order. */
  readonly environments: readonly string[];
  /** The parsed model it was compiled from. */
  readonly document: PolicyDocument;
  /** @internal */
  readonly _envs: ReadonlyMap<string, CompiledEnv>;
  /** @internal */
  readonly _single: CompiledEnv | null;
}

const BLAST = { single_host: 0, service: 1, fleet: 2 } as const;
const BLAST_NAME = ["single_host", "service", "fleet"] as const;

function reason(rule: string, effect: Reason["effect"], loc: Loc, message: string): Reason {
  return { rule, effect, message, file: loc.file, line: loc.line, col: loc.col };
}

const at = (l: Loc) => `${l.file}:${l.line}:${l.col}`;

function compileEnv(p: PolicyBlock): CompiledEnv {
  const agents = new Map<string, CompiledAgent>();
  const blockedCategories = new Map<string, Loc>();
  for (const c of p.remediation?.blockCategories ?? []) {
    if (!blockedCategories.has(c.value)) blockedCategories.set(c.value, c.loc);
  }
  for (const a of p.agents) {
    if (agents.has(a.name)) continue; // duplicate agents are lint errors; first wins
    const denied = new Map<string, Reason>();
    for (const d of a.deny) {
      if (!denied.has(d.value)) {
        denied.set(
          d.value,
          reason("agent.deny", "deny", d.loc, `agent "${a.name}" is denied "${d.value}"`),
        );
      }
    }
    const grants = new Map<string, Reason>();
    for (const g of a.allow) {
      if (!grants.has(g.value)) {
        grants.set(
          g.value,
          reason("agent.allow", "allow", g.loc, `agent "${a.name}" is allowed "${g.value}"`),
        );
      }
    }
    if (p.remediation && !grants.has("remediate")) {
      grants.set(
        "remediate",
        reason(
          "remediation",
          "allow",
          p.remediation.loc,
          `any agent may request remediate under the remediation block`,
        ),
      );
    }
    const plans = new Map<string, Plan>();
    for (const [act, grant] of grants) {
      if (denied.has(act)) continue;
      const ao = a.actions.find((o) => o.action === act);
      const po = p.actions.find((o) => o.action === act);
      const files = act === "deploy" || act === "rollback";
      const gov = files ? p.deploy : act === "remediate" ? p.remediation : undefined;
      const ovMax = ao?.maxFiles ?? po?.maxFiles;
      const max = ovMax ?? (files ? p.deploy?.maxFiles : undefined);
      const radius = ao?.blastRadius ?? a.blastRadius ?? po?.blastRadius;
      const req = ao?.requireApproval ?? po?.requireApproval ?? gov?.requireApproval;
      const count = ao?.approvals ?? po?.approvals ?? gov?.approvals ?? p.approvals;
      const approvals = count?.value ?? 1;
      const approvalReasons: Reason[] = [];
      if (req?.value) {
        approvalReasons.push(
          reason(
            "require_approval",
            "approval",
            req.loc,
            `"${act}" requires approval (require_approval true)`,
          ),
        );
        if (count) {
          approvalReasons.push(
            reason(
              "approvals",
              "approval",
              count.loc,
              `${approvals} distinct approver${approvals === 1 ? "" : "s"} required`,
            ),
          );
        }
      }
      plans.set(act, {
        grant,
        mutating: Object.hasOwn(ACTIONS, act) && ACTIONS[act].mutating,
        files,
        filesLoc: p.deploy?.loc ?? a.loc,
        maxFiles: max?.value ?? Infinity,
        maxRule: ovMax ? "action.max_files" : "deploy.max_files",
        maxLoc: max?.loc ?? null,
        blast: BLAST[radius?.value ?? "single_host"],
        blastLoc: radius?.loc ?? a.loc,
        blastDefault: radius === undefined,
        remediation: act === "remediate" && p.remediation !== undefined,
        require: req?.value === true,
        approvals: req?.value ? approvals : 0,
        approvalReasons: Object.freeze(approvalReasons),
      });
    }
    agents.set(a.name, {
      name: a.name,
      loc: a.loc,
      allowLoc: a.allowLoc ?? a.loc,
      denied,
      plans,
    });
  }
  return {
    environment: p.environment,
    loc: p.loc,
    agents,
    freezes: p.freezes.map((f) => ({ ...f })),
    globs: (p.deploy?.blockPaths ?? []).map((g) => ({ source: g.value, loc: g.loc })),
    firstGlob: compileGlobSet((p.deploy?.blockPaths ?? []).map((g) => g.value)),
    hasRemediation: p.remediation !== undefined,
    remediationLoc: p.remediation?.loc ?? null,
    blockedCategories,
  };
}

/**
 * Compile a parsed document with a known content hash. Does not lint: callers make sure the
 * document has no lint errors (see `compilePolicy`, which does).
 */
export function compileDocument(doc: PolicyDocument, hash: string): CompiledPolicy {
  const envs = new Map<string, CompiledEnv>();
  for (const p of doc.policies) {
    if (!envs.has(p.environment)) envs.set(p.environment, compileEnv(p));
  }
  return Object.freeze({
    hash,
    file: doc.file,
    environments: Object.freeze(doc.policies.map((p) => p.environment)),
    document: doc,
    _envs: envs,
    _single: doc.policies.length === 1 ? envs.get(doc.policies[0].environment)! : null,
  });
}

function invalidAction(a: PolicyAction): string | null {
  if (typeof a !== "object" || a === null || Array.isArray(a)) return "the action is not an object";
  if (typeof a.agent !== "string") return '"agent" must be a string';
  if (typeof a.action !== "string") return '"action" must be a string';
  if (a.environment !== undefined && typeof a.environment !== "string") {
    return '"environment" must be a string';
  }
  if (a.service !== undefined && typeof a.service !== "string") return '"service" must be a string';
  if (a.category !== undefined && typeof a.category !== "string") {
    return '"category" must be a string';
  }
  if (a.files !== undefined && !Array.isArray(a.files)) return '"files" must be an array';
  if (a.targets !== undefined && !Array.isArray(a.targets)) return '"targets" must be an array';
  return null;
}

function decide(
  c: CompiledPolicy,
  decision: DecisionKind,
  reasons: Reason[],
  environment: string | null,
  approvals: number,
): Decision {
  // Reasons precomputed at compile time are shared; callers get their own copies.
  const own: Reason[] = new Array(reasons.length);
  for (let i = 0; i < reasons.length; i++) {
    const r = reasons[i];
    own[i] = {
      rule: r.rule,
      effect: r.effect,
      message: r.message,
      file: r.file,
      line: r.line,
      col: r.col,
    };
  }
  return { decision, reasons: own, approvals, environment, policyHash: c.hash };
}

/**
 * Evaluate one action against a compiled policy. Fail closed: anything not granted is denied,
 * and a deny reason beats everything. Never throws.
 *
 * @param compiled The compiled policy.
 * @param action The action (validate untrusted input with `validateAction` first).
 * @param options `now` (the clock, for freeze windows) and `breakGlass` (lifts freezes only).
 * @returns The decision with its reasons, each naming a rule and its file:line:col.
 *
 * @example Deploying a blocked file is denied
 * ```ts
 * import { compilePolicy, evaluate, parsePolicy } from "@infraveil/policy";
 * import assert from "node:assert/strict";
 *
 * const text = `policy "production" {
 *   version 1
 *   deploy {
 *     block_paths "secrets/**"
 *   }
 *   agent "deployer" {
 *     allow deploy
 *   }
 * }
 * `;
 * const compiled = compilePolicy(parsePolicy(text, { file: "prod.policy" }));
 * const d = evaluate(compiled, { agent: "deployer", action: "deploy", files: ["secrets/k"] });
 * assert.equal(d.decision, "deny");
 * assert.equal(d.reasons[0].rule, "deploy.block_paths");
 * assert.equal(d.reasons[0].line, 4);
 * ```
 */
export function evaluate(
  compiled: CompiledPolicy,
  action: PolicyAction,
  options: EvaluateOptions = {},
): Decision {
  const bad = invalidAction(action);
  const first = compiled.document.policies[0]?.loc ?? { file: compiled.file, line: 1, col: 1 };
  if (bad !== null) {
    return decide(
      compiled,
      "deny",
      [
        reason("action.invalid", "deny", first, `invalid action: ${bad}`),
      ],
      null,
      0,
    );
  }
  const env = action.environment === undefined
    ? compiled._single
    : compiled._envs.get(action.environment);
  if (env === null || env === undefined) {
    const names = compiled.environments.map((e) => JSON.stringify(e)).join(", ") || "none";
    const msg = action.environment === undefined
      ? `the action names no "environment" and ${compiled.file} defines ${compiled.environments.length} policy blocks (${names}); set "environment"`
      : `no policy block for environment ${
        JSON.stringify(action.environment)
      }; ${compiled.file} defines: ${names}`;
    return decide(compiled, "deny", [reason("environment", "deny", first, msg)], null, 0);
  }
  const environment = env.environment;
  const act = action.action;
  const agent = env.agents.get(action.agent);
  if (agent === undefined) {
    return decide(
      compiled,
      "deny",
      [
        reason(
          "agent.unknown",
          "deny",
          env.loc,
          `agent ${JSON.stringify(action.agent)} is not defined in policy ${
            JSON.stringify(environment)
          } (unknown agents are denied)`,
        ),
      ],
      environment,
      0,
    );
  }
  const denied = agent.denied.get(act);
  if (denied !== undefined) return decide(compiled, "deny", [denied], environment, 0);
  const plan = agent.plans.get(act);
  if (plan === undefined) {
    const r = act === "remediate"
      ? reason(
        "remediation",
        "deny",
        agent.loc,
        `agent "${agent.name}" may not remediate: the policy has no remediation block and the agent does not allow remediate`,
      )
      : reason(
        "agent.allow",
        "deny",
        agent.allowLoc,
        `agent "${agent.name}" is not allowed ${JSON.stringify(act)} (not in its allow list)`,
      );
    return decide(compiled, "deny", [r], environment, 0);
  }

  let violations: Reason[] | null = null;
  let notes: Reason[] | null = null;
  if (plan.mutating && env.freezes.length > 0) {
    const now = options.now === undefined ? Date.now() : Number(options.now);
    for (const f of env.freezes) {
      if (f.startMs <= now && now < f.endMs) {
        const why = f.reason === undefined ? "" : `: ${f.reason}`;
        if (options.breakGlass) {
          (notes ??= []).push(
            reason(
              "freeze",
              "note",
              f.loc,
              `freeze ${f.start} .. ${f.end} lifted by break-glass${why}`,
            ),
          );
        } else {
          (violations ??= []).push(
            reason(
              "freeze",
              "deny",
              f.loc,
              `mutating actions are frozen from ${f.start} until ${f.end}${why} (break-glass lifts a freeze)`,
            ),
          );
        }
      }
    }
  }

  if (plan.files) {
    const files = action.files;
    if (files === undefined) {
      (violations ??= []).push(
        reason(
          "files.required",
          "deny",
          plan.filesLoc,
          `${act} needs "files" (the changed files) so block_paths and max_files can be checked`,
        ),
      );
    } else {
      const firstGlob = env.globs.length > 0 ? env.firstGlob : null;
      for (let i = 0; i < files.length; i++) {
        const f = files[i];
        if (typeof f !== "string" || !isNormalizedPath(f)) {
          (violations ??= []).push(
            reason(
              "files.invalid",
              "deny",
              plan.filesLoc,
              `file ${
                JSON.stringify(f)
              } is not a normalized repository-relative path ("/"-separated, no leading "/", no "." or ".." or empty segments)`,
            ),
          );
          continue;
        }
        const g = firstGlob === null ? -1 : firstGlob(f);
        if (g >= 0) {
          const glob = env.globs[g];
          (violations ??= []).push(
            reason(
              "deploy.block_paths",
              "deny",
              glob.loc,
              `file ${JSON.stringify(f)} matches block_paths ${JSON.stringify(glob.source)} (${
                at(glob.loc)
              })`,
            ),
          );
        }
      }
      if (files.length > plan.maxFiles) {
        (violations ??= []).push(
          reason(
            plan.maxRule,
            "deny",
            plan.maxLoc!,
            `${act} changes ${files.length} files; max_files is ${plan.maxFiles}`,
          ),
        );
      }
    }
  }

  if (plan.blast !== 2) {
    const n = action.targets === undefined ? 0 : action.targets.length;
    if (n > 1 && (plan.blast === 0 || !action.service)) {
      const name = BLAST_NAME[plan.blast];
      const dflt = plan.blastDefault ? " (the default)" : "";
      (violations ??= []).push(
        reason(
          "blast_radius",
          "deny",
          plan.blastLoc,
          plan.blast === 0
            ? `${n} targets exceed blast_radius single_host${dflt}: at most one host`
            : `${n} targets but no "service": blast_radius ${name} needs every target in one named service`,
        ),
      );
    }
  }

  if (plan.remediation) {
    if (action.category === undefined) {
      if (env.blockedCategories.size > 0) {
        (violations ??= []).push(
          reason(
            "remediation.category_required",
            "deny",
            env.remediationLoc!,
            `remediate needs a "category" because the remediation block blocks categories`,
          ),
        );
      }
    } else {
      const hit = env.blockedCategories.get(action.category);
      if (hit !== undefined) {
        (violations ??= []).push(
          reason(
            "remediation.block_categories",
            "deny",
            hit,
            `category ${JSON.stringify(action.category)} is blocked by block_categories`,
          ),
        );
      }
    }
  }

  if (violations !== null) return decide(compiled, "deny", violations, environment, 0);
  const reasons: Reason[] = [plan.grant];
  if (notes !== null) reasons.push(...notes);
  if (plan.require) {
    reasons.push(...plan.approvalReasons);
    return decide(compiled, "approval_required", reasons, environment, plan.approvals);
  }
  return decide(compiled, "allow", reasons, environment, 0);
}
