/**
 * The canonical layout of policy files: two-space indentation, one statement per line, `a, b`
 * lists, ` .. ` ranges, canonical string escapes, at most one blank line between statements and
 * exactly one between policy blocks, comments kept where they were. Idempotent.
 *
 * @module
 */
import { type CstComment, type CstStmt, parseCst, type Token } from "./parse.ts";
import { PolicyError } from "./error.ts";

/** Escape a string value the way the formatter writes it. */
export function quote(value: string): string {
  let out = '"';
  for (const ch of value) {
    const c = ch.charCodeAt(0);
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\r") out += "\\r";
    else if (c < 0x20 || c === 0x7f) out += "\\u" + c.toString(16).padStart(4, "0");
    else out += ch;
  }
  return out + '"';
}

function tokenText(t: Token): string {
  if (t.kind === "string") return quote(t.value);
  if (t.kind === "int") return t.text.replace(/^0+(?=\d)/, "");
  return t.text;
}

function args(tokens: Token[]): string {
  let out = "";
  for (const t of tokens) {
    if (t.kind === "comma") out += ",";
    else if (t.kind === "range") out += " ..";
    else out += " " + tokenText(t);
  }
  return out;
}

/**
 * Format policy text into its canonical layout, keeping comments.
 *
 * @param text Policy text.
 * @param options `file`: the name used in the error's diagnostics.
 * @returns The formatted text (ends with one newline).
 * @throws {PolicyError} `PARSE` when the text has syntax errors (in `diagnostics`); structure
 * errors such as unknown keys do not prevent formatting.
 *
 * @example
 * ```ts
 * import { formatPolicy } from "@infraveil/policy";
 * import assert from "node:assert/strict";
 *
 * const out = formatPolicy('policy "p" {\nversion 1 # v\n  agent "a" { allow restart,deploy }\n}');
 * assert.equal(
 *   out,
 *   'policy "p" {\n  version 1 # v\n  agent "a" {\n    allow restart, deploy\n  }\n}\n',
 * );
 * assert.equal(formatPolicy(out), out);
 * ```
 */
export function formatPolicy(text: string, options: { file?: string } = {}): string {
  const file = options.file ?? "policy";
  const cst = parseCst(text, file);
  if (cst.diagnostics.length > 0) {
    const d = cst.diagnostics[0];
    throw new PolicyError(
      "PARSE",
      `Cannot format ${file}: syntax error at ${d.line}:${d.col}: ${d.message}`,
      { diagnostics: cst.diagnostics },
    );
  }
  const lines: string[] = [];
  const blank = () => {
    if (lines.length > 0 && lines[lines.length - 1] !== "") lines.push("");
  };
  const comments = (cs: CstComment[], indent: string, started: () => boolean) => {
    for (const c of cs) {
      if (c.blankBefore && started()) blank();
      lines.push(indent + c.text);
    }
  };
  const block = (stmts: CstStmt[], indent: string, top: boolean) => {
    const startLen = lines.length;
    const started = () => lines.length > startLen;
    for (const s of stmts) {
      if (top && started()) blank();
      comments(s.leading, indent, started);
      if (s.blankBefore && started()) blank();
      for (const c of s.inner) lines.push(indent + c);
      const header = indent + s.name.text + args(s.args);
      if (s.body === null) {
        lines.push(header + (s.trailing ? " " + s.trailing : ""));
        continue;
      }
      const close = "}" + (s.closeTrailing ? " " + s.closeTrailing : "");
      if (s.body.length === 0 && s.closing.length === 0 && !s.trailing) {
        lines.push(header + " {" + close);
        continue;
      }
      lines.push(header + " {" + (s.trailing ? " " + s.trailing : ""));
      const inner = indent + "  ";
      const before = lines.length;
      block(s.body, inner, false);
      for (const c of s.closing) {
        if (c.blankBefore && lines.length > before) blank();
        lines.push(inner + c.text);
      }
      lines.push(indent + close);
    }
    if (top) {
      cst.end.forEach((c, i) => {
        // A comment after the last block is set off by one blank line.
        if ((c.blankBefore || (i === 0 && stmts.length > 0)) && started()) blank();
        lines.push(c.text);
      });
    }
  };
  block(cst.stmts, "", true);
  return lines.length === 0 ? "" : lines.join("\n") + "\n";
}
