/**
 * Translates the PCRE/RE2 patterns of SecLang into JavaScript `RegExp` with byte-string
 * semantics: leading inline flags become RegExp flags, `$` also
 * matches before a final newline (PCRE default), `\A` / `\z` / `\Z` and POSIX classes are mapped.
 *
 * @module
 */
import { CrsError } from "./_errors.ts";

const POSIX: Record<string, string> = {
  alpha: "A-Za-z",
  digit: "0-9",
  alnum: "A-Za-z0-9",
  upper: "A-Z",
  lower: "a-z",
  space: "\\t-\\r ",
  xdigit: "0-9A-Fa-f",
  punct: "!-\\/:-@\\[-`{-~",
  word: "A-Za-z0-9_",
  print: " -~",
  graph: "!-~",
  cntrl: "\\x00-\\x1f\\x7f",
  blank: " \\t",
};

/**
 * Compiles a SecLang regular expression.
 *
 * @param pattern The pattern as written in the rule.
 * @param where "file:line" for the error message.
 * @returns The compiled RegExp (no `g`, no `u`).
 * @throws {CrsError} `BAD_REGEX` naming the rule position when JS cannot compile it.
 */
export function compileRegex(pattern: string, where: string): RegExp {
  let flags = "";
  let p = pattern;
  const lead = /^\(\?([imsx]+)\)/.exec(p);
  if (lead) {
    for (const f of lead[1]) if (f !== "x" && !flags.includes(f)) flags += f;
    p = p.slice(lead[0].length);
  }
  const src = translate(p, flags.includes("m"));
  try {
    return new RegExp(src, flags);
  } catch (e) {
    throw new CrsError(
      "BAD_REGEX",
      `${where}: regular expression does not compile (${(e as Error).message}); ` +
        `CRS patterns must stay within RE2 syntax`,
      { cause: e },
    );
  }
}

function translate(p: string, multiline: boolean): string {
  let out = "";
  let inClass = false;
  // Per open group: inline-flag groups opened inside it ("(?i)" mid-pattern → "(?i:" … ")").
  const groups: { flags: string[] }[] = [{ flags: [] }];
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (!inClass && c === "(") {
      const m = /^\(\?([imsx-]+)\)/.exec(p.slice(i));
      if (m) {
        const f = m[1].replace(/x/g, "");
        if (f !== "" && f !== "-") {
          out += `(?${f}:`;
          groups[groups.length - 1].flags.push(f);
        }
        i += m[0].length - 1;
        continue;
      }
      groups.push({ flags: [] });
      out += c;
      continue;
    }
    if (!inClass && c === "|") {
      const g = groups[groups.length - 1];
      out += ")".repeat(g.flags.length) + "|" + g.flags.map((f) => `(?${f}:`).join("");
      continue;
    }
    if (!inClass && c === ")") {
      const g = groups.pop() ?? { flags: [] };
      if (groups.length === 0) groups.push({ flags: [] });
      out += ")".repeat(g.flags.length) + ")";
      continue;
    }
    if (c === "\\") {
      const n = p[i + 1];
      if (n === undefined) {
        out += "\\\\";
        break;
      }
      i++;
      // \s stays native: V8 optimises it, and the only byte it adds to PCRE's set is 0xA0.
      if (n === "A" && !inClass) out += "^";
      else if (n === "z" && !inClass) out += "$(?![\\s\\S])";
      else if (n === "Z" && !inClass) out += "(?=\\n?$(?![\\s\\S]))";
      else if (n === "Q") {
        const end = p.indexOf("\\E", i + 1);
        const lit = p.slice(i + 1, end < 0 ? p.length : end);
        out += lit.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
        i = end < 0 ? p.length : end + 1;
      } else if (n === "x" && p[i + 1] === "{") {
        const end = p.indexOf("}", i);
        const hex = p.slice(i + 2, end);
        const v = parseInt(hex, 16);
        out += v <= 0xff
          ? "\\x" + v.toString(16).padStart(2, "0")
          : "\\u" + v.toString(16).padStart(4, "0");
        i = end;
      } else if (n === "/") out += "\\/";
      else out += "\\" + n;
      continue;
    }
    if (inClass) {
      if (c === "[" && p[i + 1] === ":") {
        const end = p.indexOf(":]", i + 2);
        if (end > 0) {
          const name = p.slice(i + 2, end);
          const r = POSIX[name];
          if (r !== undefined) {
            out += r;
            i = end + 1;
            continue;
          }
        }
        out += "\\[";
        continue;
      }
      if (c === "[") {
        out += "\\[";
        continue;
      }
      if (c === "]") inClass = false;
      out += c;
      continue;
    }
    if (c === "[") {
      inClass = true;
      out += c;
      if (p[i + 1] === "^") {
        out += "^";
        i++;
      }
      if (p[i + 1] === "]") {
        // a leading ] is literal in PCRE
        out += "\\]";
        i++;
      }
      continue;
    }
    if (c === "$" && !multiline) {
      out += "(?=\\n?$)";
      continue;
    }
    if (c === "(" && p[i + 1] === "?" && p[i + 2] === "P" && p[i + 3] === "<") {
      out += "(?<";
      i += 3;
      continue;
    }
    out += c;
  }
  return out + ")".repeat(groups[0].flags.length);
}
