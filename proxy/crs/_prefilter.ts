/**
 * Literal prefilters for `@rx`: from a compiled JavaScript regular expression, derives a set of
 * literal strings such that every string the expression matches contains at least one of them
 * (compared with ASCII case folded). When a value contains none of them the expression cannot
 * match, so the regex need not run. The analysis is conservative: whatever it does not
 * understand (back-references, large or negated classes, non-ASCII literals, `.`) counts as
 * "anything", and an expression that can match without any of its literals yields no prefilter.
 *
 * @module
 */

/** What is known about the strings one regex node can match (all ASCII-lowercased). */
interface Info {
  /** Every string the node can match, when that set is small; else null. */
  exact: Set<string> | null;
  /** Every match contains one of these; null when nothing is known. */
  need: Set<string> | null;
  /** Every match starts with one of these; null when nothing is known. */
  pre: Set<string> | null;
  /** Every match ends with one of these; null when nothing is known. */
  suf: Set<string> | null;
}

const EXACT_LIMIT = 64;
const NEED_LIMIT = 4096;
const CLASS_LIMIT = 12;

const ANY: Info = { exact: null, need: null, pre: null, suf: null };
const NOTHING = new Set([""]);
const EMPTY: Info = { exact: NOTHING, need: null, pre: NOTHING, suf: NOTHING };

function fold(c: number): number {
  return c >= 65 && c <= 90 ? c + 32 : c;
}

const scores = new WeakMap<Set<string>, number>();

function score(s: Set<string> | null): number {
  if (s === null || s.size === 0) return -Infinity;
  let sc = scores.get(s);
  if (sc === undefined) {
    let min = Infinity;
    for (const x of s) if (x.length < min) min = x.length;
    // Longer literals reject more values; among equals, fewer literals are cheaper.
    sc = min === 0 ? -Infinity : Math.min(min, 8) * 10000 - Math.min(s.size, 9999);
    scores.set(s, sc);
  }
  return sc;
}

function better(a: Set<string> | null, b: Set<string> | null): Set<string> | null {
  return score(b) > score(a) ? b : a;
}

/** The most selective of the sets known to hold a part of every match. */
function best(i: Info): Set<string> | null {
  const b = better(better(better(i.need, i.exact), i.pre), i.suf);
  return score(b) === -Infinity ? null : b;
}

function cross(a: Set<string>, b: Set<string>, limit = EXACT_LIMIT): Set<string> | null {
  if (b === NOTHING) return a;
  if (a === NOTHING) return b;
  if (a.size * b.size > limit) return null;
  const out = new Set<string>();
  for (const x of a) for (const y of b) out.add(x + y);
  return out;
}

function union(sets: (Set<string> | null)[], limit: number): Set<string> | null {
  const out = new Set<string>();
  for (const s of sets) {
    if (s === null) return null;
    for (const x of s) out.add(x);
    if (out.size > limit) return null;
  }
  return out;
}

function exactly(s: Set<string>): Info {
  return { exact: s, need: null, pre: s, suf: s };
}

function chars(codes: Iterable<number>, icase: boolean): Info {
  const s = new Set<string>();
  for (const c of codes) {
    // Case-insensitive matching of non-ASCII characters is not modelled; outside (?i) they are
    // kept as they are (values are byte strings; the scanner compares bytes).
    if (c >= 0x80 && (icase || c > 0xff)) return ANY;
    s.add(String.fromCharCode(fold(c)));
    if (s.size > CLASS_LIMIT) return ANY;
  }
  if (s.size === 0) return ANY;
  return exactly(s);
}

function concat(items: Info[]): Info {
  if (items.length === 1) return items[0];
  let exact: Set<string> | null = NOTHING;
  for (const it of items) {
    if (exact === null || it.exact === null) {
      exact = null;
      break;
    }
    exact = cross(exact, it.exact);
  }
  if (exact !== null) return exactly(exact);
  // prefixes: the known strings from the left, then the prefixes of the first unknown node
  let pre: Set<string> = NOTHING;
  for (const it of items) {
    const part = it.exact ?? it.pre;
    const n = part === null ? null : cross(pre, part);
    if (n === null) break;
    pre = n;
    if (it.exact === null) break;
  }
  let suf: Set<string> = NOTHING;
  for (let k = items.length - 1; k >= 0; k--) {
    const it = items[k];
    const part = it.exact ?? it.suf;
    const n = part === null ? null : cross(part, suf);
    if (n === null) break;
    suf = n;
    if (it.exact === null) break;
  }
  let need: Set<string> | null = better(pre, suf);
  for (const it of items) need = better(need, best(it));
  // Adjacent nodes give longer literals: from the known strings (or the suffixes) of a node,
  // through known strings, up to the prefixes of the next unknown node.
  for (let s = 0; s < items.length; s++) {
    let w = items[s].exact ?? items[s].suf;
    if (w === null) continue;
    for (let e = s + 1; e < items.length; e++) {
      const it = items[e];
      const n = cross(w, it.exact ?? it.pre ?? NOTHING);
      if (n === null) break;
      w = n;
      need = better(need, w);
      if (it.exact === null) break;
    }
    need = better(need, w);
  }
  return { exact: null, need, pre, suf };
}

function alternate(alts: Info[]): Info {
  if (alts.length === 1) return alts[0];
  const exact = union(alts.map((a) => a.exact), EXACT_LIMIT);
  if (exact !== null) return exactly(exact);
  return {
    exact: null,
    need: union(alts.map(best), NEED_LIMIT),
    // (larger prefix/suffix sets cannot be joined with a neighbour: see cross())
    pre: union(alts.map((a) => a.pre), EXACT_LIMIT),
    suf: union(alts.map((a) => a.suf), EXACT_LIMIT),
  };
}

function repeat(it: Info, min: number, max: number): Info {
  if (min === 0) {
    const opt = (s: Set<string> | null): Set<string> | null =>
      s === null ? null : union([s, NOTHING], EXACT_LIMIT);
    if (max === 1 && it.exact !== null) return exactly(opt(it.exact)!);
    return { exact: null, need: null, pre: opt(it.pre), suf: opt(it.suf) };
  }
  // Every match is m1 m2 … mk (k ≥ min): it starts with m1…m_min and ends with min matches.
  let pow: Set<string> | null = null;
  if (it.exact !== null) {
    pow = NOTHING;
    for (let k = 0; k < min && pow !== null; k++) pow = cross(pow, it.exact);
  }
  if (min === max && pow !== null) return exactly(pow);
  return { exact: null, need: better(pow, best(it)), pre: pow ?? it.pre, suf: pow ?? it.suf };
}

class Parser {
  i = 0;
  /** Case-insensitive at this point (the `i` flag, `(?i:…)` groups). */
  icase: boolean;
  constructor(readonly src: string, flags: string) {
    this.icase = flags.includes("i");
  }

  fail(): never {
    throw new Error(`prefilter: cannot parse regex at ${this.i}`);
  }

  alternation(): Info {
    const alts: Info[] = [this.sequence()];
    while (this.src[this.i] === "|") {
      this.i++;
      alts.push(this.sequence());
    }
    return alternate(alts);
  }

  sequence(): Info {
    const items: Info[] = [];
    const s = this.src;
    while (this.i < s.length && s[this.i] !== "|" && s[this.i] !== ")") {
      let atom = this.atom();
      // quantifiers
      for (;;) {
        const c = s[this.i];
        let min = -1;
        let max = -1;
        if (c === "*") [min, max] = [0, Infinity];
        else if (c === "+") [min, max] = [1, Infinity];
        else if (c === "?") [min, max] = [0, 1];
        else if (c === "{") {
          const m = /^\{(\d+)(?:(,)(\d*))?\}/.exec(s.slice(this.i, this.i + 24));
          if (!m) break; // a literal "{" (not a quantifier)
          min = Number(m[1]);
          max = m[2] === undefined ? min : m[3] === "" ? Infinity : Number(m[3]);
          this.i += m[0].length - 1;
        } else break;
        this.i++;
        if (s[this.i] === "?") this.i++; // lazy
        atom = repeat(atom, min, max);
      }
      items.push(atom);
    }
    if (items.length === 0) return EMPTY;
    return concat(items);
  }

  atom(): Info {
    const s = this.src;
    const c = s[this.i];
    if (c === "(") {
      this.i++;
      let look = false;
      if (s[this.i] === "?") {
        const rest = s.slice(this.i, this.i + 4);
        if (rest.startsWith("?:")) this.i += 2;
        else if (rest.startsWith("?=") || rest.startsWith("?!")) {
          this.i += 2;
          look = true;
        } else if (rest.startsWith("?<=") || rest.startsWith("?<!")) {
          this.i += 3;
          look = true;
        } else if (rest.startsWith("?<")) {
          const end = s.indexOf(">", this.i);
          if (end < 0) this.fail();
          this.i = end + 1;
        } else {
          const m = /^\?([a-z]*)(?:-([a-z]*))?:/.exec(s.slice(this.i, this.i + 12));
          if (!m) this.fail();
          this.i += m[0].length;
          const outer = this.icase;
          if (m[1].includes("i")) this.icase = true;
          if ((m[2] ?? "").includes("i")) this.icase = false;
          const inner = this.alternation();
          this.icase = outer;
          if (s[this.i] !== ")") this.fail();
          this.i++;
          return inner;
        }
      }
      const inner = this.alternation();
      if (s[this.i] !== ")") this.fail();
      this.i++;
      return look ? EMPTY : inner;
    }
    if (c === "[") return this.klass();
    if (c === "\\") return this.escape();
    this.i++;
    if (c === ".") return ANY;
    if (c === "^" || c === "$") return EMPTY;
    return chars([c.charCodeAt(0)], this.icase);
  }

  escape(): Info {
    const s = this.src;
    const n = s[this.i + 1];
    if (n === undefined) this.fail();
    this.i += 2;
    switch (n) {
      case "b":
      case "B":
        return EMPTY;
      case "d":
        return chars([48, 49, 50, 51, 52, 53, 54, 55, 56, 57], false);
      case "D":
      case "w":
      case "W":
      case "s":
      case "S":
        return ANY;
      case "k":
        if (s[this.i] === "<") {
          const end = s.indexOf(">", this.i);
          if (end > 0) this.i = end + 1;
        }
        return ANY;
      default: {
        const code = this.escapedChar(n);
        return code === undefined ? ANY : chars([code], this.icase);
      }
    }
  }

  /** The character of an escape whose letter `n` was consumed; undefined when unsure. */
  escapedChar(n: string): number | undefined {
    const s = this.src;
    switch (n) {
      case "t":
        return 9;
      case "n":
        return 10;
      case "v":
        return 11;
      case "f":
        return 12;
      case "r":
        return 13;
      case "x": {
        const h = /^[0-9a-fA-F]{2}/.exec(s.slice(this.i, this.i + 2));
        if (!h) return 120; // "\x" without digits is a literal x
        this.i += 2;
        return parseInt(h[0], 16);
      }
      case "u": {
        const h = /^[0-9a-fA-F]{4}/.exec(s.slice(this.i, this.i + 4));
        if (!h) return 117;
        this.i += 4;
        return parseInt(h[0], 16);
      }
      case "c": {
        const l = s[this.i];
        if (l !== undefined && /[a-zA-Z]/.test(l)) {
          this.i++;
          return l.charCodeAt(0) % 32;
        }
        return undefined;
      }
      case "0":
        if (!/[0-9]/.test(s[this.i] ?? "")) return 0;
        while (/[0-9]/.test(s[this.i] ?? "")) this.i++; // legacy octal escape
        return undefined;
    }
    if (/[1-9]/.test(n)) {
      // back-reference or legacy octal escape: unknown (consume the digits)
      while (/[0-9]/.test(s[this.i] ?? "")) this.i++;
      return undefined;
    }
    return n.charCodeAt(0); // identity escape
  }

  klass(): Info {
    const s = this.src;
    this.i++; // [
    let negated = false;
    if (s[this.i] === "^") {
      negated = true;
      this.i++;
    }
    const codes = new Set<number>();
    let unknown = false;
    while (this.i < s.length && s[this.i] !== "]") {
      const lo = this.classAtom();
      if (s[this.i] === "-" && s[this.i + 1] !== "]" && this.i + 1 < s.length) {
        this.i++;
        const hi = this.classAtom();
        if (lo === undefined || hi === undefined) {
          unknown = true;
          continue;
        }
        if (hi - lo > 256) {
          unknown = true;
          continue;
        }
        for (let x = lo; x <= hi; x++) codes.add(x);
        continue;
      }
      if (lo === undefined) unknown = true;
      else codes.add(lo);
    }
    if (s[this.i] !== "]") this.fail();
    this.i++;
    if (negated || unknown) return ANY;
    return chars(codes, this.icase);
  }

  /** One class member; undefined for a class escape (\d, \w, …) or anything unsure. */
  classAtom(): number | undefined {
    const s = this.src;
    const c = s[this.i];
    if (c !== "\\") {
      this.i++;
      return c.charCodeAt(0);
    }
    const n = s[this.i + 1];
    this.i += 2;
    if (n === undefined) this.fail();
    if ("dDwWsS".includes(n)) return undefined;
    if (n === "b") return 8;
    if (n === "-") return 45;
    if (n === "c") {
      // inside a class, \c may also take digits and _; stay conservative
      const l = s[this.i];
      if (l !== undefined && /[a-zA-Z]/.test(l)) {
        this.i++;
        return l.charCodeAt(0) % 32;
      }
      return undefined;
    }
    if (/[0-9]/.test(n)) {
      if (n === "0" && !/[0-9]/.test(s[this.i] ?? "")) return 0;
      while (/[0-9]/.test(s[this.i] ?? "")) this.i++;
      return undefined;
    }
    return this.escapedChar(n);
  }
}

/**
 * Literals one of which every match of `re` contains (ASCII case-insensitively), or undefined
 * when no useful set can be proven (then the regex must always run).
 *
 * @param re A regex compiled by `compileRegex` (flags i, s, m only).
 * @returns Lowercased literals, or undefined.
 */
export function requiredLiterals(re: RegExp): string[] | undefined {
  if (/[uvy]/.test(re.flags)) return undefined;
  let info: Info;
  try {
    const p = new Parser(re.source, re.flags);
    info = p.alternation();
    if (p.i !== re.source.length) return undefined;
  } catch {
    return undefined;
  }
  const b = best(info);
  if (b === null || score(b) === -Infinity) return undefined;
  return [...b];
}

/**
 * One pass over a value that finds which of many literal groups occur in it: an Aho-Corasick
 * automaton over every group's literals (bytes folded like `@pm`: `& 0xff`, then ASCII
 * lowercase). The result is a bit set of group numbers in 30-bit words.
 */
export interface GroupScanner {
  /** Number of 30-bit words of a result. */
  readonly words: number;
  /** Returns the groups (bit `g % 30` of word `g / 30`) one of whose literals occurs in `s`. */
  scan(s: string): number[];
}

function foldByte(c: number): number {
  c &= 0xff;
  return c >= 65 && c <= 90 ? c + 32 : c;
}

/**
 * Builds the scanner.
 *
 * @param groups The literal lists; group `g` is `groups[g]` (empty literals are ignored).
 * @param pack False keeps the unpacked transition table even when the packed one would fit
 *   (for tests; the packed one is faster).
 * @returns The scanner.
 */
export function buildGroupScanner(groups: string[][], pack = true): GroupScanner {
  const words = Math.max(1, Math.ceil(groups.length / 30));
  // Byte → equivalence class (bytes that occur in no literal share class 0).
  const cls = new Uint8Array(256);
  let width = 1;
  for (const g of groups) {
    for (const p of g) {
      for (let i = 0; i < p.length; i++) {
        const c = foldByte(p.charCodeAt(i));
        if (cls[c] === 0) cls[c] = width++;
      }
    }
  }
  for (let c = 65; c <= 90; c++) cls[c] = cls[c + 32];
  if (width > 255) throw new Error("prefilter: too many byte classes");
  const goto: Int32Array[] = [new Int32Array(width).fill(-1)];
  const outs: Map<number, number>[] = [new Map()];
  for (let g = 0; g < groups.length; g++) {
    for (const p of groups[g]) {
      if (p === "") continue;
      let st = 0;
      for (let i = 0; i < p.length; i++) {
        const c = cls[foldByte(p.charCodeAt(i))];
        let n = goto[st][c];
        if (n < 0) {
          n = goto.length;
          goto.push(new Int32Array(width).fill(-1));
          outs.push(new Map());
          goto[st][c] = n;
        }
        st = n;
      }
      const w = (g / 30) | 0;
      const o = outs[st];
      o.set(w, (o.get(w) ?? 0) | (1 << (g % 30)));
    }
  }
  const n = goto.length;
  const fail = new Int32Array(n);
  const next = new Int32Array(n * width);
  const queue: number[] = [];
  for (let c = 0; c < width; c++) {
    const s = goto[0][c];
    if (s < 0) next[c] = 0;
    else {
      next[c] = s;
      fail[s] = 0;
      queue.push(s);
    }
  }
  for (let qi = 0; qi < queue.length; qi++) {
    const st = queue[qi];
    // outputs of the longest proper suffix that is a trie node
    for (const [w, m] of outs[fail[st]]) outs[st].set(w, (outs[st].get(w) ?? 0) | m);
    for (let c = 0; c < width; c++) {
      const s = goto[st][c];
      if (s < 0) next[st * width + c] = next[fail[st] * width + c];
      else {
        next[st * width + c] = s;
        fail[s] = next[fail[st] * width + c];
        queue.push(s);
      }
    }
  }
  // Each state's output (the groups it completes) as an index into a list of distinct output
  // sets (0: none). A scan ORs a set in the first time it reaches it, so a long value costs one
  // table step per byte, whatever the number of accepting states.
  const outIdOf = new Map<string, number>();
  const outList: Map<number, number>[] = [new Map()];
  const outId = new Int32Array(n);
  for (let st = 0; st < n; st++) {
    if (outs[st].size === 0) continue;
    const key = [...outs[st]].sort((a, b) => a[0] - b[0]).map(([w, m]) => `${w}:${m}`).join(",");
    let id = outIdOf.get(key);
    if (id === undefined) {
      id = outList.length;
      outList.push(outs[st]);
      outIdOf.set(key, id);
    }
    outId[st] = id;
  }
  const outMask = new Int32Array(outList.length * words);
  for (let i = 1; i < outList.length; i++) {
    for (const [w, m] of outList[i]) outMask[i * words + w] |= m;
  }
  const seen = new Int32Array(outList.length);
  let stamp = 0;
  const nextStamp = (): void => {
    if (++stamp === 0x3fffffff) {
      seen.fill(0);
      stamp = 1;
    }
  };
  let obits = 1;
  while (1 << obits < outList.length) obits++;
  if (pack && n * width * (1 << obits) < 0x7fffffff) {
    // Each entry packs the next state's row offset and its output id.
    const omask = (1 << obits) - 1;
    const table = new Int32Array(n * width);
    for (let i = 0; i < n * width; i++) {
      table[i] = next[i] * width * (1 << obits) + outId[next[i]];
    }
    return {
      words,
      scan(s: string): number[] {
        const sat: number[] = new Array(words).fill(0);
        nextStamp();
        let row = 0;
        for (let i = 0; i < s.length; i++) {
          const e = table[row + cls[s.charCodeAt(i) & 0xff]];
          row = e >>> obits;
          const o = e & omask;
          if (o !== 0 && seen[o] !== stamp) {
            seen[o] = stamp;
            const b = o * words;
            for (let w = 0; w < words; w++) sat[w] |= outMask[b + w];
          }
        }
        return sat;
      },
    };
  }
  return {
    words,
    scan(s: string): number[] {
      const sat: number[] = new Array(words).fill(0);
      nextStamp();
      let st = 0;
      for (let i = 0; i < s.length; i++) {
        st = next[st * width + cls[s.charCodeAt(i) & 0xff]];
        const o = outId[st];
        if (o !== 0 && seen[o] !== stamp) {
          seen[o] = stamp;
          const b = o * words;
          for (let w = 0; w < words; w++) sat[w] |= outMask[b + w];
        }
      }
      return sat;
    },
  };
}
