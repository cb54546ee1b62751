/**
 * SecLang transformation functions. Values are "byte strings": one JS char per byte (latin1),
 * exactly as ModSecurity sees raw request bytes; every function keeps that invariant.
 *
 * @module
 */
import { sha1 } from "@noble/hashes/legacy.js";
import { md5 } from "@noble/hashes/legacy.js";

/** A transformation: byte string in, byte string out. */
export type Transform = (s: string) => string;

const HEX = "0123456789abcdef";

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}
function hexVal(c: number): number {
  return c <= 57 ? c - 48 : (c | 0x20) - 87;
}

function asciiLower(s: string): string {
  // ModSecurity lowercases with the C locale: ASCII letters only.
  if (!/[A-Z\u0100-\uffff]/.test(s)) return s; // (toLowerCase() below also maps non-bytes)
  if (!/[\x80-\xff]/.test(s)) return s.toLowerCase();
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

/** `urlDecode` (plus `+` → space) as ModSecurity does it: invalid escapes stay as they are. */
export function urlDecode(s: string): string {
  if (s.indexOf("%") < 0 && s.indexOf("+") < 0) return s;
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (
      c === 37 && i + 2 < s.length + 0 && isHex(s.charCodeAt(i + 1)) && isHex(s.charCodeAt(i + 2))
    ) {
      out += String.fromCharCode(hexVal(s.charCodeAt(i + 1)) * 16 + hexVal(s.charCodeAt(i + 2)));
      i += 2;
    } else if (c === 43) out += " ";
    else out += s[i];
  }
  return out;
}

function uniByte(s: string, i: number): number {
  // %uHHHH / \uHHHH: ModSecurity keeps the low byte; full-width ASCII (U+FF01..U+FF5E)
  // maps to its ASCII counterpart.
  let c = hexVal(s.charCodeAt(i + 2)) * 16 + hexVal(s.charCodeAt(i + 3));
  const hi = hexVal(s.charCodeAt(i)) * 16 + hexVal(s.charCodeAt(i + 1));
  if (hi === 0xff && c > 0x00 && c < 0x5f) c += 0x20;
  return c;
}

/** `urlDecodeUni`: `urlDecode` plus IIS-style `%uHHHH`. */
export function urlDecodeUni(s: string): string {
  if (s.indexOf("%") < 0 && s.indexOf("+") < 0) return s;
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 37) {
      const n = s.charCodeAt(i + 1);
      if (
        (n === 117 || n === 85) && i + 5 < s.length && isHex(s.charCodeAt(i + 2)) &&
        isHex(s.charCodeAt(i + 3)) && isHex(s.charCodeAt(i + 4)) && isHex(s.charCodeAt(i + 5))
      ) {
        out += String.fromCharCode(uniByte(s, i + 2));
        i += 5;
        continue;
      }
      if (i + 2 < s.length && isHex(n) && isHex(s.charCodeAt(i + 2))) {
        out += String.fromCharCode(hexVal(n) * 16 + hexVal(s.charCodeAt(i + 2)));
        i += 2;
        continue;
      }
      out += "%";
    } else if (c === 43) out += " ";
    else out += s[i];
  }
  return out;
}

const ENTITIES: Record<string, string> = {
  quot: '"',
  amp: "&",
  lt: "<",
  gt: ">",
  nbsp: "\xa0",
  apos: "'",
};

/** `htmlEntityDecode`: numeric entities (low byte kept) and quot/amp/lt/gt/nbsp; `;` optional. */
export function htmlEntityDecode(s: string): string {
  if (s.indexOf("&") < 0) return s;
  return s.replace(
    /&(?:#[xX]([0-9a-fA-F]+);?|#([0-9]+);?|(quot|amp|lt|gt|nbsp|apos);?)/gi,
    (m, hex: string | undefined, dec: string | undefined, name: string | undefined) => {
      if (hex !== undefined) return String.fromCharCode(parseInt(hex.slice(-2), 16) & 0xff);
      if (dec !== undefined) {
        const v = parseInt(dec.length > 9 ? dec.slice(-9) : dec, 10);
        return String.fromCharCode(v & 0xff);
      }
      const e = ENTITIES[name!.toLowerCase()];
      return e ?? m;
    },
  );
}

/** `jsDecode`: JavaScript escapes (`\uHHHH`, `\xHH`, octal, `\n` …). */
export function jsDecode(s: string): string {
  if (s.indexOf("\\") < 0) return s;
  let out = "";
  for (let i = 0; i < s.length; i++) {
    if (s[i] !== "\\" || i + 1 >= s.length) {
      out += s[i];
      continue;
    }
    const n = s[i + 1];
    if (
      (n === "u" || n === "U") && i + 5 < s.length && isHex(s.charCodeAt(i + 2)) &&
      isHex(s.charCodeAt(i + 3)) && isHex(s.charCodeAt(i + 4)) && isHex(s.charCodeAt(i + 5))
    ) {
      out += String.fromCharCode(uniByte(s, i + 2));
      i += 5;
    } else if (
      (n === "x" || n === "X") && i + 3 < s.length + 0 && isHex(s.charCodeAt(i + 2)) &&
      isHex(s.charCodeAt(i + 3))
    ) {
      out += String.fromCharCode(hexVal(s.charCodeAt(i + 2)) * 16 + hexVal(s.charCodeAt(i + 3)));
      i += 3;
    } else if (n >= "0" && n <= "7") {
      let j = i + 1;
      let v = 0;
      let k = 0;
      while (
        k < 3 && j < s.length && s[j] >= "0" && s[j] <= "7" && v * 8 + (s.charCodeAt(j) - 48) <= 255
      ) {
        v = v * 8 + (s.charCodeAt(j) - 48);
        j++;
        k++;
      }
      out += String.fromCharCode(v);
      i = j - 1;
    } else {
      const m: Record<string, string> = {
        a: "\x07",
        b: "\b",
        f: "\f",
        n: "\n",
        r: "\r",
        t: "\t",
        v: "\v",
      };
      out += m[n] ?? n;
      i++;
    }
  }
  return out;
}

/** `cssDecode`: CSS 2.x escapes (`\HHHHHH` with optional following space, `\c` → c). */
export function cssDecode(s: string): string {
  if (s.indexOf("\\") < 0) return s;
  let out = "";
  for (let i = 0; i < s.length; i++) {
    if (s[i] !== "\\") {
      out += s[i];
      continue;
    }
    if (i + 1 >= s.length) break; // a trailing backslash is dropped
    let j = i + 1;
    let n = 0;
    while (n < 6 && j < s.length && isHex(s.charCodeAt(j))) {
      j++;
      n++;
    }
    if (n > 0) {
      const hex = s.slice(i + 1, j);
      let c = parseInt(hex.slice(-2), 16);
      if (n >= 4) {
        const hi = parseInt(hex.slice(-4, -2), 16);
        if (hi === 0xff && c > 0 && c < 0x5f) c += 0x20;
      }
      out += String.fromCharCode(c);
      if (j < s.length && /[ \t\n\r\f]/.test(s[j])) j++;
      i = j - 1;
    } else if (s[i + 1] === "\n") {
      i++;
    } else {
      out += s[i + 1];
      i++;
    }
  }
  return out;
}

/** Output buffer of {@linkcode cmdLine} (grown as needed; transformations run one at a time). */
let cmdBuf = new Uint8Array(256);

/** `cmdLine`: normalises shell/Windows command lines the way ModSecurity does. */
export function cmdLine(s: string): string {
  // Nothing to drop, collapse or lowercase: the value is already normalised.
  if (!/[\\"'^ ,;\t\r\nA-Z\u0100-\uffff]/.test(s)) return s;
  const n = s.length;
  if (n < 4096) {
    // Byte strings (the usual case) in one pass into a buffer; the same steps as
    // `cmdLineChars` below, with `asciiLower` folded in (for bytes it lowercases A–Z only).
    if (cmdBuf.length < n + 1) cmdBuf = new Uint8Array(2 * n + 2);
    const buf = cmdBuf;
    let len = 0;
    let space = false;
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 0xff) break;
      if (c === 92 || c === 34 || c === 39 || c === 94) continue; // \ " ' ^
      if (c === 32 || c === 44 || c === 59 || c === 9 || c === 13 || c === 10) {
        space = true; // space , ; \t \r \n
        continue;
      }
      if (c === 47 || c === 40) {
        space = false; // spaces before / and ( are dropped
        buf[len++] = c;
        continue;
      }
      if (space) {
        buf[len++] = 32;
        space = false;
      }
      buf[len++] = c >= 65 && c <= 90 ? c + 32 : c;
    }
    if (i === n) {
      if (space) buf[len++] = 32;
      return String.fromCharCode.apply(null, buf.subarray(0, len) as unknown as number[]);
    }
  }
  return cmdLineChars(s);
}

/** {@linkcode cmdLine} for any string (characters above 0xFF included). */
export function cmdLineChars(s: string): string {
  let out = "";
  let space = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "\\" || c === '"' || c === "'" || c === "^") continue;
    if (c === " " || c === "," || c === ";" || c === "\t" || c === "\r" || c === "\n") {
      space = true;
      continue;
    }
    if (c === "/" || c === "(") {
      // drop spaces before / and (
      space = false;
      out += c;
      continue;
    }
    if (space) {
      out += " ";
      space = false;
    }
    out += c;
  }
  if (space) out += " ";
  return asciiLower(out);
}

const WS = /[ \t\n\r\f\v\xa0]+/g;

/** `compressWhitespace`: runs of whitespace become one space. */
export function compressWhitespace(s: string): string {
  if (!/[\t\n\r\f\v\xa0]| {2}/.test(s)) return s; // only single spaces: unchanged
  return s.replace(WS, " ");
}

/** `removeWhitespace`: drops every whitespace byte. */
export function removeWhitespace(s: string): string {
  if (!/[ \t\n\r\f\v\xa0]/.test(s)) return s;
  return s.replace(WS, "");
}

/** `replaceComments`: each C comment (closed or not) becomes one space. */
export function replaceComments(s: string): string {
  if (s.indexOf("/*") < 0) return s;
  return s.replace(/\/\*[\s\S]*?(?:\*\/|$)/g, " ");
}

/** `removeComments`: drops C, HTML, `--` and `#` comments. */
export function removeComments(s: string): string {
  if (!/\/\*|<!--|--|#/.test(s)) return s;
  return s.replace(/\/\*[\s\S]*?(?:\*\/|$)|<!--[\s\S]*?(?:-->|$)|--.*|#.*/g, "");
}

/** `removeCommentsChar`: drops the comment markers themselves. */
export function removeCommentsChar(s: string): string {
  if (!/\/\*|\*\/|<!--|-->|--|#/.test(s)) return s;
  return s.replace(/\/\*|\*\/|<!--|-->|--|#/g, "");
}

const B64 = new Int16Array(256).fill(-1);
for (let i = 0; i < 64; i++) {
  B64["ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".charCodeAt(i)] = i;
}
B64["-".charCodeAt(0)] = 62;
B64["_".charCodeAt(0)] = 63;

/** `base64Decode`: decodes until the first byte that is not base64 (ModSecurity semantics). */
export function base64Decode(s: string, ext = false): string {
  let out = "";
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 61) break; // '='
    const v = c < 256 ? B64[c] : -1;
    if (v < 0) {
      if (ext) continue;
      break;
    }
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += String.fromCharCode((acc >> bits) & 0xff);
    }
  }
  return out;
}

/** `hexDecode`. */
export function hexDecode(s: string): string {
  let out = "";
  for (let i = 0; i + 1 < s.length; i += 2) {
    out += String.fromCharCode(hexVal(s.charCodeAt(i)) * 16 + hexVal(s.charCodeAt(i + 1)));
  }
  return out;
}

/** `hexEncode`. */
export function hexEncode(s: string): string {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) & 0xff;
    out += HEX[c >> 4] + HEX[c & 15];
  }
  return out;
}

/** `normalizePath`: removes `./`, resolves `../`, collapses `//`. */
export function normalizePath(s: string): string {
  // Without a slash the value is one segment: only "." changes (it is dropped).
  if (s.indexOf("/") < 0) return s === "." ? "" : s;
  if (isNormalAbsolutePath(s)) return s;
  const abs = s.startsWith("/");
  const trailing = s.endsWith("/") || s.endsWith("/.") || s.endsWith("/..");
  const parts = s.split("/");
  const out: string[] = [];
  for (const p of parts) {
    if (p === "" || p === ".") continue;
    if (p === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!abs) out.push("..");
      continue;
    }
    out.push(p);
  }
  let r = (abs ? "/" : "") + out.join("/");
  if (trailing && out.length > 0) r += "/";
  return r;
}

/**
 * Whether `s` is `/` followed by segments that are neither empty nor `.` nor `..` (the last may
 * be empty: a trailing slash), which {@linkcode normalizePath} returns unchanged.
 */
function isNormalAbsolutePath(s: string): boolean {
  if (s.charCodeAt(0) !== 47) return false;
  let start = 1; // first character of the current segment
  for (let i = 1; i <= s.length; i++) {
    if (i < s.length && s.charCodeAt(i) !== 47) continue;
    const len = i - start;
    if (len === 0) {
      if (i < s.length) return false; // "//"
    } else if (
      s.charCodeAt(start) === 46 && (len === 1 || (len === 2 && s.charCodeAt(start + 1) === 46))
    ) {
      return false; // "." or ".."
    }
    start = i + 1;
  }
  return true;
}

/** `normalizePathWin`: backslashes become slashes, then `normalizePath`. */
export function normalizePathWin(s: string): string {
  return normalizePath(s.indexOf("\\") < 0 ? s : s.replace(/\\/g, "/"));
}

/** `utf8toUnicode`: valid multi-byte UTF-8 sequences become `%uHHHH`. */
export function utf8toUnicode(s: string): string {
  if (!/[\x80-\xff]/.test(s)) return s;
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      out += s[i];
      continue;
    }
    let need = 0;
    let cp = 0;
    if ((c & 0xe0) === 0xc0) {
      need = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) === 0xe0) {
      need = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) === 0xf0) {
      need = 3;
      cp = c & 0x07;
    } else {
      out += s[i];
      continue;
    }
    let ok = i + need < s.length;
    for (let k = 1; ok && k <= need; k++) {
      const d = s.charCodeAt(i + k);
      if ((d & 0xc0) !== 0x80) ok = false;
      else cp = (cp << 6) | (d & 0x3f);
    }
    if (!ok) {
      out += s[i];
      continue;
    }
    const h = cp.toString(16);
    out += "%u" + (h.length < 4 ? "0000".slice(h.length) + h : h);
    i += need;
  }
  return out;
}

/** `escapeSeqDecode`: ANSI C escapes. */
export function escapeSeqDecode(s: string): string {
  if (s.indexOf("\\") < 0) return s;
  return s.replace(/\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|[abfnrtv\\?'"])/g, (_m, e: string) => {
    if (e[0] === "x") return String.fromCharCode(parseInt(e.slice(1), 16));
    if (e[0] >= "0" && e[0] <= "7") return String.fromCharCode(parseInt(e, 8) & 0xff);
    const m: Record<string, string> = {
      a: "\x07",
      b: "\b",
      f: "\f",
      n: "\n",
      r: "\r",
      t: "\t",
      v: "\v",
    };
    return m[e] ?? e;
  });
}

function bytesToBin(b: Uint8Array): string {
  let out = "";
  for (let i = 0; i < b.length; i++) out += String.fromCharCode(b[i]);
  return out;
}
function binToBytes(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i) & 0xff;
  return b;
}

/** The transformations by lowercase name; `none` is handled by the compiler. */
export const TRANSFORMS: Record<string, Transform> = {
  lowercase: asciiLower,
  uppercase: (s) => s.replace(/[a-z]+/g, (m) => m.toUpperCase()),
  urldecode: urlDecode,
  urldecodeuni: urlDecodeUni,
  urlencode: (s) => s.replace(/[^A-Za-z0-9\-_.~]/g, (c) => c === " " ? "+" : "%" + hexEncode(c)),
  htmlentitydecode: htmlEntityDecode,
  jsdecode: jsDecode,
  cssdecode: cssDecode,
  cmdline: cmdLine,
  compresswhitespace: compressWhitespace,
  removewhitespace: removeWhitespace,
  removenulls: (s) => s.indexOf("\0") < 0 ? s : s.replace(/\0/g, ""),
  replacenulls: (s) => s.indexOf("\0") < 0 ? s : s.replace(/\0/g, " "),
  replacecomments: replaceComments,
  removecomments: removeComments,
  removecommentschar: removeCommentsChar,
  base64decode: (s) => base64Decode(s),
  base64decodeext: (s) => base64Decode(s, true),
  base64encode: (s) => btoa(s),
  hexdecode: hexDecode,
  hexencode: hexEncode,
  sqlhexdecode: (s) => s.replace(/0x((?:[0-9a-fA-F]{2})+)/g, (_m, h: string) => hexDecode(h)),
  normalizepath: normalizePath,
  normalisepath: normalizePath,
  normalizepathwin: normalizePathWin,
  normalisepathwin: normalizePathWin,
  utf8tounicode: utf8toUnicode,
  escapeseqdecode: escapeSeqDecode,
  length: (s) => String(s.length),
  sha1: (s) => bytesToBin(sha1(binToBytes(s))),
  md5: (s) => bytesToBin(md5(binToBytes(s))),
  trim: (s) => s.replace(/^[ \t\n\r\f\v]+|[ \t\n\r\f\v]+$/g, ""),
  trimleft: (s) => s.replace(/^[ \t\n\r\f\v]+/, ""),
  trimright: (s) => s.replace(/[ \t\n\r\f\v]+$/, ""),
  parityeven7bit: (s) => s,
  parityodd7bit: (s) => s,
  parityzero7bit: (s) =>
    s.replace(/[\x80-\xff]/g, (c) => String.fromCharCode(c.charCodeAt(0) & 0x7f)),
};

const UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const SPACES = " \t\n\r\f\v";
/** Stands for any byte 0x80–0xFF in {@linkcode IDENTITY_UNLESS}. */
export const ANY_HIGH_BYTE = "\x80";
/** Stands for any character above 0xFF in {@linkcode IDENTITY_UNLESS}. */
export const ANY_WIDE_CHAR = "\u0100";

/**
 * For each transformation, the characters without which it returns its input unchanged
 * (`ANY_HIGH_BYTE` / `ANY_WIDE_CHAR` stand for whole ranges). A transformation that is missing
 * may change any input. Each entry follows the early return at the top of the function.
 */
export const IDENTITY_UNLESS: Record<string, string> = {
  lowercase: UPPER + ANY_WIDE_CHAR,
  uppercase: UPPER.toLowerCase(),
  urldecode: "%+",
  urldecodeuni: "%+",
  htmlentitydecode: "&",
  jsdecode: "\\",
  cssdecode: "\\",
  escapeseqdecode: "\\",
  cmdline: "\\\"'^ ,;\t\r\n" + UPPER + ANY_WIDE_CHAR,
  compresswhitespace: SPACES + ANY_HIGH_BYTE, // (0xA0 is white space too)
  removewhitespace: SPACES + ANY_HIGH_BYTE,
  removenulls: "\0",
  replacenulls: "\0",
  replacecomments: "/",
  removecomments: "/<-#",
  removecommentschar: "/*<-#",
  normalizepath: "/.",
  normalisepath: "/.",
  normalizepathwin: "\\/.",
  normalisepathwin: "\\/.",
  utf8tounicode: ANY_HIGH_BYTE,
  trim: SPACES,
  trimleft: SPACES,
  trimright: SPACES,
  parityeven7bit: "",
  parityodd7bit: "",
  parityzero7bit: ANY_HIGH_BYTE,
};
