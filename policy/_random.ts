/**
 * Seeded random policies and actions for the differential tests (reference evaluator against
 * the compiled one) and the long fuzz run. Deterministic for a given seed. Test support only.
 *
 * @module
 */
import { referenceEvaluate } from "./_reference_eval.ts";
import { compileDocument, evaluate } from "./evaluate.ts";
import { parsePolicy } from "./parse.ts";
import type { Decision, PolicyAction, PolicyDocument } from "./types.ts";

/** A small fast PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type R = () => number;
const int = (r: R, n: number) => Math.floor(r() * n);
const pick = <T>(r: R, xs: readonly T[]): T => xs[int(r, xs.length)];
const chance = (r: R, p: number) => r() < p;
function subset<T>(r: R, xs: readonly T[], max: number): T[] {
  const n = int(r, max + 1);
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(pick(r, xs));
  return out;
}

export const ENVS = ["production", "staging", "dev"];
export const AGENTS = ["deployer", "ci", "bot", "ops", "a-1", "x"];
export const ACTS = [
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
  "read",
];
export const CATS = ["auth", "crypto", "billing", "perf", "net-sec"];
const GLOBS = [
  ".env",
  "secrets/**",
  "**/id_rsa",
  "*.pem",
  "config/*.yml",
  "a/**/b",
  "/root",
  "dir/",
  "**/cache/",
  "[a-c]*",
  "x?y",
  "src/[!t]*.ts",
  "**",
  "a/b",
  "\\*lit",
  "[]x]",
  "[z-a]",
  "[a-]",
  "docs/**/*.md",
  "*",
  "b",
  "**/b/**",
  "lib/**/",
  "/a/*",
  "src/**",
  "**/*.key",
  "a*b",
  "[^a]",
  "**/**/x",
  "a/[b-c]/**",
];
const SEGS = [
  "a",
  "b",
  "src",
  "secrets",
  ".env",
  "id_rsa",
  "x.pem",
  "c.yml",
  "config",
  "dir",
  "cache",
  "root",
  "xy",
  "x?y",
  "t.ts",
  "u.ts",
  "docs",
  "r.md",
  "lib",
  "k.key",
  "ab",
  "axb",
  "]",
  "*lit",
  "-",
  "é",
];
const BAD_FILES = ["./a", "a//b", "/abs", "a/../b", "", "a\\b", "a/", "..", "a/./b", "x\ny"];
const GLOB_ALPHABET = ["a", "b", "/", "*", "**", "?", "[", "]", "!", "-", "\\", ".", "x"];

function randomGlob(r: R): string {
  if (chance(r, 0.7)) return pick(r, GLOBS);
  let g = "";
  const n = 1 + int(r, 7);
  for (let i = 0; i < n; i++) g += pick(r, GLOB_ALPHABET);
  return g;
}

function randomFile(r: R): string {
  if (chance(r, 0.03)) return pick(r, BAD_FILES);
  const depth = 1 + int(r, 4);
  const segs: string[] = [];
  for (let i = 0; i < depth; i++) segs.push(pick(r, SEGS));
  return segs.join("/");
}

const q = (s: string) => JSON.stringify(s);
const FREEZE_BASE = Date.parse("2026-12-20T00:00:00Z");
const HOUR = 3_600_000;

/** A random, mostly valid policy text with random layout and comments. */
export function randomPolicyText(r: R): string {
  const sp = () => (chance(r, 0.1) ? "   " : " ");
  const nl = () => (chance(r, 0.05) ? "  # c\n" : chance(r, 0.05) ? "\n\n" : "\n");
  const list = (xs: string[]) => xs.join(chance(r, 0.5) ? ", " : ",");
  const envs = subset(r, ENVS, 3).filter((v, i, a) => a.indexOf(v) === i);
  if (envs.length === 0) envs.push(pick(r, ENVS));
  let t = chance(r, 0.2) ? "// header\n" : "";
  const override = (ind: string, acts: string[]) => {
    let o = "";
    for (const a of subset(r, acts, 2).filter((v, i, arr) => arr.indexOf(v) === i)) {
      o += `${ind}action ${a} {${nl()}`;
      if (chance(r, 0.5)) o += `${ind}  require_approval${sp()}${chance(r, 0.6)}${nl()}`;
      if (chance(r, 0.4)) o += `${ind}  approvals ${1 + int(r, 3)}${nl()}`;
      if (chance(r, 0.3)) o += `${ind}  max_files ${int(r, 6)}${nl()}`;
      if (chance(r, 0.3)) {
        o += `${ind}  blast_radius ${pick(r, ["single_host", "service", "fleet"])}${nl()}`;
      }
      o += `${ind}}${nl()}`;
    }
    return o;
  };
  for (const env of envs) {
    t += `policy${sp()}${q(env)} {${nl()}  version 1${nl()}`;
    if (chance(r, 0.3)) t += `  approvals ${1 + int(r, 3)}${nl()}`;
    for (let i = int(r, 3); i > 0; i--) {
      const s = FREEZE_BASE + int(r, 48) * HOUR;
      const e = s + (1 + int(r, 48)) * HOUR;
      t += `  freeze ${q(new Date(s).toISOString())} .. ${q(new Date(e).toISOString())}${
        chance(r, 0.5) ? " " + q("holidays") : ""
      }${nl()}`;
    }
    if (chance(r, 0.8)) {
      t += `  deploy {${nl()}`;
      if (chance(r, 0.6)) t += `    require_approval ${chance(r, 0.7)}${nl()}`;
      if (chance(r, 0.3)) t += `    approvals ${1 + int(r, 3)}${nl()}`;
      const globs = subset(r, [0], 5).map(() => q(randomGlob(r)));
      if (globs.length) t += `    block_paths ${list(globs)}${nl()}`;
      if (chance(r, 0.5)) t += `    max_files ${int(r, 8)}${nl()}`;
      t += `  }${nl()}`;
    }
    if (chance(r, 0.6)) {
      t += `  remediation {${nl()}`;
      const cats = subset(r, CATS, 3);
      if (cats.length) t += `    block_categories ${list(cats)}${nl()}`;
      if (chance(r, 0.6)) t += `    require_approval ${chance(r, 0.7)}${nl()}`;
      if (chance(r, 0.3)) t += `    approvals ${1 + int(r, 3)}${nl()}`;
      t += `  }${nl()}`;
    }
    const agents = subset(r, AGENTS, 5).filter((v, i, a) => a.indexOf(v) === i);
    for (const a of agents) {
      t += `  agent ${q(a)} {${nl()}`;
      const allow = subset(r, ACTS, 5);
      const deny = subset(r, ACTS, 3).filter((x) => !allow.includes(x) || chance(r, 0.1));
      if (allow.length) t += `    allow ${list(allow)}${nl()}`;
      if (deny.length) t += `    deny ${list(deny)}${nl()}`;
      if (chance(r, 0.6)) {
        t += `    blast_radius ${pick(r, ["single_host", "service", "fleet"])}${nl()}`;
      }
      t += override("    ", ACTS);
      t += `  }${nl()}`;
    }
    t += override("  ", ACTS);
    t += `}${nl()}`;
  }
  return t;
}

/** A random action drawn from the same pools as the policies, biased towards `doc`'s names. */
export function randomAction(r: R, doc?: PolicyDocument): PolicyAction {
  const pol = doc && doc.policies.length > 0 && chance(r, 0.9) ? pick(r, doc.policies) : undefined;
  const agent = pol && pol.agents.length > 0 && chance(r, 0.85) ? pick(r, pol.agents) : undefined;
  const a: Record<string, unknown> = {
    agent: agent ? agent.name : chance(r, 0.9) ? pick(r, AGENTS) : "nobody",
    action: agent && agent.allow.length > 0 && chance(r, 0.6)
      ? pick(r, agent.allow).value
      : chance(r, 0.95)
      ? pick(r, ACTS)
      : "reboot",
  };
  if (pol && (doc!.policies.length > 1 || chance(r, 0.5))) a.environment = pol.environment;
  else if (chance(r, 0.3)) a.environment = chance(r, 0.8) ? pick(r, ENVS) : "qa";
  if (chance(r, 0.5)) a.service = "web";
  if (chance(r, 0.7)) a.targets = subset(r, ["web-1", "web-2", "db-1"], 3);
  if (chance(r, 0.85)) a.files = Array.from({ length: int(r, 9) }, () => randomFile(r));
  if (chance(r, 0.7)) a.category = pick(r, CATS);
  if (chance(r, 0.005)) a.files = "not-an-array";
  return a as unknown as PolicyAction;
}

/** Comparable view of a decision: everything but the messages. */
export function shape(d: Decision): string {
  return JSON.stringify([
    d.decision,
    d.approvals,
    d.environment,
    d.policyHash,
    d.reasons.map((x) => [x.rule, x.effect, x.file, x.line, x.col]),
  ]);
}

/** One divergence between the evaluators. */
export interface Divergence {
  seed: number;
  policy: string;
  action: PolicyAction;
  now: number;
  breakGlass: boolean;
  reference: string;
  fast: string;
}

/**
 * Run `cases` random decisions (policies × actions) through both evaluators.
 * Returns the number of cases run and the divergences found (stops after 5).
 */
export function differential(
  seed: number,
  cases: number,
  actionsPerPolicy = 50,
): { cases: number; policies: number; divergences: Divergence[] } {
  const divergences: Divergence[] = [];
  let done = 0;
  let policies = 0;
  for (let p = 0; done < cases; p++) {
    const r = rng(seed + p * 7919);
    const text = randomPolicyText(r);
    const parsed = parsePolicy(text, { file: "fuzz.policy" });
    if (parsed.diagnostics.length > 0) continue; // syntax/structure errors: nothing to compare
    policies++;
    const hash = "sha256:test";
    const compiled = compileDocument(parsed.policy, hash);
    for (let i = 0; i < actionsPerPolicy && done < cases; i++, done++) {
      const action = randomAction(r, parsed.policy);
      const now = FREEZE_BASE + int(r, 100) * HOUR - 2 * HOUR;
      const breakGlass = chance(r, 0.2);
      const ref = shape(referenceEvaluate(parsed.policy, hash, action, { now, breakGlass }));
      const fast = shape(evaluate(compiled, action, { now, breakGlass }));
      if (ref !== fast) {
        divergences.push({
          seed: seed + p * 7919,
          policy: text,
          action,
          now,
          breakGlass,
          reference: ref,
          fast,
        });
        if (divergences.length >= 5) return { cases: done, policies, divergences };
      }
    }
  }
  return { cases: done, policies, divergences };
}
