/**
 * Parses policy text into the policy model ({@linkcode PolicyDocument}) with syntax and structure
 * diagnostics: the lexer, the concrete syntax tree (kept for the formatter) and the model
 * builder, in one module because every module costs `policy check` start-up time. Pure: takes
 * text, returns data, never throws on any input.
 *
 * @module
 */
import type {
  ActionOverride,
  AgentBlock,
  BlastRadius,
  DeployBlock,
  Diagnostic,
  Loc,
  Located,
  ParsedPolicy,
  PolicyBlock,
  PolicyDocument,
  RemediationBlock,
} from "./types.ts";

// ---- Lexer and concrete syntax tree ---------------------------------------------------
//
// Knows nothing about what keys mean: turns text into statements (`name args… [{ body }]`)
// with their comments, so the formatter can reproduce them and the model builder can
// interpret them. Never throws on any input; every problem becomes a diagnostic.

/** Token kinds. */
export type TokenKind =
  | "ident"
  | "string"
  | "int"
  | "comma"
  | "range"
  | "lbrace"
  | "rbrace"
  | "newline"
  | "comment"
  | "eof";

/** One token. `value` is the decoded string for strings, the text otherwise. */
export interface Token {
  kind: TokenKind;
  text: string;
  value: string;
  line: number;
  col: number;
}

/** A comment line kept for the formatter. */
export interface CstComment {
  text: string;
  blankBefore: boolean;
}

/** A statement: `name args…` or a block `name label… { body }`. */
export interface CstStmt {
  name: Token;
  args: Token[];
  body: CstStmt[] | null;
  leading: CstComment[];
  blankBefore: boolean;
  trailing: string | null;
  /** Comments that sat inside a multi-line list; printed before the statement. */
  inner: string[];
  /** Comments before the closing brace of a block. */
  closing: CstComment[];
  /** Comment after the closing brace. */
  closeTrailing: string | null;
}

/** A parsed file. */
export interface CstFile {
  stmts: CstStmt[];
  end: CstComment[];
  diagnostics: Diagnostic[];
}

const MAX_DEPTH = 16;
// Shared empty lists: most statements have no comments, and a policy can have thousands.
const NONE: CstComment[] = [];
const NONE_STR: string[] = [];

function isIdentStart(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
}
function isIdentPart(c: number): boolean {
  return isIdentStart(c) || (c >= 48 && c <= 57) || c === 45;
}
function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** Split text into tokens. Bad characters become diagnostics and are skipped. */
export function tokenize(text: string, file: string, diags: Diagnostic[]): Token[] {
  const out: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const n = text.length;
  if (text.charCodeAt(0) === 0xfeff) i = 1, lineStart = 1;
  const err = (code: string, message: string, l: number, c: number) =>
    diags.push({ code, severity: "error", message, file, line: l, col: c });
  while (i < n) {
    const c = text.charCodeAt(i);
    const col = i - lineStart + 1;
    if (c === 32 || c === 9 || c === 13) {
      i++;
      continue;
    }
    if (c === 10) {
      out.push({ kind: "newline", text: "\n", value: "\n", line, col });
      i++;
      line++;
      lineStart = i;
      continue;
    }
    if (c === 35 || (c === 47 && text.charCodeAt(i + 1) === 47)) {
      let j = i;
      while (j < n && text.charCodeAt(j) !== 10) j++;
      const t = text.slice(i, j).replace(/[ \t\r]+$/, "");
      out.push({ kind: "comment", text: t, value: t, line, col });
      i = j;
      continue;
    }
    if (c === 123 || c === 125 || c === 44) {
      const kind = c === 123 ? "lbrace" : c === 125 ? "rbrace" : "comma";
      const ch = text[i];
      out.push({ kind, text: ch, value: ch, line, col });
      i++;
      continue;
    }
    if (c === 46) {
      if (text.charCodeAt(i + 1) === 46) {
        out.push({ kind: "range", text: "..", value: "..", line, col });
        i += 2;
      } else {
        err("PL004", `unexpected character "." (a range is written "..")`, line, col);
        i++;
      }
      continue;
    }
    if (c === 34) {
      let j = i + 1;
      let value = "";
      let ok = true;
      let closed = false;
      while (j < n) {
        const d = text.charCodeAt(j);
        if (d === 34) {
          closed = true;
          j++;
          break;
        }
        if (d === 10) break;
        if (d === 92) {
          const e = text[j + 1];
          const map: Record<string, string> = { '"': '"', "\\": "\\", n: "\n", t: "\t", r: "\r" };
          if (e !== undefined && e in map) {
            value += map[e];
            j += 2;
            continue;
          }
          if (e === "u" && /^[0-9a-fA-F]{4}$/.test(text.slice(j + 2, j + 6))) {
            value += String.fromCharCode(parseInt(text.slice(j + 2, j + 6), 16));
            j += 6;
            continue;
          }
          ok = false;
          err(
            "PL003",
            `invalid escape "\\${e ?? ""}" in string; use \\", \\\\, \\n, \\t, \\r or \\uXXXX`,
            line,
            j - lineStart + 1,
          );
          j += e === undefined || e === "\n" ? 1 : 2;
          continue;
        }
        if (d < 32 && d !== 9) {
          ok = false;
          err("PL003", "control character in string; escape it", line, j - lineStart + 1);
          j++;
          continue;
        }
        value += text[j];
        j++;
      }
      if (!closed) {
        err("PL002", "unterminated string: add the closing '\"' on the same line", line, col);
        ok = false;
      }
      const raw = text.slice(i, j);
      if (ok) out.push({ kind: "string", text: raw, value, line, col });
      i = j;
      continue;
    }
    if (isIdentStart(c)) {
      let j = i + 1;
      while (j < n && isIdentPart(text.charCodeAt(j))) j++;
      const t = text.slice(i, j);
      out.push({ kind: "ident", text: t, value: t, line, col });
      i = j;
      continue;
    }
    if (isDigit(c)) {
      let j = i + 1;
      while (j < n && isDigit(text.charCodeAt(j))) j++;
      if (j < n && isIdentPart(text.charCodeAt(j))) {
        let k = j;
        while (k < n && isIdentPart(text.charCodeAt(k))) k++;
        err("PL004", `"${text.slice(i, k)}" is neither a number nor a name`, line, col);
        i = k;
        continue;
      }
      const t = text.slice(i, j);
      out.push({ kind: "int", text: t, value: t, line, col });
      i = j;
      continue;
    }
    const cp = text.codePointAt(i) ?? c;
    const ch = String.fromCodePoint(cp);
    err(
      "PL004",
      `unexpected character ${JSON.stringify(ch)}${
        c === 39 ? " (strings use double quotes)" : c === 59 ? " (statements end at a newline)" : ""
      }`,
      line,
      col,
    );
    i += ch.length;
  }
  out.push({ kind: "eof", text: "", value: "", line, col: n - lineStart + 1 });
  return out;
}

/** Parse text into statements. Never throws. */
export function parseCst(text: string, file: string): CstFile {
  const diagnostics: Diagnostic[] = [];
  const toks = tokenize(text, file, diagnostics);
  let p = 0;
  const err = (message: string, t: Token, code = "PL001") =>
    diagnostics.push({ code, severity: "error", message, file, line: t.line, col: t.col });
  const describe = (t: Token): string =>
    t.kind === "eof"
      ? "end of file"
      : t.kind === "newline"
      ? "end of line"
      : t.kind === "string"
      ? `string ${t.text}`
      : JSON.stringify(t.text);

  const skipLine = () => {
    // Skip to the end of the current line, stopping before braces so nesting stays balanced.
    while (toks[p].kind !== "newline" && toks[p].kind !== "eof") {
      if (toks[p].kind === "lbrace" || toks[p].kind === "rbrace") break;
      p++;
    }
  };

  // Collect comments and blank lines before the next statement or closing brace.
  const gap = (): { comments: CstComment[]; blank: boolean } => {
    let comments: CstComment[] = NONE;
    let newlines = 0;
    while (true) {
      const t = toks[p];
      if (t.kind === "newline") {
        newlines++;
        p++;
        continue;
      }
      if (t.kind === "comment") {
        if (comments === NONE) comments = [];
        comments.push({ text: t.text, blankBefore: newlines >= 2 });
        newlines = 0;
        p++;
        continue;
      }
      break;
    }
    return { comments, blank: newlines >= 2 };
  };

  const parseBody = (depth: number, opener: Token | null): {
    stmts: CstStmt[];
    closing: CstComment[];
  } => {
    const stmts: CstStmt[] = [];
    // The first gap after "{" or file start: a newline right after "{" is not a blank line.
    let firstGap = true;
    while (true) {
      const g = gap();
      let blank = g.blank;
      if (firstGap) {
        // Leading blank lines at the start of a block or file are not kept.
        blank = g.comments.length > 0 ? blank : false;
        if (g.comments.length > 0 && g.comments[0].blankBefore) g.comments[0].blankBefore = false;
      }
      firstGap = false;
      const t = toks[p];
      if (t.kind === "eof") {
        if (opener) {
          err(`block opened at ${opener.line}:${opener.col} is not closed: add "}"`, t, "PL005");
        }
        return { stmts, closing: g.comments };
      }
      if (t.kind === "rbrace") {
        if (opener) return { stmts, closing: g.comments };
        err('unmatched "}"', t, "PL005");
        p++;
        continue;
      }
      if (t.kind !== "ident") {
        err(`expected a key or block name, found ${describe(t)}`, t);
        p++;
        skipLine();
        if (toks[p].kind === "lbrace") {
          // Skip a whole stray block.
          p++;
          parseBody(depth + 1, toks[p - 1]);
          if (toks[p].kind === "rbrace") p++;
        }
        continue;
      }
      const stmt: CstStmt = {
        name: t,
        args: [],
        body: null,
        leading: g.comments,
        blankBefore: blank,
        trailing: null,
        inner: NONE_STR,
        closing: NONE,
        closeTrailing: null,
      };
      p++;
      // Arguments until end of line, "{" or "}". A trailing comma continues onto the next line.
      while (true) {
        const a = toks[p];
        if (
          a.kind === "ident" || a.kind === "string" || a.kind === "int" || a.kind === "comma" ||
          a.kind === "range"
        ) {
          stmt.args.push(a);
          p++;
          continue;
        }
        if (
          (a.kind === "newline" || a.kind === "comment") && stmt.args.length > 0 &&
          stmt.args[stmt.args.length - 1].kind === "comma"
        ) {
          // Continuation: swallow newlines and comments up to the next argument.
          let q = p;
          const inner: string[] = [];
          while (toks[q].kind === "newline" || toks[q].kind === "comment") {
            if (toks[q].kind === "comment") inner.push(toks[q].text);
            q++;
          }
          const nk = toks[q].kind;
          if (nk === "ident" || nk === "string" || nk === "int") {
            stmt.inner = stmt.inner === NONE_STR ? inner : [...stmt.inner, ...inner];
            p = q;
            continue;
          }
        }
        break;
      }
      const a = toks[p];
      if (a.kind === "lbrace") {
        p++;
        if (depth >= MAX_DEPTH) {
          err(`blocks nested deeper than ${MAX_DEPTH}`, a);
        }
        if (toks[p].kind === "comment") {
          stmt.trailing = toks[p].text;
          p++;
        }
        const body = parseBody(depth + 1, a);
        stmt.body = body.stmts;
        stmt.closing = body.closing;
        if (toks[p].kind === "rbrace") {
          p++;
          if (toks[p].kind === "comment") {
            stmt.closeTrailing = toks[p].text;
            p++;
          }
        }
      } else if (a.kind === "comment") {
        stmt.trailing = a.text;
        p++;
      }
      stmts.push(stmt);
      const e = toks[p];
      if (e.kind === "newline" || e.kind === "eof" || (e.kind === "rbrace" && opener)) continue;
      if (e.kind === "rbrace" && !opener) continue; // reported by the loop
      err(`expected end of line after "${stmt.name.text}", found ${describe(e)}`, e);
      skipLine();
      if (toks[p].kind === "lbrace") {
        p++;
        parseBody(depth + 1, toks[p - 1]);
        if (toks[p].kind === "rbrace") p++;
      }
    }
  };
  const top = parseBody(0, null);
  return { stmts: top.stmts, end: top.closing, diagnostics };
}

// ---- The policy model ------------------------------------------------------------------

type ValueKind = "int" | "bool" | "idents" | "strings" | "blast" | "freeze";
type Scope = "policy" | "deploy" | "remediation" | "agent" | "action";

/** Keys allowed in each block, with the type of their value. */
export const POLICY_KEYS: Readonly<Record<Scope, Readonly<Record<string, ValueKind>>>> = {
  policy: { version: "int", approvals: "int", freeze: "freeze" },
  deploy: { require_approval: "bool", approvals: "int", block_paths: "strings", max_files: "int" },
  remediation: { block_categories: "idents", require_approval: "bool", approvals: "int" },
  agent: { allow: "idents", deny: "idents", blast_radius: "blast" },
  action: { require_approval: "bool", approvals: "int", max_files: "int", blast_radius: "blast" },
};

/** Blocks allowed in each block. */
export const POLICY_BLOCKS: Readonly<Record<Scope, readonly string[]>> = {
  policy: ["deploy", "remediation", "agent", "action"],
  deploy: [],
  remediation: [],
  agent: ["action"],
  action: [],
};

const REPEATABLE = new Set(["freeze", "allow", "deny", "block_paths", "block_categories"]);
const BLAST: readonly string[] = ["single_host", "service", "fleet"];
const MAX_INT = 1_000_000_000;

/** Edit distance, for "did you mean" hints. */
function distance(a: string, b: string): number {
  const d: number[] = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0];
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j];
      d[j] = Math.min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return d[b.length];
}

/** A " (did you mean "x"?)" suffix when a close candidate exists, else "". */
export function suggest(word: string, candidates: readonly string[]): string {
  let best = "";
  let bestD = Infinity;
  for (const c of candidates) {
    const dd = distance(word.toLowerCase(), c);
    if (dd < bestD) bestD = dd, best = c;
  }
  return best && bestD <= Math.max(1, Math.floor(best.length / 3))
    ? ` (did you mean "${best}"?)`
    : "";
}

/**
 * Parse policy text.
 *
 * @param text The policy file's contents.
 * @param options `file`: the name used in diagnostics and decision reasons.
 * @returns The policy model and syntax/structure diagnostics (see {@linkcode lintPolicy} for all).
 *
 * @example Parse a policy
 * ```ts
 * import { parsePolicy } from "@infraveil/policy";
 * import assert from "node:assert/strict";
 *
 * const { policy, diagnostics } = parsePolicy(
 *   'policy "production" {\n  version 1\n  agent "ci" {\n    allow restart\n  }\n}\n',
 *   { file: "infraveil.policy" },
 * );
 * assert.equal(diagnostics.length, 0);
 * assert.equal(policy.policies[0].agents[0].name, "ci");
 * ```
 */
export function parsePolicy(text: string, options: { file?: string } = {}): ParsedPolicy {
  const file = options.file ?? "policy";
  const cst = parseCst(typeof text === "string" ? text : String(text), file);
  const diagnostics = cst.diagnostics;
  const doc: PolicyDocument = { file, policies: [] };
  const loc = (t: Token): Loc => ({ file, line: t.line, col: t.col });
  // A line with a syntax error gets no further structure errors: they would only echo it.
  const syntaxLines = new Set(diagnostics.map((d) => d.line));
  const err = (code: string, message: string, t: Token) => {
    if (!syntaxLines.has(t.line)) {
      diagnostics.push({ code, severity: "error", message, file, line: t.line, col: t.col });
    }
  };

  // Interpret the arguments of a key statement as `kind`; undefined (with a diagnostic) if wrong.
  const value = (s: CstStmt, kind: ValueKind): unknown => {
    const a = s.args;
    const key = s.name.text;
    const bad = (want: string, at: Token = a[0] ?? s.name) => {
      err("PL103", `${key} expects ${want}`, at);
      return undefined;
    };
    switch (kind) {
      case "int": {
        if (a.length !== 1 || a[0].kind !== "int") {
          return bad("a whole number, e.g. `" + key + " 2`");
        }
        const n = Number(a[0].text);
        if (n > MAX_INT) return bad(`a whole number no larger than ${MAX_INT}`);
        return { value: n, loc: loc(s.name) } satisfies Located<number>;
      }
      case "bool": {
        if (
          a.length !== 1 || a[0].kind !== "ident" || (a[0].text !== "true" && a[0].text !== "false")
        ) {
          return bad("true or false");
        }
        return { value: a[0].text === "true", loc: loc(s.name) } satisfies Located<boolean>;
      }
      case "blast": {
        if (a.length !== 1 || a[0].kind !== "ident" || !BLAST.includes(a[0].text)) {
          const got = a.length === 1 ? a[0].value : "";
          return bad(`one of single_host, service, fleet${got ? suggest(got, BLAST) : ""}`);
        }
        return { value: a[0].text as BlastRadius, loc: loc(s.name) } satisfies Located<BlastRadius>;
      }
      case "idents":
      case "strings": {
        const want = kind === "idents" ? "ident" : "string";
        const what = kind === "idents"
          ? "a comma-separated list of names, e.g. `" + key + " restart, deploy`"
          : "a comma-separated list of double-quoted globs, e.g. `" + key +
            ' ".env", "secrets/**"`';
        if (a.length === 0) return bad(what);
        const out: Located<string>[] = [];
        for (let i = 0; i < a.length; i++) {
          const t = a[i];
          if (i % 2 === 1) {
            if (t.kind !== "comma") return bad(what + " (items are separated by commas)", t);
            continue;
          }
          if (t.kind !== want) {
            return bad(
              what + (kind === "strings" && t.kind === "ident" ? " (quote the glob)" : "") +
                (kind === "idents" && t.kind === "string"
                  ? " (names are written without quotes)"
                  : ""),
              t,
            );
          }
          out.push({ value: t.value, loc: loc(t) });
        }
        if (a.length % 2 === 0) return bad(what + " (remove the trailing comma)", a[a.length - 1]);
        return out;
      }
      case "freeze": {
        const ok = (a.length === 3 || a.length === 4) && a[0].kind === "string" &&
          a[1].kind === "range" && a[2].kind === "string" &&
          (a.length === 3 || a[3].kind === "string");
        if (!ok) {
          return bad(
            'a window: freeze "2026-12-24T00:00:00Z" .. "2026-12-27T00:00:00Z" ["reason"]',
          );
        }
        return { start: a[0], end: a[2], reason: a[3]?.value };
      }
    }
  };

  // Walk a block body, calling onKey for keys and onBlock for nested blocks.
  const walk = (
    scope: Scope,
    body: CstStmt[],
    onKey: (key: string, s: CstStmt, v: unknown) => void,
    onBlock: (s: CstStmt) => void,
  ) => {
    const seen = new Map<string, Token>();
    const keys = POLICY_KEYS[scope];
    const blocks = POLICY_BLOCKS[scope];
    for (const s of body) {
      const name = s.name.text;
      if (s.body !== null) {
        if (blocks.includes(name)) {
          onBlock(s);
          continue;
        }
        if (name in keys) {
          err("PL106", `${name} is a key, not a block: write \`${name} <value>\``, s.name);
          continue;
        }
        err(
          "PL101",
          `unknown block "${name}" in ${scope}${suggest(name, blocks)}; allowed here: ${
            blocks.length ? blocks.join(", ") : "none"
          }`,
          s.name,
        );
        continue;
      }
      if (!(name in keys)) {
        if (blocks.includes(name)) {
          err(
            "PL106",
            `${name} is a block: write \`${name} ${
              name === "agent" ? '"<name>" ' : name === "action" ? "<action> " : ""
            }{ … }\``,
            s.name,
          );
          continue;
        }
        err(
          "PL102",
          `unknown key "${name}" in ${scope}${suggest(name, Object.keys(keys))}; allowed here: ${
            Object.keys(keys).join(", ")
          }`,
          s.name,
        );
        continue;
      }
      if (!REPEATABLE.has(name)) {
        const prev = seen.get(name);
        if (prev) {
          err(
            "PL104",
            `duplicate key "${name}" (first set at ${prev.line}:${prev.col}); keep one`,
            s.name,
          );
          continue;
        }
        seen.set(name, s.name);
      }
      const v = value(s, keys[name]);
      if (v !== undefined) onKey(name, s, v);
    }
  };

  const label = (s: CstStmt, kind: "string" | "ident" | "none", example: string): Token | null => {
    const a = s.args;
    if (kind === "none") {
      if (a.length) err("PL105", `${s.name.text} takes no label: write \`${example}\``, a[0]);
      return null;
    }
    if (a.length !== 1 || a[0].kind !== kind) {
      err(
        "PL105",
        `${s.name.text} needs ${
          kind === "string" ? "a quoted name" : "an action name"
        }: write \`${example}\``,
        a[0] ?? s.name,
      );
      return null;
    }
    if (a[0].value === "") {
      err("PL105", `${s.name.text} name must not be empty`, a[0]);
      return null;
    }
    return a[0];
  };

  const override = (s: CstStmt, into: ActionOverride[]) => {
    const l = label(s, "ident", "action deploy { approvals 2 }");
    const o: ActionOverride = { action: l ? l.value : "", loc: loc(s.name) };
    walk("action", s.body ?? [], (key, _s, v) => {
      if (key === "require_approval") o.requireApproval = v as Located<boolean>;
      else if (key === "approvals") o.approvals = v as Located<number>;
      else if (key === "max_files") o.maxFiles = v as Located<number>;
      else if (key === "blast_radius") o.blastRadius = v as Located<BlastRadius>;
    }, () => {});
    if (l) into.push(o);
  };

  const seenBlock = (map: Map<string, Token>, s: CstStmt): boolean => {
    const prev = map.get(s.name.text);
    if (prev) {
      err(
        "PL104",
        `duplicate ${s.name.text} block (first at ${prev.line}:${prev.col}); merge them`,
        s.name,
      );
      return true;
    }
    map.set(s.name.text, s.name);
    return false;
  };

  for (const s of cst.stmts) {
    if (s.name.text !== "policy" || s.body === null) {
      err(
        "PL101",
        s.name.text === "policy"
          ? 'policy is a block: write `policy "<environment>" { … }`'
          : `unknown top-level statement "${s.name.text}"${
            suggest(s.name.text, ["policy"])
          }; a file holds \`policy "<environment>" { … }\` blocks`,
        s.name,
      );
      continue;
    }
    const l = label(s, "string", 'policy "production" { … }');
    const pb: PolicyBlock = {
      environment: l ? l.value : "",
      loc: loc(s.name),
      freezes: [],
      agents: [],
      actions: [],
    };
    const blocks = new Map<string, Token>();
    walk("policy", s.body, (key, st, v) => {
      if (key === "version") pb.version = v as Located<number>;
      else if (key === "approvals") pb.approvals = v as Located<number>;
      else if (key === "freeze") {
        const f = v as { start: Token; end: Token; reason?: string };
        const startMs = parseInstant(f.start.value);
        const endMs = parseInstant(f.end.value);
        if (Number.isNaN(startMs)) {
          err(
            "PL208",
            `freeze start ${f.start.text} is not an RFC 3339 instant like "2026-12-24T00:00:00Z"`,
            f.start,
          );
        }
        if (Number.isNaN(endMs)) {
          err(
            "PL208",
            `freeze end ${f.end.text} is not an RFC 3339 instant like "2026-12-27T00:00:00Z"`,
            f.end,
          );
        }
        pb.freezes.push({
          start: f.start.value,
          end: f.end.value,
          startMs,
          endMs,
          ...(f.reason !== undefined ? { reason: f.reason } : {}),
          loc: loc(st.name),
        });
      }
    }, (b) => {
      const name = b.name.text;
      if (name === "deploy") {
        label(b, "none", "deploy { … }");
        if (seenBlock(blocks, b)) return;
        const d: DeployBlock = { loc: loc(b.name), blockPaths: [] };
        walk("deploy", b.body ?? [], (key, _s, v) => {
          if (key === "require_approval") d.requireApproval = v as Located<boolean>;
          else if (key === "approvals") d.approvals = v as Located<number>;
          else if (key === "max_files") d.maxFiles = v as Located<number>;
          else if (key === "block_paths") d.blockPaths.push(...(v as Located<string>[]));
        }, () => {});
        pb.deploy = d;
      } else if (name === "remediation") {
        label(b, "none", "remediation { … }");
        if (seenBlock(blocks, b)) return;
        const r: RemediationBlock = { loc: loc(b.name), blockCategories: [] };
        walk("remediation", b.body ?? [], (key, _s, v) => {
          if (key === "require_approval") r.requireApproval = v as Located<boolean>;
          else if (key === "approvals") r.approvals = v as Located<number>;
          else if (key === "block_categories") r.blockCategories.push(...(v as Located<string>[]));
        }, () => {});
        pb.remediation = r;
      } else if (name === "agent") {
        const al = label(b, "string", 'agent "deployer" { … }');
        const ag: AgentBlock = {
          name: al ? al.value : "",
          loc: loc(b.name),
          allow: [],
          deny: [],
          actions: [],
        };
        walk("agent", b.body ?? [], (key, st, v) => {
          if (key === "allow") {
            ag.allowLoc ??= loc(st.name);
            ag.allow.push(...(v as Located<string>[]));
          } else if (key === "deny") ag.deny.push(...(v as Located<string>[]));
          else if (key === "blast_radius") ag.blastRadius = v as Located<BlastRadius>;
        }, (ob) => override(ob, ag.actions));
        if (al) pb.agents.push(ag);
      } else if (name === "action") {
        override(b, pb.actions);
      }
    });
    if (l) doc.policies.push(pb);
  }
  return { policy: doc, diagnostics };
}

const INSTANT =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

/** Parse an RFC 3339 instant with an explicit offset to epoch ms; NaN when invalid. */
export function parseInstant(s: string): number {
  const m = INSTANT.exec(s);
  if (!m) return NaN;
  const [y, mo, d, h, mi, se] = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number);
  if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || se > 59) return NaN;
  const dim = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  if (d > dim) return NaN;
  const off = m[8].toUpperCase() === "Z" ? "Z" : m[8];
  if (off !== "Z") {
    const oh = Number(off.slice(1, 3));
    const om = Number(off.slice(4, 6));
    if (oh > 23 || om > 59) return NaN;
  }
  const ms = Date.parse(
    `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}${(m[7] ?? "").slice(0, 4)}${off}`,
  );
  return ms;
}

/** Diagnostics sorted by position then code, for stable output. */
export function sortDiagnostics(d: Diagnostic[]): Diagnostic[] {
  return d.sort((a, b) =>
    a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || a.col - b.col ||
      (a.code < b.code ? -1 : a.code > b.code ? 1 : 0)
  );
}
