/**
 * `infraveil policy check` and `explain`, and the pieces every `infraveil policy` command
 * shares: the I/O interface main.ts provides, usage texts, flag parsing and the text, JSON and
 * GitHub reports. This is the CI hot path, kept in one module because each module costs
 * start-up time: it loads no npm module, hashes with WebCrypto and only for reports that show
 * the hash; sarif/junit reports and explain are imported only when asked for.
 *
 * Flags are parsed by a small strict parser with the shape of `node:util`'s `parseArgs` (the
 * subset used here: string and boolean long options, `--name=value`, `-h`, `--`): importing
 * `node:util` costs more start-up time than all of `policy check` itself.
 *
 * @module
 */
import { readActions, validateAction } from "./action.ts";
import { compileDocument, type CompiledPolicy, evaluate } from "./evaluate.ts";
import { lintPolicy } from "./lint.ts";
import { parseInstant, parsePolicy } from "./parse.ts";
import type { Decision, Diagnostic, PolicyAction } from "./types.ts";

/** Flag declarations, as for `node:util` `parseArgs`. */
export type OptionSpec = Record<string, { type: "string" | "boolean"; short?: string }>;

/** Parsed flags and positionals. */
export interface ParsedArgs {
  /** Flag values by long name. */
  values: Record<string, string | boolean | undefined>;
  /** Arguments that are not flags. */
  positionals: string[];
}

/**
 * Parse arguments strictly: an unknown flag, a missing value or a value given to a boolean
 * flag throws a TypeError naming it.
 */
export function parseFlags(args: readonly string[], options: OptionSpec): ParsedArgs {
  const values: ParsedArgs["values"] = {};
  const positionals: string[] = [];
  const shorts = new Map<string, string>();
  for (const [name, o] of Object.entries(options)) if (o.short) shorts.set(o.short, name);
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (a.length < 2 || a[0] !== "-") {
      positionals.push(a);
      continue;
    }
    let name: string;
    let inline: string | undefined;
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      inline = eq < 0 ? undefined : a.slice(eq + 1);
    } else {
      const long = a.length === 2 ? shorts.get(a[1]) : undefined;
      if (long === undefined) throw new TypeError(`Unknown option '${a}'`);
      name = long;
    }
    if (!Object.hasOwn(options, name)) throw new TypeError(`Unknown option '--${name}'`);
    if (options[name].type === "boolean") {
      if (inline !== undefined) throw new TypeError(`Option '--${name}' does not take a value`);
      values[name] = true;
      continue;
    }
    if (inline !== undefined) {
      values[name] = inline;
      continue;
    }
    const next = args[i + 1];
    if (next === undefined || (next.startsWith("-") && next !== "-")) {
      throw new TypeError(`Option '--${name} <value>' needs a value`);
    }
    values[name] = next;
    i++;
  }
  return { values, positionals };
}

/** What the commands need from the outside world; main.ts supplies Deno's. */
export interface Io {
  /** Read a UTF-8 file (`-` reads standard input). Throws on failure. */
  readText(path: string): Promise<string>;
  /** Write a UTF-8 file. Throws on failure. */
  writeText(path: string, text: string): Promise<void>;
  /** Whether a path is a directory, a file, or missing. */
  kind(path: string): Promise<"dir" | "file" | "missing">;
  /** Entries of a directory. */
  list(path: string): Promise<{ name: string; dir: boolean }[]>;
  /** Write to standard output. */
  out(text: string): Promise<void>;
  /** Write to standard error. */
  err(text: string): Promise<void>;
  /** The clock. */
  now(): number;
}

/** Report formats. */
export const FORMATS = ["text", "json", "sarif", "github", "junit"] as const;
/** One of {@linkcode FORMATS}. */
export type Format = typeof FORMATS[number];

/** Usage text for each command. */
export const USAGE: Record<string, string> = {
  policy: `Usage: infraveil policy <command> [options]

Commands:
  lint FILE…                         check policy files for errors (exit 3 on errors)
  check ACTION.json --policy FILE    decide actions (exit 0 allow/approval, 1 deny)
  explain ACTION.json --policy FILE  show every rule considered, true or false
  fmt [--check] FILE…                rewrite policy files in canonical layout
  test PATH…                         run *.policytest.json policy tests
  hash FILE                          print the policy's content hash
  schema                             print the action JSON Schema

Exit codes: 0 ok/allowed, 1 denied or failed, 2 usage or input error, 3 policy errors.
Run \`infraveil policy <command> --help\` for a command's options. Reference: docs/policy.md
`,
  lint: `Usage: infraveil policy lint [--format text|json|sarif|github|junit] FILE…

Reports syntax, structure and semantic problems with a code, severity and file:line:col.
Exit 0 when no file has errors (warnings allowed), 3 on errors, 2 when a file is unreadable.
`,
  check: `Usage: infraveil policy check ACTION.json --policy FILE [options]

ACTION.json holds one action, a JSON array of actions, or JSON Lines ("-" reads stdin).
Options:
  --policy FILE          the policy file (required)
  --format FORMAT        text (default), json, sarif, github or junit
  --fail-on-approval     exit 1 when an action needs approval
  --now RFC3339          evaluate at this instant (default: now)
  --break-glass          evaluate with break-glass in effect (lifts freeze windows only)
Exit 0 allow or approval_required, 1 deny, 2 bad input, 3 policy with lint errors.
`,
  explain:
    `Usage: infraveil policy explain ACTION.json --policy FILE [--format text|json] [--now RFC3339] [--break-glass]

Prints every rule considered for each action, whether it held, and where it is written.
Exit codes as for check.
`,
  fmt: `Usage: infraveil policy fmt [--check] FILE…

Rewrites each file in canonical layout, keeping comments. With --check, changes nothing and
exits 1 when a file is not formatted. Exit 2 when a file is unreadable, 3 on syntax errors.
`,
  test: `Usage: infraveil policy test [--format text|json|junit] [--policy FILE] PATH…

Runs policy test files (*.policytest.json; a directory is searched recursively). Each names a
policy (relative to itself, or --policy) and cases: an action and the expected decision.
Exit 0 all pass, 1 a case failed, 2 unreadable or invalid test file, 3 policy with lint errors.
`,
  hash: `Usage: infraveil policy hash [--format text|json] FILE

Prints the policy's content hash (sha256:…), independent of comments and layout; the control
plane and the agent identify the policy they enforce by it. Exit 3 when the policy has errors.
`,
  schema: `Usage: infraveil policy schema

Prints the JSON Schema of an action (the input of check, explain and test).
`,
};

/** Parse flags strictly; on a bad flag, print usage and return the exit code 2. */
export async function flags(
  io: Io,
  command: string,
  args: string[],
  options: OptionSpec,
): Promise<
  | { values: Record<string, string | boolean | undefined>; positionals: string[] }
  | number
> {
  try {
    const r = parseFlags(args, { ...options, help: { type: "boolean", short: "h" } });
    if (r.values.help) {
      await io.out(USAGE[command]);
      return 0;
    }
    return r;
  } catch (e) {
    await io.err(`error: ${(e as Error).message}\n\n${USAGE[command]}`);
    return 2;
  }
}

/** Validate --format against the allowed set; prints an error and returns 2 when wrong. */
export async function format(
  io: Io,
  command: string,
  value: unknown,
  allowed: readonly string[] = FORMATS,
): Promise<Format | number> {
  const f = value === undefined ? "text" : String(value);
  if (!allowed.includes(f)) {
    await io.err(
      `error: --format must be one of ${allowed.join(", ")} (got "${f}")\n\n${USAGE[command]}`,
    );
    return 2;
  }
  return f as Format;
}

/** Read a file, or print "cannot read" and return null. */
export async function readOrReport(io: Io, path: string, what: string): Promise<string | null> {
  try {
    return await io.readText(path);
  } catch (e) {
    const why = e instanceof Error
      ? e.message.replace(/:? (?:stat|open|readfile) '.*'$/, "")
      : String(e);
    await io.err(`error: cannot read ${what} ${path}: ${why}\n`);
    return null;
  }
}

/** Parse --now (RFC 3339); prints an error and returns NaN when invalid. */
export async function nowFlag(
  io: Io,
  command: string,
  value: unknown,
  parse: (s: string) => number,
): Promise<number> {
  if (value === undefined) return io.now();
  const ms = parse(String(value));
  if (Number.isNaN(ms)) {
    await io.err(
      `error: --now must be an RFC 3339 instant like 2026-12-25T12:00:00Z (got "${value}")\n\n${
        USAGE[command]
      }`,
    );
  }
  return ms;
}

/** One evaluated action, as reported by `check`. */
export interface CheckResult {
  /** Where the action came from (`$`, `$[2]`, `line 3`). */
  label: string;
  /** The action's agent. */
  agent: string;
  /** The action's name. */
  action: string;
  /** The decision. */
  decision: Decision;
  /** Whether this result fails the run (deny, or approval with --fail-on-approval). */
  failed: boolean;
}

/** Counts of errors and warnings, pluralized. */
export function summary(diags: readonly Diagnostic[]): string {
  const e = diags.filter((d) => d.severity === "error").length;
  const w = diags.length - e;
  return `${e} error${e === 1 ? "" : "s"}, ${w} warning${w === 1 ? "" : "s"}`;
}

/** `file:line:col: severity[CODE]: message` lines plus a summary line. */
export function lintText(diags: readonly Diagnostic[], files: readonly string[]): string {
  let out = "";
  for (const d of diags) {
    out += `${d.file}:${d.line}:${d.col}: ${d.severity}[${d.code}]: ${d.message}\n`;
  }
  out += `${files.length} file${files.length === 1 ? "" : "s"} linted: ${summary(diags)}\n`;
  return out;
}

/** Lint report as JSON. */
export function lintJson(diags: readonly Diagnostic[], files: readonly string[]): string {
  const errors = diags.filter((d) => d.severity === "error").length;
  return JSON.stringify(
    { files, errors, warnings: diags.length - errors, diagnostics: diags },
    null,
    2,
  ) +
    "\n";
}

function ghData(s: string): string {
  return s.replaceAll("%", "%25").replaceAll("\r", "%0D").replaceAll("\n", "%0A");
}
function ghProp(s: string): string {
  return ghData(s).replaceAll(":", "%3A").replaceAll(",", "%2C");
}

/** One GitHub Actions workflow command (`::error file=…,line=…::message`). */
export function ghCommand(
  kind: "error" | "warning" | "notice",
  at: { file: string; line: number; col: number },
  title: string,
  message: string,
): string {
  return `::${kind} file=${ghProp(at.file)},line=${at.line},col=${at.col},title=${ghProp(title)}::${
    ghData(message)
  }\n`;
}

/** Lint report as GitHub workflow commands. */
export function lintGithub(diags: readonly Diagnostic[]): string {
  let out = "";
  for (const d of diags) out += ghCommand(d.severity, d, `policy ${d.code}`, d.message);
  return out;
}

/** Check report as text: one line per action and one per reason. */
export function checkText(results: readonly CheckResult[]): string {
  let out = "";
  for (const r of results) {
    const d = r.decision;
    const n = d.approvals ? ` (${d.approvals} approval${d.approvals === 1 ? "" : "s"})` : "";
    const where = r.label === "$" ? "" : ` [${r.label}]`;
    out += `${d.decision}${n}: ${r.agent} ${r.action} in ${d.environment ?? "?"}${where}\n`;
    for (const x of d.reasons) {
      out += `  ${x.file}:${x.line}:${x.col} ${x.effect} ${x.rule}: ${x.message}\n`;
    }
  }
  return out;
}

/** Check report as JSON. */
export function checkJson(
  results: readonly CheckResult[],
  policy: { file: string; hash: string },
): string {
  return JSON.stringify(
    {
      policy: policy.file,
      policyHash: policy.hash,
      results: results.map((r) => ({
        input: r.label,
        agent: r.agent,
        action: r.action,
        failed: r.failed,
        ...r.decision,
      })),
    },
    null,
    2,
  ) + "\n";
}

/** Check report as GitHub workflow commands, annotating the policy lines that decided. */
export function checkGithub(results: readonly CheckResult[]): string {
  let out = "";
  for (const r of results) {
    const d = r.decision;
    const title = `${d.decision}: ${r.agent} ${r.action}${r.label === "$" ? "" : ` (${r.label})`}`;
    const kind = d.decision === "deny"
      ? "error"
      : d.decision === "approval_required"
      ? (r.failed ? "error" : "warning")
      : "notice";
    for (const x of d.reasons) {
      if (d.decision === "deny" && x.effect !== "deny") continue;
      out += ghCommand(kind, x, title, `${x.rule}: ${x.message}`);
    }
  }
  return out;
}

/** Print lint diagnostics in a format (sarif/junit loaded lazily). */
export async function printLint(
  io: Io,
  fmt: string,
  diags: Diagnostic[],
  files: string[],
): Promise<void> {
  if (fmt === "json") return io.out(lintJson(diags, files));
  if (fmt === "github") return io.out(lintGithub(diags));
  if (fmt === "sarif") return io.out((await import("./_sarif.ts")).lintSarif(diags));
  if (fmt === "junit") return io.out((await import("./_junit.ts")).lintJunit(diags, files));
  return io.out(lintText(diags, files));
}

/**
 * Load, lint, hash and compile a policy file for enforcement; an exit code on failure. With
 * `hash: false` the content hash is left empty (for reports that do not show it).
 */
export async function loadPolicy(
  io: Io,
  path: string,
  fmt: string,
  options: { hash?: boolean } = {},
): Promise<CompiledPolicy | number> {
  const text = await readOrReport(io, path, "policy");
  if (text === null) return 2;
  const parsed = parsePolicy(text, { file: path });
  const diags = lintPolicy(parsed);
  const errors = diags.filter((d) => d.severity === "error");
  if (errors.length > 0) {
    await printLint(io, fmt, errors, [path]);
    await io.err(
      `error: ${path} has ${errors.length} lint error(s); fix them (infraveil policy lint ${path})\n`,
    );
    return 3;
  }
  if (options.hash === false) return compileDocument(parsed.policy, "");
  const { webPolicyHash } = await import("./_canonical.ts");
  return compileDocument(parsed.policy, await webPolicyHash(parsed.policy));
}

interface Loaded {
  compiled: CompiledPolicy;
  actions: { label: string; action: PolicyAction }[];
  values: Record<string, string | boolean | undefined>;
  fmt: string;
  now: number;
}

async function load(
  io: Io,
  command: "check" | "explain",
  args: string[],
): Promise<Loaded | number> {
  const f = await flags(io, command, args, {
    policy: { type: "string" },
    format: { type: "string" },
    now: { type: "string" },
    "break-glass": { type: "boolean" },
    ...(command === "check" ? { "fail-on-approval": { type: "boolean" } } : {}),
  });
  if (typeof f === "number") return f;
  const fmt = await format(
    io,
    command,
    f.values.format,
    command === "check" ? undefined : ["text", "json"],
  );
  if (typeof fmt === "number") return fmt;
  if (f.positionals.length !== 1 || typeof f.values.policy !== "string") {
    await io.err(
      `error: ${
        f.positionals.length !== 1 ? "give exactly one ACTION.json" : "--policy FILE is required"
      }\n\n${USAGE[command]}`,
    );
    return 2;
  }
  const now = await nowFlag(io, command, f.values.now, parseInstant);
  if (Number.isNaN(now)) return 2;
  const [actionPath] = f.positionals;
  const actionText = await readOrReport(io, actionPath, "action file");
  if (actionText === null) return 2;
  // Only the json and sarif reports show the content hash; skip hashing for the others.
  const hash = command === "explain" || fmt === "json" || fmt === "sarif";
  const compiled = await loadPolicy(io, f.values.policy, fmt, { hash });
  if (typeof compiled === "number") return compiled;
  const input = readActions(actionText);
  if (input.error) {
    await io.err(`error: ${actionPath}: ${input.error}\n`);
    return 2;
  }
  let bad = 0;
  const actions: Loaded["actions"] = [];
  for (const item of input.items) {
    const errors = validateAction(item.value, item.path);
    const where = item.label.startsWith("line") ? `${actionPath} ${item.label}` : actionPath;
    for (const e of errors) {
      await io.err(`error: ${where}: ${e.path}: ${e.message}\n`);
      bad++;
    }
    if (errors.length === 0) {
      actions.push({ label: item.label, action: item.value as PolicyAction });
    }
  }
  if (bad > 0) {
    await io.err(
      `error: ${bad} schema violation(s) in ${actionPath}; see \`infraveil policy schema\`\n`,
    );
    return 2;
  }
  // The environment must select a policy block; otherwise this is an input error.
  for (const { label, action } of actions) {
    const env = action.environment;
    if (
      env === undefined ? compiled.environments.length !== 1 : !compiled.environments.includes(env)
    ) {
      const names = compiled.environments.map((e) => JSON.stringify(e)).join(", ");
      const where = label === "$" ? actionPath : `${actionPath} ${label}`;
      await io.err(
        env === undefined
          ? `error: ${where}: the action names no "environment" and ${compiled.file} defines several: ${names}; set "environment"\n`
          : `error: ${where}: no policy for environment ${
            JSON.stringify(env)
          } in ${compiled.file}; it defines: ${names}\n`,
      );
      return 2;
    }
  }
  return { compiled, actions, values: f.values, fmt, now };
}

/** `infraveil policy check`. */
export async function check(io: Io, args: string[]): Promise<number> {
  const l = await load(io, "check", args);
  if (typeof l === "number") return l;
  const failOnApproval = l.values["fail-on-approval"] === true;
  const opts = { now: l.now, breakGlass: l.values["break-glass"] === true };
  const results: CheckResult[] = l.actions.map(({ label, action }) => {
    const decision = evaluate(l.compiled, action, opts);
    const failed = decision.decision === "deny" ||
      (failOnApproval && decision.decision === "approval_required");
    return { label, agent: action.agent, action: action.action, decision, failed };
  });
  if (l.fmt === "json") await io.out(checkJson(results, l.compiled));
  else if (l.fmt === "github") await io.out(checkGithub(results));
  else if (l.fmt === "sarif") await io.out((await import("./_sarif.ts")).checkSarif(results));
  else if (l.fmt === "junit") await io.out((await import("./_junit.ts")).checkJunit(results));
  else await io.out(checkText(results));
  return results.some((r) => r.failed) ? 1 : 0;
}

/** `infraveil policy explain`. */
export async function explain(io: Io, args: string[]): Promise<number> {
  const l = await load(io, "explain", args);
  if (typeof l === "number") return l;
  const { explainAction } = await import("./explain.ts");
  const opts = { now: l.now, breakGlass: l.values["break-glass"] === true };
  const all = l.actions.map(({ label, action }) => ({
    label,
    action,
    ...explainAction(l.compiled, action, opts),
  }));
  if (l.fmt === "json") {
    await io.out(
      JSON.stringify(
        { policy: l.compiled.file, policyHash: l.compiled.hash, results: all },
        null,
        2,
      ) + "\n",
    );
  } else {
    let out = "";
    for (const e of all) {
      const d = e.decision;
      const where = e.label === "$" ? "" : ` [${e.label}]`;
      out += `${e.action.agent} ${e.action.action} in ${d.environment}${where}\n`;
      for (const s of e.steps) {
        out += `  ${s.file}:${s.line}:${s.col} ${
          s.result ? "true " : "false"
        } ${s.rule} (${s.effect}): ${s.condition}\n`;
      }
      out += `  => ${d.decision}${
        d.approvals ? ` (${d.approvals} approval${d.approvals === 1 ? "" : "s"})` : ""
      }\n`;
    }
    await io.out(out);
  }
  return all.some((e) => e.decision.decision === "deny") ? 1 : 0;
}
