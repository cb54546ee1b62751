/**
 * The policy linter: semantic checks on a parsed policy, on top of the parser's syntax and
 * structure diagnostics. Pure; never throws.
 *
 * @module
 */
import { globProblem } from "./glob.ts";
import { sortDiagnostics, suggest } from "./parse.ts";
import type {
  ActionOverride,
  Diagnostic,
  Loc,
  Located,
  ParsedPolicy,
  PolicyBlock,
  Severity,
} from "./types.ts";
import { ACTION_NAMES, ACTIONS, changesFiles } from "./vocabulary.ts";

/** The policy format versions this package understands. */
export const SUPPORTED_VERSIONS: readonly number[] = [1];

/**
 * All diagnostics for a parsed policy: the parser's plus the linter's, sorted by position.
 *
 * @param parsed The result of {@linkcode parsePolicy}.
 * @returns Diagnostics; the policy is usable when none has severity `error`.
 *
 * @example An action both allowed and denied is an error
 * ```ts
 * import { lintPolicy, parsePolicy } from "@infraveil/policy";
 * import assert from "node:assert/strict";
 *
 * const parsed = parsePolicy(
 *   'policy "p" {\n  version 1\n  agent "a" {\n    allow restart\n    deny restart\n  }\n}\n',
 * );
 * const d = lintPolicy(parsed);
 * assert.deepEqual(d.map((x) => [x.code, x.line]), [["PL203", 4]]);
 * ```
 */
export function lintPolicy(parsed: ParsedPolicy): Diagnostic[] {
  const out: Diagnostic[] = [...parsed.diagnostics];
  const doc = parsed.policy;
  const add = (code: string, severity: Severity, loc: Loc, message: string) =>
    out.push({ code, severity, message, file: loc.file, line: loc.line, col: loc.col });

  if (doc.policies.length === 0 && !out.some((d) => d.severity === "error")) {
    add(
      "PL200",
      "error",
      { file: doc.file, line: 1, col: 1 },
      'no policy block: add `policy "<environment>" { version 1 … }`',
    );
  }
  const envs = new Map<string, Loc>();
  for (const p of doc.policies) {
    const prev = envs.get(p.environment);
    if (prev) {
      add(
        "PL202",
        "error",
        p.loc,
        `duplicate policy for environment "${p.environment}" (first at ${prev.line}:${prev.col}); one block per environment`,
      );
    } else envs.set(p.environment, p.loc);
    lintBlock(p, add);
  }
  return sortDiagnostics(out);
}

type Add = (code: string, severity: Severity, loc: Loc, message: string) => void;

function lintBlock(p: PolicyBlock, add: Add): void {
  if (!p.version) {
    add("PL110", "error", p.loc, `policy "${p.environment}" has no version: add \`version 1\``);
  } else if (!SUPPORTED_VERSIONS.includes(p.version.value)) {
    add(
      "PL111",
      "error",
      p.version.loc,
      `unsupported version ${p.version.value}: this release understands version ${
        SUPPORTED_VERSIONS.join(", ")
      }`,
    );
  }

  const checkApprovals = (a: Located<number> | undefined) => {
    if (a && a.value < 1) {
      add(
        "PL210",
        "error",
        a.loc,
        "approvals must be at least 1 (to need no approval, write require_approval false)",
      );
    }
  };
  checkApprovals(p.approvals);

  for (const f of p.freezes) {
    if (Number.isFinite(f.startMs) && Number.isFinite(f.endMs) && f.endMs <= f.startMs) {
      add(
        "PL209",
        "error",
        f.loc,
        `freeze window ends (${f.end}) before or when it starts (${f.start}): it never applies`,
      );
    }
  }

  const dupes = (items: Located<string>[], what: string) => {
    // Lists are short: a quadratic scan allocates nothing.
    for (let i = 1; i < items.length; i++) {
      for (let j = 0; j < i; j++) {
        if (items[j].value === items[i].value) {
          add(
            "PL206",
            "warning",
            items[i].loc,
            `${what} lists ${JSON.stringify(items[i].value)} twice`,
          );
          break;
        }
      }
    }
  };
  const actionName = (i: Located<string>, where: string) => {
    if (!Object.hasOwn(ACTIONS, i.value)) {
      add(
        "PL205",
        "error",
        i.loc,
        `unknown action "${i.value}" in ${where}${suggest(i.value, ACTION_NAMES)}; known actions: ${
          ACTION_NAMES.join(", ")
        }`,
      );
      return false;
    }
    return true;
  };
  const overrides = (list: ActionOverride[], where: string) => {
    const seen = new Map<string, Loc>();
    for (const o of list) {
      actionName({ value: o.action, loc: o.loc }, `action override (${where})`);
      const prev = seen.get(o.action);
      if (prev) {
        add(
          "PL207",
          "error",
          o.loc,
          `duplicate action ${o.action} override in ${where} (first at ${prev.line}:${prev.col}); merge them`,
        );
      }
      seen.set(o.action, o.loc);
      checkApprovals(o.approvals);
      if (o.maxFiles && Object.hasOwn(ACTIONS, o.action) && !changesFiles(o.action)) {
        add(
          "PL213",
          "warning",
          o.maxFiles.loc,
          `max_files has no effect on ${o.action}: only deploy and rollback are checked against files`,
        );
      }
      if (o.maxFiles?.value === 0) {
        add(
          "PL215",
          "warning",
          o.maxFiles.loc,
          "max_files 0 denies every deploy that changes a file",
        );
      }
      if (o.approvals && o.requireApproval && !o.requireApproval.value) {
        add(
          "PL211",
          "warning",
          o.approvals.loc,
          "approvals has no effect when require_approval is false",
        );
      }
    }
  };
  overrides(p.actions, `policy "${p.environment}"`);

  if (p.deploy) {
    const d = p.deploy;
    checkApprovals(d.approvals);
    if (d.approvals && !d.requireApproval?.value) {
      add(
        "PL211",
        "warning",
        d.approvals.loc,
        "approvals has no effect in deploy unless require_approval true (add it, or remove approvals)",
      );
    }
    if (d.maxFiles?.value === 0) {
      add(
        "PL215",
        "warning",
        d.maxFiles.loc,
        "max_files 0 denies every deploy that changes a file",
      );
    }
    dupes(d.blockPaths, "block_paths");
    for (const g of d.blockPaths) {
      const problem = globProblem(g.value);
      if (problem?.kind === "never") {
        add(
          "PL204",
          "error",
          g.loc,
          `glob ${JSON.stringify(g.value)} can never match: ${problem.message}`,
        );
      } else if (problem) {
        add("PL216", "error", g.loc, `invalid glob ${JSON.stringify(g.value)}: ${problem.message}`);
      }
    }
  }
  if (p.remediation) {
    const r = p.remediation;
    checkApprovals(r.approvals);
    if (r.approvals && !r.requireApproval?.value) {
      add(
        "PL211",
        "warning",
        r.approvals.loc,
        "approvals has no effect in remediation unless require_approval true (add it, or remove approvals)",
      );
    }
    dupes(r.blockCategories, "block_categories");
  }

  if (p.agents.length === 0) {
    add(
      "PL219",
      "warning",
      p.loc,
      `policy "${p.environment}" defines no agent: every action is denied`,
    );
  }
  const agents = new Map<string, Loc>();
  for (const a of p.agents) {
    const prev = agents.get(a.name);
    if (prev) {
      add(
        "PL201",
        "error",
        a.loc,
        `duplicate agent "${a.name}" (first at ${prev.line}:${prev.col}); merge the blocks`,
      );
    } else agents.set(a.name, a.loc);
    dupes(a.allow, `agent "${a.name}" allow`);
    dupes(a.deny, `agent "${a.name}" deny`);
    const allowed = new Set<string>();
    for (const i of a.allow) if (actionName(i, `agent "${a.name}" allow`)) allowed.add(i.value);
    const denied = new Set<string>();
    for (const i of a.deny) if (actionName(i, `agent "${a.name}" deny`)) denied.add(i.value);
    for (const i of a.allow) {
      if (denied.has(i.value)) {
        add(
          "PL203",
          "error",
          i.loc,
          `agent "${a.name}" both allows and denies "${i.value}" (deny wins); remove one`,
        );
        denied.delete(i.value); // report once
      }
    }
    if (!p.deploy) {
      const d = a.allow.find((i) => changesFiles(i.value));
      if (d) {
        add(
          "PL214",
          "warning",
          d.loc,
          `agent "${a.name}" may ${d.value} but the policy has no deploy block, so no block_paths or max_files apply; add \`deploy { … }\``,
        );
      }
    }
    overrides(a.actions, `agent "${a.name}"`);
    for (const o of a.actions) {
      const can = !a.deny.some((i) => i.value === o.action) &&
        (a.allow.some((i) => i.value === o.action) ||
          (o.action === "remediate" && !!p.remediation));
      if (!can && Object.hasOwn(ACTIONS, o.action)) {
        add(
          "PL212",
          "warning",
          o.loc,
          `agent "${a.name}" may not ${o.action}, so this override never applies`,
        );
      }
    }
  }
}
