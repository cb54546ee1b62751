/**
 * SecLang (ModSecurity rule language) lexer: turns configuration text into directives with
 * their arguments and source positions. It understands line continuations, comments and quoted
 * arguments; it knows nothing about what a directive means (see `compile.ts`).
 *
 * @module
 */
import { CrsError } from "./_errors.ts";

/** One configuration directive, e.g. `SecRule ARGS "@rx a" "id:1"`. */
export interface Directive {
  /** Directive name as written, e.g. "SecRule". */
  name: string;
  /** Arguments with the quotes removed and `\"` unescaped. */
  args: string[];
  /** Source file name. */
  file: string;
  /** 1-based line where the directive starts. */
  line: number;
}

/**
 * Splits SecLang text into directives.
 *
 * @param text The configuration text.
 * @param file The file name used in error messages.
 * @returns The directives in order.
 * @throws {CrsError} `PARSE` with file:line when a quoted argument is not closed.
 * @example
 * ```ts
 * import { parseSecLang } from "./parser.ts";
 * const [d] = parseSecLang('SecRule ARGS "@rx a" \\\n  "id:1,phase:2"', "x.conf");
 * if (d.args[2] !== "id:1,phase:2" || d.line !== 1) throw new Error();
 * ```
 */
export function parseSecLang(text: string, file: string): Directive[] {
  const out: Directive[] = [];
  const lines = text.split(/\r?\n/);
  let i = 0;
  while (i < lines.length) {
    const startLine = i + 1;
    let logical = lines[i];
    i++;
    // A trailing backslash joins the next physical line.
    while (/\\\s*$/.test(logical) && i < lines.length) {
      logical = logical.replace(/\\\s*$/, "") + lines[i];
      i++;
    }
    const trimmed = logical.trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    const words = splitArgs(trimmed, file, startLine);
    out.push({ name: words[0], args: words.slice(1), file, line: startLine });
  }
  return out;
}

function splitArgs(s: string, file: string, line: number): string[] {
  const words: string[] = [];
  let p = 0;
  while (p < s.length) {
    while (p < s.length && (s[p] === " " || s[p] === "\t")) p++;
    if (p >= s.length) break;
    if (s[p] === '"' || s[p] === "'") {
      const q = s[p];
      p++;
      let w = "";
      let closed = false;
      while (p < s.length) {
        const c = s[p];
        if (c === "\\" && s[p + 1] === q) {
          w += q;
          p += 2;
          continue;
        }
        if (c === q) {
          closed = true;
          p++;
          break;
        }
        w += c;
        p++;
      }
      if (!closed) {
        throw new CrsError(
          "PARSE",
          `${file}:${line}: unterminated ${q === '"' ? "double" : "single"}-quoted argument; ` +
            `close it with ${q} (a line ending in \\ continues the directive)`,
        );
      }
      words.push(w);
    } else {
      let w = "";
      while (p < s.length && s[p] !== " " && s[p] !== "\t") {
        if (s[p] === "\\" && s[p + 1] === '"') {
          w += '"';
          p += 2;
          continue;
        }
        w += s[p];
        p++;
      }
      words.push(w);
    }
  }
  return words;
}

/** One `name:value` action of a rule's action list. */
export interface ActionItem {
  /** Action name, lowercased where SecLang is case-insensitive (as written otherwise). */
  name: string;
  /** Value with single quotes removed, or undefined for bare actions like `pass`. */
  value?: string;
}

/**
 * Splits a rule's action string (`id:1,phase:2,msg:'a, b'`) into actions.
 *
 * @param s The action string.
 * @param where "file:line" for error messages.
 * @returns The actions in order.
 * @throws {CrsError} `PARSE` when a single-quoted value is not closed.
 */
export function parseActions(s: string, where: string): ActionItem[] {
  const out: ActionItem[] = [];
  let p = 0;
  while (p < s.length) {
    while (p < s.length && /[\s,]/.test(s[p])) p++;
    if (p >= s.length) break;
    let name = "";
    while (p < s.length && s[p] !== ":" && s[p] !== ",") name += s[p++];
    name = name.trim();
    if (s[p] !== ":") {
      out.push({ name });
      continue;
    }
    p++; // ':'
    while (p < s.length && s[p] === " ") p++;
    let value = "";
    if (s[p] === "'") {
      p++;
      let closed = false;
      while (p < s.length) {
        if (s[p] === "\\" && s[p + 1] === "'") {
          value += "'";
          p += 2;
          continue;
        }
        if (s[p] === "'") {
          closed = true;
          p++;
          break;
        }
        value += s[p++];
      }
      if (!closed) {
        throw new CrsError(
          "PARSE",
          `${where}: unterminated single-quoted value of action "${name}"; close it with '`,
        );
      }
      // Anything up to the next comma belongs to this value too (rare, e.g. 'a'b).
      while (p < s.length && s[p] !== ",") value += s[p++];
    } else {
      while (p < s.length && s[p] !== ",") value += s[p++];
      value = value.trim();
    }
    out.push({ name, value });
  }
  return out;
}

/** One target of a rule, e.g. `!REQUEST_HEADERS:Cookie` or `&TX:foo`. */
export interface TargetSpec {
  /** Upper-case variable name, e.g. "REQUEST_HEADERS". */
  name: string;
  /** Key selector as written, without quotes; a regex selector keeps its slashes. */
  selector?: string;
  /** `!` prefix: exclusion. */
  exclude: boolean;
  /** `&` prefix: count of values. */
  count: boolean;
}

/**
 * Splits a target list (`ARGS|!ARGS:foo|REQUEST_HEADERS:/^x-/`) into targets.
 *
 * @param s The target list.
 * @returns The targets in order.
 */
export function parseTargets(s: string): TargetSpec[] {
  const out: TargetSpec[] = [];
  const parts: string[] = [];
  let cur = "";
  let inRegex = false;
  let inQuote = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (!inRegex && !inQuote && c === "|") {
      parts.push(cur);
      cur = "";
      continue;
    }
    if (c === "\\" && inRegex) {
      cur += c + (s[i + 1] ?? "");
      i++;
      continue;
    }
    if (
      c === "/" && cur.endsWith(":") && !inQuote && !inRegex &&
      cur.replace(/^[!&]/, "").slice(0, -1).toUpperCase() !== "XML"
    ) inRegex = true;
    else if (c === "/" && inRegex) inRegex = false;
    else if (c === "'" && cur.endsWith(":")) inQuote = true;
    else if (c === "'" && inQuote) inQuote = false;
    cur += c;
  }
  if (cur !== "") parts.push(cur);
  for (let part of parts) {
    part = part.trim();
    if (part === "") continue;
    let exclude = false;
    let count = false;
    if (part[0] === "!") {
      exclude = true;
      part = part.slice(1);
    } else if (part[0] === "&") {
      count = true;
      part = part.slice(1);
    }
    const colon = part.indexOf(":");
    let name = part;
    let selector: string | undefined;
    if (colon >= 0) {
      name = part.slice(0, colon);
      selector = part.slice(colon + 1);
      if (selector.length >= 2 && selector[0] === "'" && selector.endsWith("'")) {
        selector = selector.slice(1, -1);
      }
    }
    out.push({ name: name.toUpperCase(), selector, exclude, count });
  }
  return out;
}
