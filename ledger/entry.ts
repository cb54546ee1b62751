/**
 * Ledger entries: one canonical JSON object (RFC 8785) per line with the fields `actor`, `data`,
 * `prev`, `seq`, `ts`, `type` and `v`, in that (canonical) order.
 *
 * `formatEntry` is the only way lines are produced; `scanEntryLine` is the verifier's strict
 * byte-level reader, which accepts exactly the lines `formatEntry` can produce.
 *
 * @module
 */
import { canonicalJson, TrustError } from "@infraveil/trust";
import { LedgerError } from "./error.ts";

/** The entry format version. */
export const ENTRY_VERSION = 1;

/** `prev` of the very first entry of a ledger: 64 zeros. */
export const GENESIS_PREV: string = "0".repeat(64);

/** The longest line (in bytes, without its newline) a ledger may hold: 1 MiB. */
export const MAX_LINE_BYTES: number = 1 << 20;

/** The entry type that opens a rotated file and references the previous file's checkpoint. */
export const ROTATE_TYPE = "ledger.rotate";

/** A JSON value. */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [key: string]: JsonValue };

/** One ledger entry, as stored. */
export interface LedgerEntry {
  /** Format version, always 1. */
  v: 1;
  /** Position in the ledger, from 0, without gaps. */
  seq: number;
  /** Time of the append, RFC 3339 in UTC (`2026-01-02T03:04:05.678Z`). */
  ts: string;
  /** What happened, e.g. `action.execute` (letters, digits and `._:/-`, at most 128). */
  type: string;
  /** Who did it, e.g. `agent:web-1` (non-empty, at most 256 characters). */
  actor: string;
  /** Free-form JSON details. */
  data: JsonValue;
  /** Hex leaf hash of the previous line ({@link GENESIS_PREV} for the first). */
  prev: string;
}

const TYPE_RE = /^[A-Za-z0-9._:/-]{1,128}$/;
const TS_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;
const PREV_RE = /^[0-9a-f]{64}$/;

function bad(message: string): LedgerError {
  return new LedgerError("BAD_ENTRY", message);
}

/**
 * Checks the fields of an entry, naming the first bad one.
 *
 * @param entry the entry
 * @throws {LedgerError} `BAD_ENTRY` naming the field and what is allowed
 */
export function checkEntry(entry: LedgerEntry): void {
  checkFields(entry, true);
}

function checkFields(entry: LedgerEntry, checkPrev: boolean): void {
  if (entry === null || typeof entry !== "object") throw bad("An entry must be an object");
  if (entry.v !== ENTRY_VERSION) throw bad(`Invalid entry field v: must be ${ENTRY_VERSION}`);
  if (!Number.isSafeInteger(entry.seq) || entry.seq < 0) {
    throw bad(`Invalid entry field seq: ${entry.seq} is not a non-negative integer`);
  }
  if (typeof entry.ts !== "string" || !TS_RE.test(entry.ts)) {
    throw bad(`Invalid entry field ts: ${JSON.stringify(entry.ts)} is not RFC 3339 UTC`);
  }
  if (typeof entry.type !== "string" || !TYPE_RE.test(entry.type)) {
    throw bad(
      `Invalid entry field type: ${
        JSON.stringify(entry.type)
      }; use 1–128 letters, digits or ._:/- (e.g. "action.execute")`,
    );
  }
  if (
    typeof entry.actor !== "string" || entry.actor.length === 0 || entry.actor.length > 256
  ) {
    throw bad(`Invalid entry field actor: must be a non-empty string of at most 256 characters`);
  }
  if (checkPrev && (typeof entry.prev !== "string" || !PREV_RE.test(entry.prev))) {
    throw bad(`Invalid entry field prev: must be 64 lowercase hex characters`);
  }
  if (entry.data === undefined) throw bad("Invalid entry field data: missing (use null)");
}

/**
 * The canonical line of an entry (without the newline). Its bytes are the RFC 6962 leaf.
 *
 * @param entry the entry
 * @returns the canonical JSON text
 * @throws {LedgerError} `BAD_ENTRY` for an invalid field, data JSON cannot represent, or a line
 *   longer than {@link MAX_LINE_BYTES}
 * @example
 * ```ts
 * import { formatEntry, GENESIS_PREV } from "@infraveil/ledger";
 * const line = formatEntry({
 *   v: 1, seq: 0, ts: "2026-01-01T00:00:00.000Z", type: "boot", actor: "agent", data: {},
 *   prev: GENESIS_PREV,
 * });
 * if (!line.startsWith('{"actor":"agent","data":{},"prev":"000')) throw new Error();
 * ```
 */
export function formatEntry(entry: LedgerEntry): string {
  return formatChecked(entry, true);
}

/**
 * {@link formatEntry} for callers that computed `seq` and `prev` themselves (the ledger state).
 *
 * @param entry the entry; its `prev` is trusted to be 64 lowercase hex digits
 * @returns the canonical JSON text
 * @throws {LedgerError} `BAD_ENTRY` as {@link formatEntry}
 */
export function formatOwnEntry(entry: LedgerEntry): string {
  return formatChecked(entry, false);
}

function formatChecked(entry: LedgerEntry, checkPrev: boolean): string {
  checkFields(entry, checkPrev);
  const { seq, ts, type, actor, data, prev } = entry;
  if (!actor.isWellFormed()) throw bad("Invalid entry field actor: it contains a lone surrogate");
  let dataText: string;
  try {
    // `data` nests one level below the line: wrapped in an array it is serialized at that depth
    // (the verifier's scanner counts the same way), by trust's one implementation.
    const wrapped = canonicalJson([data]);
    dataText = wrapped.slice(1, -1);
  } catch (e) {
    if (e instanceof TrustError) {
      throw bad(`Invalid entry field data: ${e.message.replace("$[0]", "data")}`);
    }
    throw e;
  }
  // Keys in canonical order; type, ts and prev are checked to need no escaping.
  const line = `{"actor":${
    JSON.stringify(actor)
  },"data":${dataText},"prev":"${prev}","seq":${seq},"ts":"${ts}","type":"${type}","v":1}`;
  // One UTF-16 unit is at most 3 UTF-8 bytes; measure exactly only when it could matter.
  if (line.length * 3 > MAX_LINE_BYTES && new TextEncoder().encode(line).length > MAX_LINE_BYTES) {
    throw bad(
      `Entry too large: its line exceeds ${MAX_LINE_BYTES} bytes; store large data elsewhere and reference it`,
    );
  }
  return line;
}

/**
 * Parses one line strictly: it must be exactly the canonical form of a valid entry.
 *
 * @param line the line, without its newline
 * @returns the entry
 * @throws {LedgerError} `BAD_ENTRY` naming what is wrong
 */
export function parseEntry(line: string): LedgerEntry {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw bad("Line is not JSON");
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw bad("Line is not a JSON object");
  }
  const keys = Object.keys(value).sort().join(",");
  if (keys !== "actor,data,prev,seq,ts,type,v") {
    throw bad(`Line has fields ${keys}; an entry has exactly actor,data,prev,seq,ts,type,v`);
  }
  const entry = value as LedgerEntry;
  if (formatEntry(entry) !== line) throw bad("Line is not in canonical JSON form (RFC 8785)");
  return entry;
}

// ---------------------------------------------------------------------------------------------
// The verifier's byte-level scanner. It accepts exactly canonical JSON; anything unusual that a
// byte scan cannot decide cheaply (non-ASCII or escaped object keys) goes to the slow path.

/** What `scanEntryLine` found: `error` is empty when the line is a valid entry. */
export interface ScannedLine {
  /** Empty when valid, else what is wrong. */
  error: string;
  /** `seq` of the entry. */
  seq: number;
  /** Offset of the 64 hex digits of `prev` in the buffer. */
  prevOffset: number;
  /** Whether the entry's type is {@link ROTATE_TYPE}. */
  rotate: boolean;
}

const UNSURE = "\u0000unsure";

/**
 * Scans one line strictly, without allocating for the common case.
 *
 * @param buf buffer holding the line
 * @param start first byte of the line
 * @param end one past its last byte (the newline excluded)
 * @param out receives the result
 */
export function scanEntryLine(buf: Uint8Array, start: number, end: number, out: ScannedLine): void {
  out.error = "";
  out.rotate = false;
  let err = new Scanner(buf, start, end).entry(out);
  if (err !== "" && err !== UNSURE) {
    // Positions in messages are relative to the line, so they read the same however the file
    // was chunked: scan the line again on its own for the message.
    err = new Scanner(buf.subarray(start, end), 0, end - start).entry(out);
  }
  if (err === UNSURE) {
    slowScan(buf, start, end, out);
  } else if (err !== "") {
    out.error = err;
  }
}

const decoder = new TextDecoder("utf-8", { fatal: true });

function slowScan(buf: Uint8Array, start: number, end: number, out: ScannedLine): void {
  let text: string;
  try {
    text = decoder.decode(buf.subarray(start, end));
  } catch {
    out.error = "line is not valid UTF-8";
    return;
  }
  try {
    const entry = parseEntry(text);
    out.seq = entry.seq;
    out.rotate = entry.type === ROTATE_TYPE;
    // prev is at a fixed distance from the tail: ,"seq":N,"ts":"…","type":"…","v":1}
    const tail = `","seq":${entry.seq},"ts":${JSON.stringify(entry.ts)},"type":${
      JSON.stringify(entry.type)
    },"v":1}`;
    out.prevOffset = end - new TextEncoder().encode(tail).length - 64;
  } catch (e) {
    out.error = e instanceof LedgerError ? lowerFirst(e.message) : String(e);
  }
}

function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}

const enum C {
  QUOTE = 0x22,
  BACKSLASH = 0x5c,
  COMMA = 0x2c,
  COLON = 0x3a,
  LBRACE = 0x7b,
  RBRACE = 0x7d,
  LBRACKET = 0x5b,
  RBRACKET = 0x5d,
  MINUS = 0x2d,
  ZERO = 0x30,
  NINE = 0x39,
}

const HEAD = bytes('{"actor":');
const K_DATA = bytes(',"data":');
const K_PREV = bytes(',"prev":"');
const K_SEQ = bytes('","seq":');
const K_TS = bytes(',"ts":');
const K_TYPE = bytes(',"type":');
const K_V = bytes(',"v":1}');
const ROTATE = bytes(`"${ROTATE_TYPE}"`);

function bytes(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

const latin1 = new TextDecoder("latin1");

/** 1 for the bytes a string holds as they are: printable ASCII but `"` and `\`. */
const PLAIN_STRING_BYTE = new Uint8Array(256);
for (let c = 0x20; c < 0x80; c++) if (c !== C.QUOTE && c !== C.BACKSLASH) PLAIN_STRING_BYTE[c] = 1;

/** 1 for the bytes of lowercase hex digits. */
const HEX_DIGIT = new Uint8Array(256);
for (const c of bytes("0123456789abcdef")) HEX_DIGIT[c] = 1;

class Scanner {
  p: number;
  constructor(readonly b: Uint8Array, start: number, readonly end: number) {
    this.p = start;
  }

  lit(l: Uint8Array): boolean {
    const b = this.b;
    const p = this.p;
    if (p + l.length > this.end) return false;
    for (let i = 0; i < l.length; i++) if (b[p + i] !== l[i]) return false;
    this.p = p + l.length;
    return true;
  }

  at(what: string): string {
    return `${what} at byte ${this.p - (this.p > this.end ? 1 : 0)}`;
  }

  entry(out: ScannedLine): string {
    const start = this.p;
    if (!this.lit(HEAD)) return 'line does not start with {"actor":';
    let e = this.string(false);
    if (e) return e;
    if (this.p - start - HEAD.length <= 2) return "empty actor";
    if (!this.lit(K_DATA)) return this.at('expected ,"data":');
    e = this.value(1);
    if (e) return e;
    if (!this.lit(K_PREV)) return this.at('expected ,"prev":"');
    const b = this.b;
    const prevAt = this.p;
    out.prevOffset = prevAt;
    // The hottest loop of the scan: a local index, one table lookup per byte, and no reads past
    // the line (the table maps undefined to 0 too, but an out-of-range read slows every call).
    const hexLen = Math.min(64, this.end - prevAt);
    for (let i = 0; i < hexLen; i++) {
      if (HEX_DIGIT[b[prevAt + i]] === 0) {
        return `prev is not 64 lowercase hex digits (byte ${prevAt + i - start})`;
      }
    }
    if (hexLen < 64) return `prev is not 64 lowercase hex digits (byte ${prevAt + hexLen - start})`;
    this.p = prevAt + 64;
    if (!this.lit(K_SEQ)) return this.at('expected ","seq":');
    // seq: canonical non-negative integer.
    const seqStart = this.p;
    let seq = 0;
    while (this.p < this.end && b[this.p] >= C.ZERO && b[this.p] <= C.NINE) {
      seq = seq * 10 + (b[this.p] - C.ZERO);
      this.p++;
    }
    const digits = this.p - seqStart;
    if (digits === 0 || (digits > 1 && b[seqStart] === C.ZERO) || !Number.isSafeInteger(seq)) {
      return "seq is not a canonical non-negative integer";
    }
    out.seq = seq;
    if (!this.lit(K_TS)) return this.at('expected ,"ts":');
    const tsStart = this.p;
    e = this.string(false);
    if (e) return e;
    if (!isTimestamp(b, tsStart + 1, this.p - 1)) return "ts is not an RFC 3339 UTC time";
    if (!this.lit(K_TYPE)) return this.at('expected ,"type":');
    const typeStart = this.p;
    e = this.string(false);
    if (e) return e;
    const typeLen = this.p - typeStart - 2;
    if (typeLen < 1 || typeLen > 128) return "type must be 1–128 characters";
    for (let i = typeStart + 1; i < this.p - 1; i++) {
      const c = b[i];
      const ok = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x2d && c <= 0x3a) ||
        c === 0x5f;
      if (!ok) return "type holds a character outside letters, digits and ._:/-";
    }
    if (typeLen === ROTATE.length - 2) {
      const save = this.p;
      this.p = typeStart;
      out.rotate = this.lit(ROTATE);
      this.p = save;
    }
    if (!this.lit(K_V)) return this.at('expected ,"v":1}');
    if (this.p !== this.end) return this.at("unexpected bytes after the entry");
    if (this.actorTooLong(start + HEAD.length)) return UNSURE;
    return "";
  }

  actorTooLong(from: number): boolean {
    // Actor length is counted in UTF-16 units; only a long actor needs the slow path to count.
    let i = from + 1;
    let n = 0;
    while (this.b[i] !== C.QUOTE || this.b[i - 1] === C.BACKSLASH) {
      i++;
      n++;
      if (n > 256) return true;
    }
    return false;
  }

  /** A canonical JSON string; `key` marks object keys, which must be plain ASCII here. */
  string(key: boolean): string {
    const b = this.b;
    const end = this.end;
    if (b[this.p] !== C.QUOTE) return this.at("expected a string");
    let p = this.p + 1;
    for (;;) {
      if (p >= end) return "unterminated string";
      const c = b[p];
      if (PLAIN_STRING_BYTE[c] === 1) {
        p++;
        continue;
      }
      if (c === C.QUOTE) break;
      if (c < 0x20) return `raw control character in a string at byte ${p}`;
      if (c === C.BACKSLASH) {
        if (key) return UNSURE;
        const d = b[p + 1];
        if (
          d === C.QUOTE || d === C.BACKSLASH || d === 0x62 || d === 0x66 || d === 0x6e ||
          d === 0x72 || d === 0x74
        ) {
          p += 2;
          continue;
        }
        // Only \u00XX for control characters without a short escape is canonical.
        if (
          d === 0x75 && b[p + 2] === C.ZERO && b[p + 3] === C.ZERO && p + 5 < end &&
          (b[p + 4] === C.ZERO || b[p + 4] === 0x31)
        ) {
          const lo = b[p + 5];
          const v = (b[p + 4] - C.ZERO) * 16 +
            (lo >= 0x30 && lo <= 0x39 ? lo - 0x30 : lo >= 0x61 && lo <= 0x66 ? lo - 0x57 : -99);
          if (v >= 0 && v !== 8 && v !== 9 && v !== 10 && v !== 12 && v !== 13) {
            p += 6;
            continue;
          }
        }
        return `non-canonical escape in a string at byte ${p}`;
      }
      if (c < 0x80) {
        p++;
        continue;
      }
      if (key) return UNSURE;
      // Well-formed UTF-8 (no overlongs, no surrogates, at most U+10FFFF).
      if (c >= 0xc2 && c <= 0xdf) {
        if ((b[p + 1] & 0xc0) !== 0x80 || p + 1 >= end) return `invalid UTF-8 at byte ${p}`;
        p += 2;
      } else if (c >= 0xe0 && c <= 0xef) {
        const c1 = b[p + 1];
        if (
          p + 2 >= end || (c1 & 0xc0) !== 0x80 || (b[p + 2] & 0xc0) !== 0x80 ||
          (c === 0xe0 && c1 < 0xa0) || (c === 0xed && c1 >= 0xa0)
        ) return `invalid UTF-8 at byte ${p}`;
        p += 3;
      } else if (c >= 0xf0 && c <= 0xf4) {
        const c1 = b[p + 1];
        if (
          p + 3 >= end || (c1 & 0xc0) !== 0x80 || (b[p + 2] & 0xc0) !== 0x80 ||
          (b[p + 3] & 0xc0) !== 0x80 || (c === 0xf0 && c1 < 0x90) || (c === 0xf4 && c1 >= 0x90)
        ) return `invalid UTF-8 at byte ${p}`;
        p += 4;
      } else {
        return `invalid UTF-8 at byte ${p}`;
      }
    }
    this.p = p + 1;
    return "";
  }

  value(depth: number): string {
    if (depth > 256) return "data nested too deeply";
    const b = this.b;
    if (this.p >= this.end) return "unexpected end of line";
    const c = b[this.p];
    if (c === C.QUOTE) return this.string(false);
    if (c === C.LBRACE) {
      this.p++;
      if (b[this.p] === C.RBRACE) {
        this.p++;
        return "";
      }
      let prevKey = -1;
      let prevKeyEnd = -1;
      for (;;) {
        const keyStart = this.p;
        let e = this.string(true);
        if (e) return e;
        if (prevKey >= 0 && !keyAfter(b, prevKey, prevKeyEnd, keyStart + 1, this.p - 1)) {
          return `object keys not in canonical order (or repeated) at byte ${keyStart}`;
        }
        prevKey = keyStart + 1;
        prevKeyEnd = this.p - 1;
        if (b[this.p] !== C.COLON) return this.at("expected :");
        this.p++;
        e = this.value(depth + 1);
        if (e) return e;
        const d = b[this.p];
        if (d === C.COMMA) {
          this.p++;
          continue;
        }
        if (d === C.RBRACE) {
          this.p++;
          return "";
        }
        return this.at("expected , or }");
      }
    }
    if (c === C.LBRACKET) {
      this.p++;
      if (b[this.p] === C.RBRACKET) {
        this.p++;
        return "";
      }
      for (;;) {
        const e = this.value(depth + 1);
        if (e) return e;
        const d = b[this.p];
        if (d === C.COMMA) {
          this.p++;
          continue;
        }
        if (d === C.RBRACKET) {
          this.p++;
          return "";
        }
        return this.at("expected , or ]");
      }
    }
    if (c === C.MINUS || (c >= C.ZERO && c <= C.NINE)) return this.number();
    if (c === 0x74 && this.lit(TRUE)) return "";
    if (c === 0x66 && this.lit(FALSE)) return "";
    if (c === 0x6e && this.lit(NULL)) return "";
    return this.at("expected a JSON value");
  }

  number(): string {
    const b = this.b;
    const start = this.p;
    let p = start;
    if (b[p] === C.MINUS) p++;
    const intStart = p;
    while (p < this.end && b[p] >= C.ZERO && b[p] <= C.NINE) p++;
    const intDigits = p - intStart;
    if (intDigits === 0) return `invalid number at byte ${start}`;
    let simple = true;
    if (b[p] === 0x2e) {
      simple = false;
      p++;
      const f = p;
      while (p < this.end && b[p] >= C.ZERO && b[p] <= C.NINE) p++;
      if (p === f) return `invalid number at byte ${start}`;
    }
    if (b[p] === 0x65 || b[p] === 0x45) {
      simple = false;
      p++;
      if (b[p] === 0x2b || b[p] === C.MINUS) p++;
      const f = p;
      while (p < this.end && b[p] >= C.ZERO && b[p] <= C.NINE) p++;
      if (p === f) return `invalid number at byte ${start}`;
    }
    this.p = p;
    if (simple && intDigits <= 15) {
      if (intDigits > 1 && b[intStart] === C.ZERO) return `non-canonical number at byte ${start}`;
      if (intStart > start && intDigits === 1 && b[intStart] === C.ZERO) {
        return `non-canonical number -0 at byte ${start}`;
      }
      return "";
    }
    // ECMAScript's Number-to-String is exactly the JCS number form.
    const text = latin1.decode(b.subarray(start, p));
    const n = Number(text);
    if (!Number.isFinite(n) || String(n) !== text) return `non-canonical number at byte ${start}`;
    return "";
  }
}

const TRUE = bytes("true");
const FALSE = bytes("false");
const NULL = bytes("null");

/** Whether b[start:end) matches TS_RE: dddd-dd-ddTdd:dd:dd(.d{1,9})?Z. */
function isTimestamp(b: Uint8Array, start: number, end: number): boolean {
  const len = end - start;
  if (len !== 20 && (len < 22 || len > 30)) return false;
  for (let i = 0; i < 19; i++) {
    const c = b[start + i];
    const want = TS_SHAPE[i];
    if (want === 0x64 ? c < 0x30 || c > 0x39 : c !== want) return false;
  }
  if (b[end - 1] !== 0x5a) return false;
  if (len > 20) {
    if (b[start + 19] !== 0x2e) return false;
    for (let i = start + 20; i < end - 1; i++) if (b[i] < 0x30 || b[i] > 0x39) return false;
  }
  return true;
}

const TS_SHAPE = bytes("dddd-dd-ddTdd:dd:dd");

/** Whether ASCII key b[c:d) sorts strictly after key b[a:b). */
function keyAfter(buf: Uint8Array, a: number, aEnd: number, c: number, cEnd: number): boolean {
  const n = Math.min(aEnd - a, cEnd - c);
  for (let i = 0; i < n; i++) {
    const x = buf[a + i];
    const y = buf[c + i];
    if (x !== y) return y > x;
  }
  return cEnd - c > aEnd - a;
}
