/**
 * Gitignore-style globs for `block_paths`: parsing, problems for the linter, and compiled
 * matchers. A compiled matcher answers "does this normalized, repository-relative path match?"
 * with plain string operations for the common shapes (`.env`, `secrets/**`, `**\/id_rsa`,
 * `*.pem`) and a precompiled RegExp for the rest.
 *
 * Semantics (as in `.gitignore`): a glob matches a path when it matches the path itself or one
 * of its leading directories. A glob with a `/` at the start or in the middle is anchored to the
 * repository root; otherwise it matches at any depth. A trailing `/` matches directories only.
 * `*` matches within one segment, `?` one character, `[a-z]`/`[!a-z]` a class, `\` escapes.
 * `**` as a whole segment: leading `**\/` and middle `/**\/` match zero or more directories,
 * trailing `/**` everything inside (one or more segments). Negation (`!`) is not supported.
 *
 * @module
 */

/** A glob split into its parts. */
export interface ParsedGlob {
  /** The glob as written. */
  source: string;
  /** Anchored at the repository root. */
  anchored: boolean;
  /** Matches directories only (trailing `/`). */
  dirOnly: boolean;
  /** Segments between `/`. */
  segments: string[];
}

// deno-lint-ignore no-control-regex
const BAD_CHARS = /[\\\u0000-\u001f]/;

/** Split a glob into anchoring, directory-only flag and segments. */
export function parseGlob(source: string): ParsedGlob {
  let g = source;
  let anchored = false;
  let dirOnly = false;
  if (g.startsWith("/")) anchored = true, g = g.slice(1);
  if (g.endsWith("/")) dirOnly = true, g = g.slice(0, -1);
  if (g.includes("/")) anchored = true;
  return { source, anchored, dirOnly, segments: g.split("/") };
}

function isSpecial(seg: string): boolean {
  return /[*?[\\]/.test(seg);
}

/**
 * Why a glob is invalid or can never match a normalized path, or null when it is fine.
 * `never` problems make a rule dead; `invalid` ones are written wrongly.
 */
export function globProblem(source: string): { kind: "never" | "invalid"; message: string } | null {
  if (source.startsWith("!")) {
    return {
      kind: "invalid",
      message: 'negated globs ("!…") are not supported in block_paths; write \\! for a literal "!"',
    };
  }
  if (source === "" || /^\/*$/.test(source)) {
    return { kind: "never", message: "an empty glob never matches a file" };
  }
  const g = parseGlob(source);
  for (const seg of g.segments) {
    if (seg === "") {
      return { kind: "never", message: 'an empty segment ("//") never matches a file path' };
    }
    if (seg === "." || seg === "..") {
      return {
        kind: "never",
        message:
          `a "${seg}" segment never matches: action paths are normalized, without "." or ".."`,
      };
    }
    if (seg.endsWith("\\") && !seg.endsWith("\\\\")) {
      return { kind: "invalid", message: "a glob cannot end a segment with a lone backslash" };
    }
    let i = 0;
    while (i < seg.length) {
      const c = seg[i];
      if (c === "\\") {
        i += 2;
        continue;
      }
      if (c === "[") {
        const end = classEnd(seg, i);
        if (end < 0) {
          return {
            kind: "invalid",
            message:
              'unclosed character class "[" (write \\[ for a literal "["; a class cannot hold "/")',
          };
        }
        const cls = parseClass(seg, i, end);
        if (!cls.negated && cls.ranges.every(([lo, hi]) => lo > hi)) {
          return {
            kind: "never",
            message: `character class ${seg.slice(i, end + 1)} matches no character`,
          };
        }
        i = end + 1;
        continue;
      }
      i++;
    }
  }
  return null;
}

/** Index of the `]` closing the class opened at `i`, or -1. */
export function classEnd(seg: string, i: number): number {
  let j = i + 1;
  if (seg[j] === "!" || seg[j] === "^") j++;
  if (seg[j] === "]") j++;
  while (j < seg.length) {
    if (seg[j] === "\\") {
      j += 2;
      continue;
    }
    if (seg[j] === "]") return j;
    j++;
  }
  return -1;
}

/** Parse the class `seg[i..end]` into char-code ranges (a single char is [c, c]). */
export function parseClass(
  seg: string,
  i: number,
  end: number,
): { negated: boolean; ranges: [number, number][] } {
  let j = i + 1;
  let negated = false;
  if (seg[j] === "!" || seg[j] === "^") negated = true, j++;
  const chars: number[] = [];
  const ranges: [number, number][] = [];
  while (j < end) {
    let c: number;
    if (seg[j] === "\\" && j + 1 < end) {
      c = seg.charCodeAt(j + 1);
      j += 2;
    } else {
      c = seg.charCodeAt(j);
      j++;
    }
    if (seg[j] === "-" && j + 1 < end) {
      let hi: number;
      if (seg[j + 1] === "\\" && j + 2 < end) hi = seg.charCodeAt(j + 2), j += 3;
      else hi = seg.charCodeAt(j + 1), j += 2;
      ranges.push([c, hi]);
    } else {
      chars.push(c);
    }
  }
  for (const c of chars) ranges.push([c, c]);
  return { negated, ranges };
}

const hex = (c: number) => "\\u" + c.toString(16).padStart(4, "0");

function segmentRegex(seg: string): string {
  let out = "";
  let i = 0;
  while (i < seg.length) {
    const c = seg[i];
    if (c === "\\") {
      // An escaped character matches itself; a lone trailing backslash matches a backslash.
      const lit = i + 1 < seg.length ? seg.charCodeAt(i + 1) : 92;
      out += hex(lit);
      i += 2;
      continue;
    }
    if (c === "*") {
      out += "[^/]*";
      while (seg[i] === "*") i++;
      continue;
    }
    if (c === "?") {
      out += "[^/]";
      i++;
      continue;
    }
    if (c === "[") {
      const end = classEnd(seg, i);
      if (end >= 0) {
        const cls = parseClass(seg, i, end);
        const ok = cls.ranges.filter(([lo, hi]) => lo <= hi);
        const body = ok.map(([lo, hi]) => lo === hi ? hex(lo) : hex(lo) + "-" + hex(hi)).join("");
        if (cls.negated) out += "[^/" + body + "]";
        else out += body === "" ? "(?!)" : "[" + body + "]";
        i = end + 1;
        continue;
      }
    }
    out += hex(seg.charCodeAt(i));
    i++;
  }
  return out;
}

/** Translate a glob into an equivalent RegExp over normalized paths. */
export function globToRegExp(source: string): RegExp {
  const g = parseGlob(source);
  const segs = g.anchored ? g.segments : ["**", ...g.segments];
  let re = "^";
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i];
    const sep = i > 0 && segs[i - 1] !== "**" ? "/" : "";
    if (s === "**") {
      re += i === segs.length - 1 ? sep + "[^/]+" : sep + "(?:[^/]+/)*";
    } else {
      re += sep + segmentRegex(s);
    }
  }
  re += g.dirOnly ? "/" : "(?:/|$)";
  return new RegExp(re);
}

/** A compiled glob: `test(path)` for a normalized path. */
export interface GlobMatcher {
  /** The glob as written. */
  readonly source: string;
  /** True when the glob matches the path or one of its leading directories. */
  test(path: string): boolean;
}

/**
 * Compile a glob into a fast matcher. Paths must be normalized (see `isNormalizedPath`).
 *
 * @example
 * ```ts
 * import { compileGlob } from "@infraveil/policy";
 * import assert from "node:assert/strict";
 *
 * const m = compileGlob("**\/id_rsa");
 * assert.equal(m.test("id_rsa"), true);
 * assert.equal(m.test("a/b/id_rsa"), true);
 * assert.equal(m.test("a/id_rsa.pub"), false);
 * ```
 */
export function compileGlob(source: string): GlobMatcher {
  const set = compileGlobSet([source]);
  return { source, test: (p) => set(p) === 0 };
}

/** One compiled glob: a shape and the strings (or RegExp) it compares with. */
interface GlobOp {
  /** 0 any-depth literal, 1 same for directories, 2 anchored literal, 3 same for directories,
   * 4 anchored literal prefix + trailing `**`, 5 any-depth `*suffix`, 6 RegExp */
  kind: 0 | 1 | 2 | 3 | 4 | 5 | 6;
  a: string;
  b: string;
  c: string;
  d: string;
  re: RegExp | null;
}

function globOp(source: string): GlobOp {
  const g = parseGlob(source);
  let segs = g.segments;
  let anchored = g.anchored;
  const op = (kind: GlobOp["kind"], a = "", b = "", c = "", d = "", re: RegExp | null = null) => ({
    kind,
    a,
    b,
    c,
    d,
    re,
  });
  // "**/x" is "x" at any depth.
  if (anchored && segs.length === 2 && segs[0] === "**" && !isSpecial(segs[1])) {
    segs = [segs[1]];
    anchored = false;
  }
  if (!anchored && segs.length === 1 && !isSpecial(segs[0]) && segs[0] !== "") {
    const l = segs[0];
    return op(g.dirOnly ? 1 : 0, l, l + "/", "/" + l + "/", "/" + l);
  }
  if (anchored && segs.every((s) => s !== "" && !isSpecial(s))) {
    const j = segs.join("/");
    return op(g.dirOnly ? 3 : 2, j, j + "/");
  }
  if (
    anchored && !g.dirOnly && segs.length >= 2 && segs[segs.length - 1] === "**" &&
    segs.slice(0, -1).every((s) => s !== "" && !isSpecial(s))
  ) {
    return op(4, segs.slice(0, -1).join("/") + "/");
  }
  if (!anchored && !g.dirOnly && segs.length === 1 && /^\*+[^*?[\\]+$/.test(segs[0])) {
    const suffix = segs[0].replace(/^\*+/, "");
    return op(5, suffix, suffix + "/");
  }
  return op(6, "", "", "", "", globToRegExp(source));
}

/**
 * Compile globs, in order, into one function returning the index of the first glob matching a
 * normalized path, or -1. Common shapes are answered with native string searches; one
 * monomorphic loop serves every glob, so a policy's `block_paths` cost one call per file.
 */
export function compileGlobSet(sources: readonly string[]): (path: string) => number {
  const ops = sources.map(globOp);
  const n = ops.length;
  return (p: string): number => {
    for (let i = 0; i < n; i++) {
      const o = ops[i];
      switch (o.kind) {
        case 0:
          // One native search rules out most paths before the exact checks.
          if (
            p.includes(o.a) &&
            (p === o.a || p.startsWith(o.b) || p.endsWith(o.d) || p.includes(o.c))
          ) return i;
          break;
        case 1:
          if (p.startsWith(o.b) || p.includes(o.c)) return i;
          break;
        case 2:
          if (p === o.a || p.startsWith(o.b)) return i;
          break;
        case 3:
          if (p.startsWith(o.b)) return i;
          break;
        case 4:
          if (p.length > o.a.length && p.startsWith(o.a)) return i;
          break;
        case 5:
          if (p.endsWith(o.a) || p.includes(o.b)) return i;
          break;
        default:
          if (o.re!.test(p)) return i;
      }
    }
    return -1;
  };
}

/**
 * True when `path` is a normalized repository-relative path: non-empty, `/`-separated, no
 * leading or trailing `/`, no empty, `.` or `..` segment, no backslash or control character. Anything else is
 * rejected (fail closed), so `./secrets/key` cannot slip past `secrets/**`.
 */
export function isNormalizedPath(p: string): boolean {
  const n = p.length;
  if (n === 0 || n > 4096) return false;
  const c0 = p.charCodeAt(0);
  if (c0 === 47 || p.charCodeAt(n - 1) === 47 || p.includes("//") || BAD_CHARS.test(p)) {
    return false;
  }
  // Native substring searches first; the per-segment walk runs only when a segment may be "."
  // or "..".
  if (c0 !== 46 && !p.includes("/.")) return true;
  let start = 0;
  for (let i = 0; i <= n; i++) {
    if (i < n && p.charCodeAt(i) !== 47) continue;
    const len = i - start;
    if (len <= 2 && p.charCodeAt(start) === 46 && (len === 1 || p.charCodeAt(start + 1) === 46)) {
      return false;
    }
    start = i + 1;
  }
  return true;
}
