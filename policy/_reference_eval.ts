/**
 * The reference evaluator: the decision rules of docs/policy.md written as plainly as possible,
 * straight over the parsed model, with its own glob matcher. It is slow on purpose; the
 * differential tests hold the compiled evaluator to it. Never used to enforce anything.
 *
 * @module
 */
import type {
  Decision,
  EvaluateOptions,
  Loc,
  PolicyAction,
  PolicyDocument,
  Reason,
} from "./types.ts";

const MUTATING = [
  "deploy",
  "rollback",
  "restart",
  "remediate",
  "scale",
  "config_change",
  "rotate_secret",
  "delete",
  "db_migrate",
  "drop_table",
];

/** Paths are relative, `/`-separated, without empty, `.` or `..` segments, `\` or controls. */
const NORMALIZED =
  // deno-lint-ignore no-control-regex
  /^(?!\/)(?!.*\/\/)(?!.*\/$)(?!(?:.*\/)?\.\.?(?:\/|$))[^\\\u0000-\u001f]{1,4096}$/;

/** Does one glob segment (no `/`) match one path segment? Backtracking, char by char. */
function matchSegment(p: string, s: string): boolean {
  if (p === "") return s === "";
  const c = p[0];
  if (c === "*") {
    for (let k = 0; k <= s.length; k++) if (matchSegment(p.slice(1), s.slice(k))) return true;
    return false;
  }
  if (c === "?") return s !== "" && matchSegment(p.slice(1), s.slice(1));
  if (c === "\\") {
    const lit = p.length > 1 ? p[1] : "\\";
    return s[0] === lit && matchSegment(p.slice(2), s.slice(1));
  }
  if (c === "[") {
    // A class runs to the next "]"; a "]" right after "[" or "[!" is literal; "\x" escapes x.
    const negated = p[1] === "!" || p[1] === "^";
    let j = negated ? 2 : 1;
    if (p[j] === "]") j++;
    while (j < p.length && p[j] !== "]") j += p[j] === "\\" ? 2 : 1;
    if (j < p.length) {
      const chars: string[] = [];
      const dash: boolean[] = []; // an unescaped "-" that may join a range
      for (let k = negated ? 2 : 1; k < j;) {
        if (p[k] === "\\") chars.push(p[k + 1]), dash.push(false), k += 2;
        else chars.push(p[k]), dash.push(p[k] === "-"), k++;
      }
      if (s === "") return false;
      let hit = false;
      for (let q = 0; q < chars.length; q++) {
        if (q + 2 < chars.length && dash[q + 1]) {
          if (chars[q] <= s[0] && s[0] <= chars[q + 2]) hit = true;
          q += 2;
        } else if (chars[q] === s[0]) hit = true;
      }
      return hit !== negated && matchSegment(p.slice(j + 1), s.slice(1));
    }
    return s[0] === "[" && matchSegment(p.slice(1), s.slice(1)); // unclosed: a literal "["
  }
  return s !== "" && s[0] === c && matchSegment(p.slice(1), s.slice(1));
}

/** Do glob segments ps[i..] match path segments ss[j..] exactly? */
function matchSegments(ps: string[], i: number, ss: string[], j: number): boolean {
  if (i === ps.length) return j === ss.length;
  if (ps[i] === "**") {
    const min = i === ps.length - 1 ? 1 : 0; // trailing "/**" needs something inside
    for (let k = j + min; k <= ss.length; k++) if (matchSegments(ps, i + 1, ss, k)) return true;
    return false;
  }
  return j < ss.length && matchSegment(ps[i], ss[j]) && matchSegments(ps, i + 1, ss, j + 1);
}

/** Gitignore-style: the glob matches the path or one of its leading directories. */
export function referenceGlobMatch(glob: string, path: string): boolean {
  let g = glob;
  let anchored = false;
  let dirOnly = false;
  if (g.startsWith("/")) anchored = true, g = g.slice(1);
  if (g.endsWith("/")) dirOnly = true, g = g.slice(0, -1);
  if (g.includes("/")) anchored = true;
  const ps = anchored ? g.split("/") : ["**", ...g.split("/")];
  const ss = path.split("/");
  for (let k = 1; k <= ss.length; k++) {
    if (dirOnly && k === ss.length) continue;
    if (matchSegments(ps, 0, ss.slice(0, k), 0)) return true;
  }
  return false;
}

/** Reference decision for one action; see docs/policy.md, "Evaluation". */
export function referenceEvaluate(
  doc: PolicyDocument,
  policyHash: string,
  action: PolicyAction,
  options: EvaluateOptions = {},
): Decision {
  const now = options.now === undefined ? Date.now() : Number(options.now);
  const r = (rule: string, effect: Reason["effect"], loc: Loc, message: string): Reason => ({
    rule,
    effect,
    message,
    file: loc.file,
    line: loc.line,
    col: loc.col,
  });
  const done = (
    decision: Decision["decision"],
    reasons: Reason[],
    environment: string | null,
    approvals = 0,
  ): Decision => ({ decision, reasons, approvals, environment, policyHash });

  // 0. Malformed input is denied.
  const first = doc.policies[0]?.loc ?? { file: doc.file, line: 1, col: 1 };
  const a = action as unknown as Record<string, unknown>;
  const str = (v: unknown) => v === undefined || typeof v === "string";
  if (
    typeof a !== "object" || a === null || Array.isArray(a) || typeof a.agent !== "string" ||
    typeof a.action !== "string" || !str(a.environment) || !str(a.service) || !str(a.category) ||
    (a.files !== undefined && !Array.isArray(a.files)) ||
    (a.targets !== undefined && !Array.isArray(a.targets))
  ) {
    return done("deny", [r("action.invalid", "deny", first, "invalid action")], null);
  }

  // 1. The environment selects the policy block.
  let pol = undefined;
  if (action.environment !== undefined) {
    pol = doc.policies.find((p) => p.environment === action.environment);
  } else if (doc.policies.length === 1) pol = doc.policies[0];
  if (!pol) {
    return done(
      "deny",
      [r("environment", "deny", first, "no policy block for this environment")],
      null,
    );
  }
  const env = pol.environment;
  const act = action.action;

  // 2. Unknown agent: deny.
  const agent = pol.agents.find((a) => a.name === action.agent);
  if (!agent) return done("deny", [r("agent.unknown", "deny", pol.loc, "unknown agent")], env);

  // 3. Denied action: deny.
  const denied = agent.deny.find((d) => d.value === act);
  if (denied) return done("deny", [r("agent.deny", "deny", denied.loc, "denied")], env);

  // 4. The action must be granted: by allow, or for remediate by the remediation block.
  let grant: Reason;
  const allowed = agent.allow.find((a) => a.value === act);
  if (allowed) grant = r("agent.allow", "allow", allowed.loc, "allowed");
  else if (act === "remediate" && pol.remediation) {
    grant = r("remediation", "allow", pol.remediation.loc, "remediation block");
  } else if (act === "remediate") {
    return done("deny", [r("remediation", "deny", agent.loc, "no remediation block")], env);
  } else {
    return done(
      "deny",
      [r("agent.allow", "deny", agent.allowLoc ?? agent.loc, "not allowed")],
      env,
    );
  }

  // 5. Constraints; every violation is a reason to deny.
  const agentOverride = agent.actions.find((o) => o.action === act);
  const policyOverride = pol.actions.find((o) => o.action === act);
  const governing = act === "deploy" || act === "rollback"
    ? pol.deploy
    : act === "remediate"
    ? pol.remediation
    : undefined;
  const violations: Reason[] = [];
  const notes: Reason[] = [];

  if (MUTATING.includes(act)) {
    for (const f of pol.freezes) {
      if (f.startMs <= now && now < f.endMs) {
        if (options.breakGlass) notes.push(r("freeze", "note", f.loc, "lifted by break-glass"));
        else violations.push(r("freeze", "deny", f.loc, "frozen"));
      }
    }
  }

  if (act === "deploy" || act === "rollback") {
    const at = pol.deploy?.loc ?? agent.loc;
    if (action.files === undefined) {
      violations.push(r("files.required", "deny", at, "files required"));
    } else {
      for (const file of action.files) {
        if (typeof file !== "string" || !NORMALIZED.test(file)) {
          violations.push(r("files.invalid", "deny", at, "not a normalized path"));
          continue;
        }
        const glob = (pol.deploy?.blockPaths ?? []).find((g) => referenceGlobMatch(g.value, file));
        if (glob) violations.push(r("deploy.block_paths", "deny", glob.loc, "blocked path"));
      }
      const max = agentOverride?.maxFiles ?? policyOverride?.maxFiles;
      if (max !== undefined && action.files.length > max.value) {
        violations.push(r("action.max_files", "deny", max.loc, "too many files"));
      } else if (max === undefined && pol.deploy?.maxFiles !== undefined) {
        if (action.files.length > pol.deploy.maxFiles.value) {
          violations.push(r("deploy.max_files", "deny", pol.deploy.maxFiles.loc, "too many files"));
        }
      }
    }
  }

  const radius = agentOverride?.blastRadius ?? agent.blastRadius ?? policyOverride?.blastRadius;
  const targets = action.targets ?? [];
  const kind = radius?.value ?? "single_host";
  const tooWide = kind === "single_host"
    ? targets.length > 1
    : kind === "service"
    ? targets.length > 1 && !action.service
    : false;
  if (tooWide) violations.push(r("blast_radius", "deny", radius?.loc ?? agent.loc, "too wide"));

  if (act === "remediate" && pol.remediation) {
    const blocked = pol.remediation.blockCategories;
    if (action.category === undefined) {
      if (blocked.length > 0) {
        violations.push(
          r("remediation.category_required", "deny", pol.remediation.loc, "category required"),
        );
      }
    } else {
      const hit = blocked.find((c) => c.value === action.category);
      if (hit) violations.push(r("remediation.block_categories", "deny", hit.loc, "blocked"));
    }
  }

  if (violations.length > 0) return done("deny", violations, env);

  // 6. Approval: the most specific require_approval decides; approvals counts approvers.
  const require = agentOverride?.requireApproval ?? policyOverride?.requireApproval ??
    governing?.requireApproval;
  if (require?.value) {
    const count = agentOverride?.approvals ?? policyOverride?.approvals ?? governing?.approvals ??
      pol.approvals;
    const reasons = [grant, ...notes, r("require_approval", "approval", require.loc, "approval")];
    if (count) reasons.push(r("approvals", "approval", count.loc, "approvers"));
    return done("approval_required", reasons, env, count?.value ?? 1);
  }
  return done("allow", [grant, ...notes], env);
}
