/**
 * XSS detection for `@detectXSS`, a port of libinjection's approach: an HTML5 tokenizer run from
 * five starting contexts (text, and inside an unquoted, single-, double- or back-quoted
 * attribute value), flagging dangerous tag names, event-handler and other dangerous attributes,
 * `javascript:`/`data:`-style URLs, style attributes, doctypes and IE-specific comments.
 *
 * @module
 */

type Ctx = "data" | "noquote" | "single" | "double" | "back";

interface H5Token {
  type: "tag_open" | "tag_close" | "attr_name" | "attr_value" | "comment" | "doctype" | "text";
  value: string;
}

function isSpace(c: string): boolean {
  return c === " " || c === "\t" || c === "\n" || c === "\v" || c === "\f" || c === "\r" ||
    c === "\0";
}

/** A small HTML5 tokenizer (enough of the spec's states to find tags and attributes). */
function* tokenize(s: string, ctx: Ctx): Generator<H5Token> {
  let i = 0;
  const n = s.length;
  // Starting inside an attribute value: read to its end, then continue in the tag.
  let inTag = false;
  if (ctx !== "data") {
    if (ctx === "noquote") {
      inTag = true;
    } else {
      const q = ctx === "single" ? "'" : ctx === "double" ? '"' : "`";
      const end = s.indexOf(q);
      if (end < 0) return;
      yield { type: "attr_value", value: s.slice(0, end) };
      i = end + 1;
      inTag = true;
    }
  }
  while (i < n) {
    if (inTag) {
      // attributes until '>'
      while (i < n && (isSpace(s[i]) || s[i] === "/")) i++;
      if (i >= n) return;
      if (s[i] === ">") {
        i++;
        inTag = false;
        continue;
      }
      let j = i;
      // attribute name: first char may be anything but space / >
      j++;
      while (j < n && !isSpace(s[j]) && s[j] !== "/" && s[j] !== ">" && s[j] !== "=") j++;
      const name = s.slice(i, j);
      yield { type: "attr_name", value: name };
      i = j;
      while (i < n && isSpace(s[i])) i++;
      if (s[i] !== "=") continue;
      i++;
      while (i < n && isSpace(s[i])) i++;
      if (i >= n) return;
      const q = s[i];
      if (q === '"' || q === "'" || q === "`") {
        const end = s.indexOf(q, i + 1);
        const v = s.slice(i + 1, end < 0 ? n : end);
        yield { type: "attr_value", value: v };
        i = end < 0 ? n : end + 1;
      } else {
        let k = i;
        while (k < n && !isSpace(s[k]) && s[k] !== ">") k++;
        yield { type: "attr_value", value: s.slice(i, k) };
        i = k;
      }
      continue;
    }
    const lt = s.indexOf("<", i);
    if (lt < 0) {
      yield { type: "text", value: s.slice(i) };
      return;
    }
    if (lt > i) yield { type: "text", value: s.slice(i, lt) };
    i = lt + 1;
    if (i >= n) return;
    const c = s[i];
    if (c === "!") {
      if (s.startsWith("--", i + 1)) {
        const end = s.indexOf("-->", i + 3);
        yield { type: "comment", value: s.slice(i + 3, end < 0 ? n : end) };
        i = end < 0 ? n : end + 3;
      } else if (s.slice(i + 1, i + 8).toUpperCase() === "DOCTYPE") {
        yield { type: "doctype", value: s.slice(i + 8) };
        return;
      } else {
        const end = s.indexOf(">", i);
        yield { type: "comment", value: s.slice(i + 1, end < 0 ? n : end) };
        i = end < 0 ? n : end + 1;
      }
      continue;
    }
    if (c === "?") {
      const end = s.indexOf(">", i);
      yield { type: "comment", value: s.slice(i + 1, end < 0 ? n : end) };
      i = end < 0 ? n : end + 1;
      continue;
    }
    if (c === "/") {
      let j = i + 1;
      while (j < n && !isSpace(s[j]) && s[j] !== ">") j++;
      yield { type: "tag_close", value: s.slice(i + 1, j) };
      const end = s.indexOf(">", j);
      i = end < 0 ? n : end + 1;
      continue;
    }
    if (/[A-Za-z]/.test(c)) {
      let j = i;
      while (j < n && !isSpace(s[j]) && s[j] !== "/" && s[j] !== ">") j++;
      yield { type: "tag_open", value: s.slice(i, j) };
      i = j;
      inTag = true;
      continue;
    }
    // '<' followed by anything else is text
  }
}

const BLACK_TAGS = new Set([
  "APPLET",
  "BASE",
  "COMMENT",
  "EMBED",
  "FRAME",
  "FRAMESET",
  "HANDLER",
  "IFRAME",
  "IMPORT",
  "ISINDEX",
  "LINK",
  "LISTENER",
  "META",
  "NOSCRIPT",
  "OBJECT",
  "SCRIPT",
  "STYLE",
  "VMLFRAME",
  "XML",
  "XSS",
]);

function stripNulls(s: string): string {
  return s.indexOf("\0") < 0 ? s : s.replace(/\0/g, "");
}

function isBlackTag(name: string): boolean {
  const u = stripNulls(name).toUpperCase();
  if (u.length < 3) return false;
  if (u.startsWith("SVG") || u.startsWith("XSL")) return true;
  return BLACK_TAGS.has(u);
}

type AttrKind = "none" | "black" | "url" | "style" | "indirect";

const URL_ATTRS = new Set([
  "HREF",
  "SRC",
  "ACTION",
  "FORMACTION",
  "DATA",
  "LOWSRC",
  "DYNSRC",
  "BACKGROUND",
  "CODEBASE",
  "POSTER",
  "XLINK:HREF",
]);

function attrKind(name: string): AttrKind {
  const u = stripNulls(name).toUpperCase();
  if (u.length >= 5 && (u.startsWith("ON") || u.startsWith("XMLNS") || u.startsWith("XLINK"))) {
    return "black";
  }
  if (URL_ATTRS.has(u)) return "url";
  if (u === "STYLE") return "style";
  if (u === "ATTRIBUTENAME" || u === "VALUES" || u === "FROM" || u === "TO" || u === "BY") {
    return "indirect";
  }
  return "none";
}

function htmlDecodeLoose(s: string): string {
  return s.replace(/&#[xX]([0-9a-fA-F]+);?|&#([0-9]+);?|&(colon|tab|newline);/g, (_m, h, d, nm) => {
    if (h) return String.fromCharCode(parseInt(h, 16) & 0xffff);
    if (d) return String.fromCharCode(parseInt(d, 10) & 0xffff);
    return nm === "colon" ? ":" : nm === "tab" ? "\t" : "\n";
  });
}

function isBlackUrl(v: string): boolean {
  // Skip leading whitespace/control bytes, decode entities, ignore embedded whitespace.
  // deno-lint-ignore no-control-regex
  const d = htmlDecodeLoose(v).replace(/[\x00-\x20\x7f]/g, "").toLowerCase();
  return d.startsWith("javascript:") || d.startsWith("vbscript:") || d.startsWith("data:") ||
    d.startsWith("view-source:");
}

function isXssIn(s: string, ctx: Ctx): boolean {
  let attr: AttrKind = "none";
  for (const t of tokenize(s, ctx)) {
    switch (t.type) {
      case "doctype":
        return true;
      case "tag_open":
        if (isBlackTag(t.value)) return true;
        break;
      case "tag_close":
        break;
      case "attr_name":
        attr = attrKind(t.value);
        break;
      case "attr_value":
        // An event handler needs a value to run; a bare word such as "online" is text.
        if (attr === "black") return true;
        if (attr === "url" && isBlackUrl(t.value)) return true;
        if (attr === "style") return true;
        if (attr === "indirect" && attrKind(t.value) === "black") return true;
        attr = "none";
        break;
      case "comment": {
        const c = t.value;
        if (c.includes("`")) return true;
        if (c.length > 3) {
          const u = c.slice(0, 3).toUpperCase();
          if (u === "[IF" || u === "XML") return true;
        }
        if (c.length > 5) {
          const u = c.slice(0, 6).toUpperCase();
          if (u === "IMPORT" || u === "ENTITY") return true;
        }
        break;
      }
      case "text":
        break;
    }
  }
  return false;
}

/**
 * Detects cross-site scripting in one value.
 *
 * @param s The value (a byte string).
 * @returns True when the value carries HTML/JS that would execute in some HTML context.
 * @example
 * ```ts
 * import { detectXss } from "./libinjection_xss.ts";
 * if (!detectXss("<script>alert(1)</script>")) throw new Error("missed");
 * if (detectXss("a < b and c > d")) throw new Error("false positive");
 * ```
 */
export function detectXss(s: string): boolean {
  if (s.length === 0) return false;
  if (
    s.indexOf("<") < 0 && s.indexOf("'") < 0 && s.indexOf('"') < 0 && s.indexOf("`") < 0 &&
    s.indexOf("=") < 0
  ) {
    return false; // no context can produce a tag or an attribute
  }
  for (const ctx of ["data", "noquote", "single", "double", "back"] as Ctx[]) {
    if (isXssIn(s, ctx)) return true;
  }
  return false;
}
