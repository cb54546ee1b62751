/**
 * SecLang operators, compiled once at load: `@rx` to RegExp, `@pm` to Aho-Corasick, IP lists to
 * numeric ranges. Each compiled operator answers one value; captures go to the caller.
 *
 * @module
 */
import { CrsError } from "./_errors.ts";
import { buildPhraseMatcher } from "./_aho.ts";
import { compileRegex } from "./_regex.ts";
import { detectSqli } from "./libinjection_sqli.ts";
import { detectXss } from "./libinjection_xss.ts";

/** Result of one operator run: undefined for no match, else the captures (TX.0 …). */
export type OpResult = string[] | undefined;

/** A compiled operator; `param` is the macro-expanded parameter for dynamic operators. */
export interface Operator {
  name: string;
  /** True when the parameter holds `%{…}` macros and must be expanded per request. */
  dynamic: boolean;
  /** Runs the operator and returns its captures (TX.0 …) on a match. */
  run(value: string, param: string): OpResult;
  /** Whether the operator matches (same answer as `run`, without building captures). */
  test(value: string, param: string): boolean;
  /** `@rx`: the compiled expression (for the literal prefilter). */
  re?: RegExp;
  /** `@pm`/`@pmFromFile`: the phrases; the operator matches iff one occurs (folded like the AC). */
  phrases?: string[];
}

/** Reads a data file referenced by `@pmFromFile` / `@ipMatchFromFile`. */
export type DataFileReader = (name: string) => string;

function num(s: string): number {
  const n = parseInt(s.trim(), 10);
  return Number.isNaN(n) ? 0 : n;
}

type MakeOperator = (
  run: Operator["run"],
  dyn?: boolean,
  test?: Operator["test"],
) => Operator;

/** A numeric comparison: `test` decides, `run` returns the value as its capture. */
function numeric(mk: MakeOperator, test: Operator["test"]): Operator {
  return mk((v, p) => (test(v, p) ? [v] : undefined), undefined, test);
}

function parseIp(s: string): { v6: boolean; big: bigint } | undefined {
  s = s.trim();
  if (/^\d{1,3}(?:\.\d{1,3}){3}$/.test(s)) {
    const p = s.split(".").map(Number);
    if (p.some((x) => x > 255)) return undefined;
    return { v6: false, big: BigInt(((p[0] << 24) >>> 0) + (p[1] << 16) + (p[2] << 8) + p[3]) };
  }
  if (s.includes(":")) {
    let [head, tail] = s.split("::");
    const h = head ? head.split(":") : [];
    const t = tail !== undefined && tail !== "" ? tail.split(":") : [];
    if (tail === undefined && h.length !== 8) return undefined;
    const fill = 8 - h.length - t.length;
    if (fill < 0) return undefined;
    const parts = [...h, ...Array(fill).fill("0"), ...t];
    let big = 0n;
    for (const x of parts) {
      if (!/^[0-9a-f]{1,4}$/i.test(x)) return undefined;
      big = (big << 16n) + BigInt(parseInt(x, 16));
    }
    head = "";
    return { v6: true, big };
  }
  return undefined;
}

function ipMatcher(list: string[], where: string): (v: string) => boolean {
  const nets: { v6: boolean; lo: bigint; hi: bigint }[] = [];
  for (const raw of list) {
    const e = raw.trim();
    if (e === "") continue;
    const [ip, bits] = e.split("/");
    const p = parseIp(ip);
    if (!p) throw new CrsError("BAD_RULE", `${where}: "${e}" is not an IP address or CIDR range`);
    const width = p.v6 ? 128n : 32n;
    const b = bits === undefined ? width : BigInt(parseInt(bits, 10));
    const hostBits = width - b;
    const lo = (p.big >> hostBits) << hostBits;
    const hi = lo + (1n << hostBits) - 1n;
    nets.push({ v6: p.v6, lo, hi });
  }
  // IPv4 ranges as plain numbers: the common case needs no BigInt.
  const lo4: number[] = [];
  const hi4: number[] = [];
  for (const n of nets) {
    if (!n.v6) {
      lo4.push(Number(n.lo));
      hi4.push(Number(n.hi));
    }
  }
  return (v) => {
    const s = v.trim();
    const a = ipv4Number(s);
    if (a >= 0) {
      for (let i = 0; i < lo4.length; i++) if (a >= lo4[i] && a <= hi4[i]) return true;
      return false;
    }
    if (a === -2) return false; // a dotted quad with a part above 255
    const p = parseIp(s);
    if (!p) return false;
    return nets.some((n) => n.v6 === p.v6 && p.big >= n.lo && p.big <= n.hi);
  };
}

/**
 * A dotted quad (`\d{1,3}` four times, as `parseIp` accepts it) as a number; -2 when a part is
 * above 255, -1 when it is no dotted quad.
 */
function ipv4Number(s: string): number {
  let n = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  let big = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (++digits > 3) return -1;
      part = part * 10 + (c - 48);
    } else if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      if (part > 255) big = true;
      n = n * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else return -1;
  }
  if (digits === 0 || dots !== 3) return -1;
  if (part > 255) big = true;
  return big ? -2 : n * 256 + part;
}

function dataLines(text: string): string[] {
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
}

/**
 * Compiles an operator.
 *
 * @param name Operator name without `@`, any case.
 * @param param The parameter as written.
 * @param where "file:line" for errors.
 * @param readData Reader for data files.
 * @param libinjection False turns `@detectSQLi`/`@detectXSS` into never-matching operators.
 * @returns The operator.
 * @throws {CrsError} `UNKNOWN_OPERATOR`, `BAD_REGEX` or `READ`.
 */
export function compileOperator(
  name: string,
  param: string,
  where: string,
  readData: DataFileReader,
  libinjection = true,
): Operator {
  const lname = name.toLowerCase();
  const dynamic = param.includes("%{");
  const mk = (
    run: Operator["run"],
    dyn = dynamic,
    test: Operator["test"] = (v, p) => run(v, p) !== undefined,
  ): Operator => ({ name: lname, dynamic: dyn, run, test, re: undefined, phrases: undefined });
  switch (lname) {
    case "rx": {
      const re = compileRegex(param, where);
      const op = mk(
        (v) => {
          const m = re.exec(v);
          if (!m) return undefined;
          return m.map((x) => x ?? "");
        },
        false,
        (v) => re.test(v),
      );
      op.re = re;
      return op;
    }
    case "pm":
    case "pmf":
    case "pmfromfile": {
      let phrases: string[];
      if (lname === "pm") phrases = param.split(/\s+/).filter((p) => p !== "");
      else {
        phrases = [];
        for (const f of param.split(/\s+/).filter((p) => p !== "")) {
          phrases.push(...dataLines(readData(f)));
        }
      }
      const ac = buildPhraseMatcher(phrases);
      const op = mk(
        (v) => {
          const f = ac.find(v);
          return f === undefined ? undefined : [f];
        },
        false,
        (v) => ac.find(v) !== undefined,
      );
      op.phrases = phrases;
      return op;
    }
    case "contains":
      return mk((v, p) => (v.includes(p) ? [p] : undefined), dynamic, (v, p) => v.includes(p));
    case "containsword":
      return mk((v, p) => {
        const re = new RegExp(`(?:^|\\W)${p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?:\\W|$)`);
        return re.test(v) ? [p] : undefined;
      });
    case "beginswith":
      return mk((v, p) => (v.startsWith(p) ? [p] : undefined), dynamic, (v, p) => v.startsWith(p));
    case "endswith":
      return mk((v, p) => (v.endsWith(p) ? [p] : undefined), dynamic, (v, p) => v.endsWith(p));
    case "streq":
      return mk((v, p) => (v === p ? [v] : undefined), dynamic, (v, p) => v === p);
    case "strmatch":
      return mk((v, p) => (v.includes(p) ? [p] : undefined), dynamic, (v, p) => v.includes(p));
    case "within":
      return mk((v, p) => (p.includes(v) ? [v] : undefined), dynamic, (v, p) => p.includes(v));
    // A constant parameter is read once (the engine passes it unchanged); each comparison has
    // its own functions so that their call sites stay monomorphic.
    case "eq": {
      const n = num(param);
      return numeric(mk, dynamic ? (v, p) => num(v) === num(p) : (v) => num(v) === n);
    }
    case "ge": {
      const n = num(param);
      return numeric(mk, dynamic ? (v, p) => num(v) >= num(p) : (v) => num(v) >= n);
    }
    case "gt": {
      const n = num(param);
      return numeric(mk, dynamic ? (v, p) => num(v) > num(p) : (v) => num(v) > n);
    }
    case "le": {
      const n = num(param);
      return numeric(mk, dynamic ? (v, p) => num(v) <= num(p) : (v) => num(v) <= n);
    }
    case "lt": {
      const n = num(param);
      return numeric(mk, dynamic ? (v, p) => num(v) < num(p) : (v) => num(v) < n);
    }
    case "unconditionalmatch":
      return mk((v) => [v], false, () => true);
    case "nomatch":
      return mk(() => undefined, false);
    case "detectsqli":
      if (!libinjection) return mk(() => undefined, false);
      return mk((v) => {
        const fp = detectSqli(v);
        return fp === undefined ? undefined : [fp];
      }, false);
    case "detectxss":
      if (!libinjection) return mk(() => undefined, false);
      return mk((v) => (detectXss(v) ? [v] : undefined), false);
    case "validatebyterange": {
      const allowed = new Uint8Array(256);
      for (const part of param.split(",")) {
        const t = part.trim();
        if (t === "") continue;
        const [a, b] = t.split("-").map((x) => parseInt(x.trim(), 10));
        if (Number.isNaN(a) || (b !== undefined && Number.isNaN(b))) {
          throw new CrsError("BAD_RULE", `${where}: bad byte range "${t}" in @validateByteRange`);
        }
        for (let i = a; i <= (b ?? a) && i < 256; i++) allowed[i] = 1;
      }
      return mk((v) => {
        for (let i = 0; i < v.length; i++) {
          const c = v.charCodeAt(i) & 0xff;
          if (!allowed[c]) return [v[i]];
        }
        return undefined;
      }, false);
    }
    case "validateurlencoding":
      return mk((v) => {
        for (let i = 0; i < v.length; i++) {
          if (v[i] !== "%") continue;
          if (i + 2 >= v.length) return [v.slice(i)];
          if (!/[0-9a-fA-F]/.test(v[i + 1]) || !/[0-9a-fA-F]/.test(v[i + 2])) {
            return [v.slice(i, i + 3)];
          }
          i += 2;
        }
        return undefined;
      }, false);
    case "validateutf8encoding":
      return mk((v) => (validUtf8(v) ? undefined : [v]), false);
    case "ipmatch": {
      const m = ipMatcher(param.split(","), where);
      return mk((v) => (m(v) ? [v] : undefined), false);
    }
    case "ipmatchfromfile":
    case "ipmatchf": {
      const m = ipMatcher(dataLines(readData(param.trim())), where);
      return mk((v) => (m(v) ? [v] : undefined), false);
    }
    case "rbl":
    case "geolookup":
    case "inspectfile":
    case "verifycc":
    case "verifycpf":
    case "verifyssn":
    case "fuzzyhash":
      // Network/host look-ups that this engine does not perform: never match.
      return mk(() => undefined, false);
    default:
      throw new CrsError(
        "UNKNOWN_OPERATOR",
        `${where}: unknown operator "@${name}"; supported: @rx @pm @pmFromFile @contains ` +
          `@beginsWith @endsWith @streq @within @eq @ge @gt @le @lt @detectSQLi @detectXSS ` +
          `@validateByteRange @validateUrlEncoding @validateUtf8Encoding @ipMatch @unconditionalMatch`,
      );
  }
}

function validUtf8(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    let n = 0;
    let min = 0;
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
      min = 0x80;
    } else if ((c & 0xf0) === 0xe0) {
      n = 2;
      min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      min = 0x10000;
    } else return false;
    let cp = c & (0x3f >> n);
    for (let k = 1; k <= n; k++) {
      const d = s.charCodeAt(i + k);
      if (Number.isNaN(d) || (d & 0xc0) !== 0x80) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n;
  }
  return true;
}
