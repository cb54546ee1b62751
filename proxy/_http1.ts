/**
 * A strict HTTP/1.1 message-head parser and body framing (RFC 9112). It accepts only what the
 * grammar allows: CRLF line endings, token field names, no obs-fold, one Content-Length value,
 * no Content-Length together with Transfer-Encoding. Anything else is refused, because a proxy
 * that parses more leniently than its backend is a request-smuggling vector.
 *
 * @module
 */

import { latin1Decode, latin1Encode } from "./_bytes.ts";
import type { BufferedConn } from "./_conn.ts";

/** A request the proxy refuses with a status of its own. */
export class Rejection extends Error {
  /** Status sent to the client. */
  readonly status: number;
  /** Rule id recorded in the finding. */
  readonly ruleId: string;
  /** Finding category. */
  readonly category: string;
  constructor(status: number, ruleId: string, message: string, category = "protocol") {
    super(message);
    this.name = "Rejection";
    this.status = status;
    this.ruleId = ruleId;
    this.category = category;
  }
}

/** Limits applied while reading a head. */
export interface HeadLimits {
  maxHeadBytes: number;
  maxLineBytes: number;
  maxHeaderCount: number;
}

/** A parsed request head plus framing facts derived from it. */
export interface RequestHead {
  method: string;
  target: string;
  protocol: string;
  minor: number;
  headers: [string, string][];
  /** Field kind of each header (`F_*`), parallel to `headers`. */
  kinds: number[];
  /** The single Host value, if any. */
  host: string | undefined;
  hostCount: number;
  /** Content-Length or -1. */
  contentLength: number;
  chunked: boolean;
  /** Lower-cased Connection tokens. */
  connection: string[];
  upgrade: string | undefined;
  expectContinue: boolean;
  /** Head size in bytes including the final CRLF. */
  headBytes: number;
}

// ---- byte classes and field kinds --------------------------------------------------------------

/** tchar (RFC 9110 §5.6.2). */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) TCHAR[c] = 1;
for (let c = 65; c <= 90; c++) TCHAR[c] = TCHAR[c + 32] = 1;
/** Field-value bytes: HTAB, SP, VCHAR and obs-text; no other control characters. */
const FIELD_BYTE = new Uint8Array(256);
FIELD_BYTE[9] = 1;
for (let c = 32; c <= 126; c++) FIELD_BYTE[c] = 1;
for (let c = 128; c <= 255; c++) FIELD_BYTE[c] = 1;

/** A field the proxy does not act on. */
export const F_OTHER = 0;
/** `Host`. */
export const F_HOST = 1;
/** `Content-Length`. */
export const F_CONTENT_LENGTH = 2;
/** `Transfer-Encoding`. */
export const F_TRANSFER_ENCODING = 3;
/** `Connection`. */
export const F_CONNECTION = 4;
/** `Upgrade`. */
export const F_UPGRADE = 5;
/** `Expect`. */
export const F_EXPECT = 6;
/** `traceparent`. */
export const F_TRACEPARENT = 7;
/** `X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Host`, `Forwarded`. */
export const F_FORWARDING = 8;
/** The other hop-by-hop fields (Keep-Alive, Proxy-Connection, TE, Trailer, Proxy-Authenticate,
 * Proxy-Authorization). */
export const F_HOP = 9;

/** Whether a field kind never crosses the proxy (RFC 9110 §7.6.1). */
export const HOP_KIND: Uint8Array = new Uint8Array(16);
HOP_KIND[F_TRANSFER_ENCODING] =
  HOP_KIND[F_CONNECTION] =
  HOP_KIND[F_UPGRADE] =
  HOP_KIND[F_HOP] =
    1;

const KNOWN: [string, number][] = [
  ["host", F_HOST],
  ["content-length", F_CONTENT_LENGTH],
  ["transfer-encoding", F_TRANSFER_ENCODING],
  ["connection", F_CONNECTION],
  ["upgrade", F_UPGRADE],
  ["expect", F_EXPECT],
  ["traceparent", F_TRACEPARENT],
  ["x-forwarded-for", F_FORWARDING],
  ["x-forwarded-proto", F_FORWARDING],
  ["x-forwarded-host", F_FORWARDING],
  ["forwarded", F_FORWARDING],
  ["keep-alive", F_HOP],
  ["proxy-connection", F_HOP],
  ["te", F_HOP],
  ["trailer", F_HOP],
  ["proxy-authenticate", F_HOP],
  ["proxy-authorization", F_HOP],
];
/** Known names by length: [lower-case bytes, kind]. */
const KNOWN_BY_LENGTH: [Uint8Array, number][][] = [];
for (const [name, kind] of KNOWN) {
  (KNOWN_BY_LENGTH[name.length] ??= []).push([latin1Encode(name), kind]);
}

/**
 * The kind of the field named by buf[a, a + n). The name must already be a valid token: then
 * OR-ing 0x20 folds exactly the upper-case letters.
 */
function fieldKind(buf: Uint8Array, a: number, n: number): number {
  const cands = n < KNOWN_BY_LENGTH.length ? KNOWN_BY_LENGTH[n] : undefined;
  if (cands === undefined) return F_OTHER;
  next: for (let c = 0; c < cands.length; c++) {
    const want = cands[c][0];
    for (let i = 0; i < n; i++) {
      if ((buf[a + i] | 0x20) !== want[i]) continue next;
    }
    return cands[c][1];
  }
  return F_OTHER;
}

/** Index of the next CRLF at or after i (before end), or -1. */
function crlf(buf: Uint8Array, i: number, end: number): number {
  // A plain loop: header lines are short, and TypedArray#indexOf costs a call into the
  // runtime each time, more than scanning a line.
  for (; i < end - 1; i++) if (buf[i] === 13 && buf[i + 1] === 10) return i;
  return -1;
}

/** Index of the colon ending a valid field name starting at p, or a negative error code. */
function fieldColon(buf: Uint8Array, p: number, q: number): number {
  let i = p;
  while (i < q && TCHAR[buf[i]] === 1) i++;
  if (i > p && i < q && buf[i] === 58) return i;
  for (let j = p; j < q; j++) if (buf[j] === 58) return j === p ? -1 : -2;
  return -1;
}

/** Where `fieldValue` puts the value's bounds. */
const VALUE = new Int32Array(2);

/**
 * Finds the value of the field line `buf[colon + 1, q)` without the white space around it and
 * puts its bounds in `VALUE[0]`, `VALUE[1]`.
 *
 * @returns whether every byte of the value may stand in a field value
 */
function fieldValue(buf: Uint8Array, colon: number, q: number): boolean {
  let a = colon + 1;
  let b = q;
  while (a < b && isSpace(buf[a])) a++;
  while (b > a && isSpace(buf[b - 1])) b--;
  VALUE[0] = a;
  VALUE[1] = b;
  for (let i = a; i < b; i++) if (FIELD_BYTE[buf[i]] !== 1) return false;
  return true;
}

function isSpace(b: number): boolean {
  return b === 32 || b === 9;
}

/** Appends the lower-cased comma-separated tokens of a field value. */
function tokens(value: string, into: string[]): void {
  for (const t of value.split(",")) {
    const s = t.trim().toLowerCase();
    if (s) into.push(s);
  }
}

/** Connection / Transfer-Encoding tokens of buf[a, b), fast for the usual single values. */
function tokensOf(buf: Uint8Array, a: number, b: number, into: string[]): void {
  if (b - a === 10 && equalsLower(buf, a, KEEP_ALIVE)) into.push("keep-alive");
  else if (b - a === 5 && equalsLower(buf, a, CLOSE)) into.push("close");
  else if (b - a === 7 && equalsLower(buf, a, CHUNKED)) into.push("chunked");
  else tokens(latin1Decode(buf, a, b), into);
}
const KEEP_ALIVE = latin1Encode("keep-alive");
const CLOSE = latin1Encode("close");
const CHUNKED = latin1Encode("chunked");

/** Case-insensitive compare of buf[a, a + lower.length) with lower-case letters and '-'. */
function equalsLower(buf: Uint8Array, a: number, lower: Uint8Array): boolean {
  for (let i = 0; i < lower.length; i++) {
    const c = buf[a + i];
    // Only letters fold: a byte that is not a letter must match exactly.
    if (c !== lower[i] && !(c >= 65 && c <= 90 && (c | 0x20) === lower[i])) return false;
  }
  return true;
}

/**
 * Parses a Content-Length value: one or more comma-separated equal decimal values (RFC 9110
 * §8.6 allows a list of identical values). Returns the length, or -2 when invalid, -3 when the
 * values conflict with each other or with `prev`.
 */
function contentLengthOf(buf: Uint8Array, a: number, b: number, prev: number): number {
  let i = a;
  let result = prev;
  for (;;) {
    while (i < b && isSpace(buf[i])) i++;
    let len = 0;
    let digits = 0;
    while (i < b && buf[i] >= 48 && buf[i] <= 57) {
      len = len * 10 + (buf[i] - 48);
      digits++;
      i++;
    }
    while (i < b && isSpace(buf[i])) i++;
    if (digits === 0 || digits > 15 || (i < b && buf[i] !== 44)) return -2;
    if (result !== -1 && result !== len) return -3;
    result = len;
    if (i >= b) return result;
    i++; // the comma
  }
}

/** Framing facts shared by requests and responses. */
interface Framing {
  contentLength: number;
  chunked: boolean;
  connection: string[];
  host: string | undefined;
  hostCount: number;
  upgrade: string | undefined;
  expectContinue: boolean;
}

/** Connection tokens of a head without a Connection field (shared; never mutated). */
const NO_TOKENS: string[] = Object.freeze([]) as unknown as string[];
/** Connection tokens of `Connection: keep-alive` and `Connection: close` (shared, frozen). */
const KEEP_ALIVE_TOKENS: string[] = Object.freeze(["keep-alive"]) as unknown as string[];
const CLOSE_TOKENS: string[] = Object.freeze(["close"]) as unknown as string[];

/** What `framing` returns: reused, the callers copy it out at once (parsing is synchronous). */
const FRAMING: Framing = {
  contentLength: -1,
  chunked: false,
  connection: NO_TOKENS,
  host: undefined,
  hostCount: 0,
  upgrade: undefined,
  expectContinue: false,
};

/**
 * Derives framing from the fields that carry it. `fk`/`fa`/`fb` hold the kind and value bounds
 * (in `buf`) of the framing-relevant fields only, `count` of them (the arrays are reused and may
 * be longer). The result is valid until the next call.
 */
function framing(
  buf: Uint8Array,
  fk: number[],
  fa: number[],
  fb: number[],
  count: number,
  isRequest: boolean,
  text?: string,
  textStart = 0,
): Framing {
  let contentLength = -1;
  let te: string[] | undefined;
  let connection = NO_TOKENS;
  let host: string | undefined;
  let hostCount = 0;
  let upgrade: string | undefined;
  let expectContinue = false;
  for (let i = 0; i < count; i++) {
    const a = fa[i];
    const b = fb[i];
    switch (fk[i]) {
      case F_CONTENT_LENGTH: {
        const len = contentLengthOf(buf, a, b, contentLength);
        if (len === -2) throw badFraming(isRequest, "invalid Content-Length");
        if (len === -3) throw badFraming(isRequest, "conflicting Content-Length values");
        contentLength = len;
        break;
      }
      case F_TRANSFER_ENCODING:
        te ??= [];
        tokensOf(buf, a, b, te);
        break;
      case F_CONNECTION:
        if (connection === NO_TOKENS) {
          // The usual single token: a shared array, none made per message.
          if (b - a === 10 && equalsLower(buf, a, KEEP_ALIVE)) {
            connection = KEEP_ALIVE_TOKENS;
            break;
          }
          if (b - a === 5 && equalsLower(buf, a, CLOSE)) {
            connection = CLOSE_TOKENS;
            break;
          }
          connection = [];
        } else if (connection === KEEP_ALIVE_TOKENS || connection === CLOSE_TOKENS) {
          connection = connection.slice();
        }
        tokensOf(buf, a, b, connection);
        break;
      case F_HOST:
        host = text !== undefined
          ? text.slice(a - textStart, b - textStart)
          : latin1Decode(buf, a, b);
        hostCount++;
        break;
      case F_UPGRADE:
        upgrade = text !== undefined
          ? text.slice(a - textStart, b - textStart)
          : latin1Decode(buf, a, b);
        break;
      case F_EXPECT:
        if (b - a === 12 && equalsLower(buf, a, CONTINUE_100)) expectContinue = true;
        else if (isRequest) {
          throw new Rejection(417, "proxy-expect", "unsupported Expect value");
        }
        break;
    }
  }
  let chunked = false;
  if (te !== undefined) {
    if (isRequest && contentLength !== -1) {
      throw badFraming(isRequest, "both Transfer-Encoding and Content-Length");
    }
    if (te.length === 0 || te[te.length - 1] !== "chunked") {
      if (isRequest) {
        throw new Rejection(501, "proxy-bad-framing", "unsupported Transfer-Encoding");
      }
      // Response without chunked as final coding: body runs until close (RFC 9112 §6.3).
      contentLength = -1;
    } else {
      if (isRequest && te.length !== 1) {
        throw new Rejection(501, "proxy-bad-framing", "unsupported Transfer-Encoding");
      }
      chunked = true;
      contentLength = -1;
    }
  }
  const f = FRAMING;
  f.contentLength = contentLength;
  f.chunked = chunked;
  f.connection = connection;
  f.host = host;
  f.hostCount = hostCount;
  f.upgrade = upgrade;
  f.expectContinue = expectContinue;
  return f;
}
const CONTINUE_100 = latin1Encode("100-continue");

function badFraming(isRequest: boolean, msg: string): Rejection {
  return isRequest
    ? new Rejection(400, "proxy-bad-framing", msg)
    : new Rejection(502, "upstream", msg);
}

// Scratch for the framing fields of the head being parsed (parsing is synchronous). Reused
// arrays are written by index, never cleared with `length = 0`: V8 frees the backing store on
// that, and the next push allocates a new one.
const FK: number[] = [];
const FA: number[] = [];
const FB: number[] = [];

function isFramingKind(k: number): boolean {
  return k >= F_HOST && k <= F_EXPECT;
}

/**
 * Parses a request head occupying buf[start, end) (ending with the blank line's CRLF).
 * Strict: CRLF line ends, token method and field names, visible-ASCII target, HTTP/1.0 or 1.1,
 * field values without control characters, no obs-fold, no whitespace before a colon.
 * `kinds`, when given, is cleared and reused for the field kinds (a per-connection array).
 *
 * @throws {Rejection} 400, 414, 417, 431, 501 or 505 naming the rule.
 */
export function parseRequestHead(
  buf: Uint8Array,
  start: number,
  end: number,
  limits: HeadLimits,
  kinds: number[] = [],
): RequestHead {
  let le = crlf(buf, start, end);
  if (le === -1) le = end; // not reached for heads found by scanHead
  if (le - start > limits.maxLineBytes) {
    throw new Rejection(414, "proxy-uri-too-long", "request line too long");
  }
  let sp1 = -1;
  let sp2 = -1;
  for (let i = start; i < le; i++) {
    if (buf[i] !== 32) continue;
    if (sp1 === -1) sp1 = i;
    else if (sp2 === -1) sp2 = i;
    else throw new Rejection(400, "proxy-bad-request-line", "malformed request line");
  }
  if (sp1 <= start || sp2 <= sp1 + 1) {
    throw new Rejection(400, "proxy-bad-request-line", "malformed request line");
  }
  for (let i = start; i < sp1; i++) {
    if (TCHAR[buf[i]] !== 1) throw new Rejection(400, "proxy-bad-request-line", "invalid method");
  }
  for (let i = sp1 + 1; i < sp2; i++) {
    const c = buf[i];
    if (c < 0x21 || c > 0x7e) {
      throw new Rejection(400, "proxy-bad-request-line", "invalid request target");
    }
  }
  let minor: number;
  const v = sp2 + 1;
  if (
    le - v === 8 && buf[v] === 72 && buf[v + 1] === 84 && buf[v + 2] === 84 &&
    buf[v + 3] === 80 && buf[v + 4] === 47 && buf[v + 6] === 46 && isDigit(buf[v + 5]) &&
    isDigit(buf[v + 7])
  ) {
    if (buf[v + 5] !== 49 || (buf[v + 7] !== 48 && buf[v + 7] !== 49)) {
      throw new Rejection(505, "proxy-http-version", "HTTP version not supported");
    }
    minor = buf[v + 7] - 48;
  } else {
    throw new Rejection(400, "proxy-bad-request-line", "invalid HTTP version");
  }

  // Header fields: [le + 2, end - 2), each line ending in CRLF.
  const fieldsEnd = end - 2;
  if ((fieldsEnd - le - 2) >> 1 > limits.maxHeaderCount) {
    let count = 0;
    for (let i = le + 2; i < fieldsEnd - 1; i++) if (buf[i] === 13 && buf[i + 1] === 10) count++;
    if (count > limits.maxHeaderCount) {
      throw new Rejection(431, "proxy-header-count", "too many header fields");
    }
  }
  const text = latin1Decode(buf, start, end);
  const headers: [string, string][] = [];
  let nk = 0;
  const fk = FK;
  const fa = FA;
  const fb = FB;
  let nf = 0;
  for (let p = le + 2; p < fieldsEnd;) {
    let q = crlf(buf, p, end);
    if (q === -1 || q > fieldsEnd) q = fieldsEnd;
    if (q - p > limits.maxLineBytes) {
      throw new Rejection(431, "proxy-header-size", "header field too large");
    }
    if (isSpace(buf[p])) {
      throw new Rejection(400, "proxy-obs-fold", "obsolete line folding is not accepted");
    }
    const colon = fieldColon(buf, p, q);
    if (colon === -1) throw new Rejection(400, "proxy-bad-header", "header line without a name");
    if (colon < 0) throw new Rejection(400, "proxy-bad-header", "invalid header field name");
    if (!fieldValue(buf, colon, q)) {
      throw new Rejection(400, "proxy-bad-header", "invalid character in header field value");
    }
    const a = VALUE[0];
    const b = VALUE[1];
    const kind = fieldKind(buf, p, colon - p);
    headers.push([text.slice(p - start, colon - start), text.slice(a - start, b - start)]);
    kinds[nk++] = kind;
    if (isFramingKind(kind)) {
      fk[nf] = kind;
      fa[nf] = a;
      fb[nf++] = b;
    }
    p = q + 2;
  }
  if (kinds.length !== nk) kinds.length = nk;
  const f = framing(buf, fk, fa, fb, nf, true, text, start);
  return {
    method: text.slice(0, sp1 - start),
    target: text.slice(sp1 + 1 - start, sp2 - start),
    protocol: minor === 1 ? "HTTP/1.1" : "HTTP/1.0",
    minor,
    headers,
    kinds,
    contentLength: f.contentLength,
    chunked: f.chunked,
    connection: f.connection,
    host: f.host,
    hostCount: f.hostCount,
    upgrade: f.upgrade,
    expectContinue: f.expectContinue,
    headBytes: end - start,
  };
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/**
 * A parsed response head. It keeps the byte layout of the head so the proxy can pass the
 * fields on without decoding them; `reason` and `headers` decode on demand and are valid only
 * until the connection's buffer is refilled (read them right after parsing).
 */
export class ResponseHead {
  /** Status code. */
  readonly status: number;
  /** HTTP/1.x minor version. */
  readonly minor: number;
  /** Content-Length or -1. */
  readonly contentLength: number;
  /** Chunked transfer coding. */
  readonly chunked: boolean;
  /** Lower-cased Connection tokens. */
  readonly connection: string[];
  /** Head size in bytes including the final CRLF. */
  readonly headBytes: number;
  /** The buffer the head was parsed from. */
  readonly buf: Uint8Array;
  /** Reason phrase bounds in `buf`. */
  readonly reasonStart: number;
  readonly reasonEnd: number;
  /** Per field: line start, colon, line end (the CR) and kind, four numbers each. */
  readonly fields: number[];

  constructor(
    init: {
      status: number;
      minor: number;
      framing: Framing;
      headBytes: number;
      buf: Uint8Array;
      reasonStart: number;
      reasonEnd: number;
      fields: number[];
    },
  ) {
    this.status = init.status;
    this.minor = init.minor;
    this.contentLength = init.framing.contentLength;
    this.chunked = init.framing.chunked;
    this.connection = init.framing.connection;
    this.headBytes = init.headBytes;
    this.buf = init.buf;
    this.reasonStart = init.reasonStart;
    this.reasonEnd = init.reasonEnd;
    this.fields = init.fields;
  }

  /** The reason phrase. */
  get reason(): string {
    return latin1Decode(this.buf, this.reasonStart, this.reasonEnd);
  }

  /** Decoded [name, value] pairs (values without surrounding whitespace). */
  get headers(): [string, string][] {
    const out: [string, string][] = [];
    const f = this.fields;
    const buf = this.buf;
    for (let i = 0; i < f.length; i += 4) {
      fieldValue(buf, f[i + 1], f[i + 2]); // checked when the head was parsed
      out.push([latin1Decode(buf, f[i], f[i + 1]), latin1Decode(buf, VALUE[0], VALUE[1])]);
    }
    return out;
  }
}

const EMPTY = new Uint8Array(0);
const NO_FIELDS: number[] = [];
/** Reused for every `ResponseHead`: its constructor copies it out. */
const RESPONSE_INIT: ConstructorParameters<typeof ResponseHead>[0] = {
  status: 0,
  minor: 0,
  framing: FRAMING,
  headBytes: 0,
  buf: EMPTY,
  reasonStart: 0,
  reasonEnd: 0,
  fields: NO_FIELDS,
};

/**
 * Parses a response head occupying buf[start, end). Throws a 502 Rejection when malformed.
 * `fields`, when given, is cleared and reused for the field layout (a per-connection array:
 * the head is then valid until the next head is parsed into it).
 */
export function parseResponseHead(
  buf: Uint8Array,
  start: number,
  end: number,
  fields: number[] = [],
): ResponseHead {
  let le = crlf(buf, start, end);
  if (le === -1) le = end;
  // status-line = "HTTP/1." DIGIT SP 3DIGIT [ SP reason-phrase ]
  const s = start;
  if (
    le - s < 12 || buf[s] !== 72 || buf[s + 1] !== 84 || buf[s + 2] !== 84 ||
    buf[s + 3] !== 80 || buf[s + 4] !== 47 || buf[s + 5] !== 49 || buf[s + 6] !== 46 ||
    (buf[s + 7] !== 48 && buf[s + 7] !== 49) || buf[s + 8] !== 32 || !isDigit(buf[s + 9]) ||
    !isDigit(buf[s + 10]) || !isDigit(buf[s + 11]) || (le - s > 12 && buf[s + 12] !== 32)
  ) {
    throw new Rejection(502, "upstream", "malformed upstream status line");
  }
  const reasonStart = le - s > 12 ? s + 13 : le;
  for (let i = reasonStart; i < le; i++) {
    if (FIELD_BYTE[buf[i]] !== 1) {
      throw new Rejection(502, "upstream", "malformed upstream status line");
    }
  }
  const status = (buf[s + 9] - 48) * 100 + (buf[s + 10] - 48) * 10 + (buf[s + 11] - 48);
  let n = 0;
  const fk = FK;
  const fa = FA;
  const fb = FB;
  let nf = 0;
  const fieldsEnd = end - 2;
  for (let p = le + 2; p < fieldsEnd;) {
    let q = crlf(buf, p, end);
    if (q === -1 || q > fieldsEnd) q = fieldsEnd;
    const colon = isSpace(buf[p]) ? -1 : fieldColon(buf, p, q);
    if (colon < 0) throw new Rejection(502, "upstream", "malformed upstream header");
    if (!fieldValue(buf, colon, q)) {
      throw new Rejection(502, "upstream", "malformed upstream header");
    }
    const a = VALUE[0];
    const b = VALUE[1];
    const kind = fieldKind(buf, p, colon - p);
    fields[n++] = p;
    fields[n++] = colon;
    fields[n++] = q;
    fields[n++] = kind;
    if (isFramingKind(kind)) {
      fk[nf] = kind;
      fa[nf] = a;
      fb[nf++] = b;
    }
    p = q + 2;
  }
  const init = RESPONSE_INIT;
  init.status = status;
  init.minor = buf[s + 7] - 48;
  if (fields.length !== n) fields.length = n;
  init.framing = framing(buf, fk, fa, fb, nf, false);
  init.headBytes = end - start;
  init.buf = buf;
  init.reasonStart = reasonStart;
  init.reasonEnd = le;
  init.fields = fields;
  const res = new ResponseHead(init);
  init.buf = EMPTY;
  init.fields = NO_FIELDS;
  return res;
}

/**
 * Looks for a complete head in what is buffered, from `scanned` bytes past the start (what an
 * earlier call already looked at). Returns the index just past the blank line, or -1 when more
 * bytes are needed; the caller then reads and calls again with
 * `Math.max(0, bc.buffered - 3)`. Empty lines before the request line are skipped
 * (RFC 9112 §2.2).
 *
 * @throws {Rejection} 400 for a bare LF, 414/431 when the limits are exceeded.
 */
export function scanHead(bc: BufferedConn, limits: HeadLimits, scanned: number): number {
  while (bc.end - bc.start >= 2 && bc.buf[bc.start] === 13 && bc.buf[bc.start + 1] === 10) {
    bc.start += 2;
  }
  const end = findHeadEnd(bc.buf, bc.start + scanned, bc.start, bc.end);
  if (end >= 0) {
    if (end - bc.start > limits.maxHeadBytes) {
      throw new Rejection(431, "proxy-header-size", "request header section too large");
    }
    return end;
  }
  const have = bc.end - bc.start;
  if (have > limits.maxHeadBytes) {
    const firstLf = bc.buf.subarray(bc.start, bc.end).indexOf(10);
    if (firstLf === -1 && have > limits.maxLineBytes) {
      throw new Rejection(414, "proxy-uri-too-long", "request line too long");
    }
    throw new Rejection(431, "proxy-header-size", "request header section too large");
  }
  return -1;
}

/** Finds "\r\n\r\n" in buf[from, end); every LF must follow a CR. */
function findHeadEnd(buf: Uint8Array, from: number, start: number, end: number): number {
  for (let i = Math.max(from, start); i < end; i++) {
    if (buf[i] !== 10) continue;
    if (i === start || buf[i - 1] !== 13) {
      throw new Rejection(400, "proxy-bare-lf", "line ending without CR");
    }
    if (i - start >= 3 && buf[i - 2] === 10 && buf[i - 3] === 13) return i + 1;
  }
  return -1;
}

/** A stream of decoded body bytes. Returned views are valid until the next call. */
export interface BodySource {
  /** Next piece of body data, or null at the end. */
  read(): Promise<Uint8Array | null>;
  /** Decoded body bytes delivered so far. */
  readonly bytes: number;
}

/** Thrown by body sources when the body exceeds the configured limit. */
export function tooLarge(): Rejection {
  return new Rejection(413, "proxy-body-size", "request body too large");
}

/** A Content-Length framed body. */
export class LengthBody implements BodySource {
  bytes = 0;
  readonly #bc: BufferedConn;
  #remaining: number;
  readonly #onProgress: (() => void) | undefined;
  readonly #eofError: () => Error;
  constructor(
    bc: BufferedConn,
    length: number,
    eofError: () => Error,
    onProgress?: () => void,
  ) {
    this.#bc = bc;
    this.#remaining = length;
    this.#onProgress = onProgress;
    this.#eofError = eofError;
  }
  get remaining(): number {
    return this.#remaining;
  }
  /** Accounts for `n` body bytes the caller took from the buffer itself. */
  skip(n: number): void {
    this.#remaining -= n;
    this.bytes += n;
  }
  async read(): Promise<Uint8Array | null> {
    if (this.#remaining === 0) return null;
    if (this.#bc.buffered === 0) {
      if (!(await this.#bc.fill())) throw this.#eofError();
      this.#onProgress?.();
    }
    const out = this.#bc.take(this.#remaining);
    this.#remaining -= out.length;
    this.bytes += out.length;
    return out;
  }
}

/** A body delimited by the end of the stream (responses only). */
export class CloseBody implements BodySource {
  bytes = 0;
  readonly #bc: BufferedConn;
  readonly #onProgress: (() => void) | undefined;
  #done = false;
  constructor(bc: BufferedConn, onProgress?: () => void) {
    this.#bc = bc;
    this.#onProgress = onProgress;
  }
  async read(): Promise<Uint8Array | null> {
    if (this.#done) return null;
    if (this.#bc.buffered === 0) {
      if (!(await this.#bc.fill())) {
        this.#done = true;
        return null;
      }
      this.#onProgress?.();
    }
    const out = this.#bc.take(Infinity);
    this.bytes += out.length;
    return out;
  }
}

/** A chunked body (RFC 9112 §7.1); trailers are read and dropped. */
export class ChunkedBody implements BodySource {
  bytes = 0;
  readonly #bc: BufferedConn;
  readonly #onProgress: (() => void) | undefined;
  readonly #err: (msg: string) => Error;
  #chunkLeft = 0;
  #state: "size" | "data" | "crlf" | "done" = "size";
  constructor(bc: BufferedConn, err: (msg: string) => Error, onProgress?: () => void) {
    this.#bc = bc;
    this.#err = err;
    this.#onProgress = onProgress;
  }

  async #more(): Promise<void> {
    if (!(await this.#bc.fill())) throw this.#err("connection closed inside a chunked body");
    this.#onProgress?.();
  }

  /** Reads one CRLF-terminated line (without the CRLF). */
  async #line(max: number): Promise<string> {
    const bc = this.#bc;
    for (;;) {
      const i = bc.buf.subarray(bc.start, bc.end).indexOf(10);
      if (i >= 0) {
        if (i === 0 || bc.buf[bc.start + i - 1] !== 13) throw this.#err("bad chunk line ending");
        const s = latin1Decode(bc.buf, bc.start, bc.start + i - 1);
        bc.start += i + 1;
        return s;
      }
      if (bc.buffered > max) throw this.#err("chunk line too long");
      await this.#more();
    }
  }

  async read(): Promise<Uint8Array | null> {
    const bc = this.#bc;
    for (;;) {
      switch (this.#state) {
        case "done":
          return null;
        case "size": {
          const line = await this.#line(4096);
          const semi = line.indexOf(";");
          const hex = (semi === -1 ? line : line.slice(0, semi)).trimEnd();
          if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) throw this.#err("invalid chunk size");
          const size = parseInt(hex, 16);
          if (size === 0) {
            // trailer section
            let count = 0;
            for (;;) {
              const t = await this.#line(8192);
              if (t === "") break;
              if (++count > 64) throw this.#err("too many trailer fields");
            }
            this.#state = "done";
            return null;
          }
          this.#chunkLeft = size;
          this.#state = "data";
          break;
        }
        case "data": {
          if (bc.buffered === 0) await this.#more();
          const out = bc.take(this.#chunkLeft);
          this.#chunkLeft -= out.length;
          if (this.#chunkLeft === 0) this.#state = "crlf";
          this.bytes += out.length;
          return out;
        }
        case "crlf": {
          while (bc.buffered < 2) await this.#more();
          if (bc.buf[bc.start] !== 13 || bc.buf[bc.start + 1] !== 10) {
            throw this.#err("missing CRLF after chunk data");
          }
          bc.start += 2;
          this.#state = "size";
          break;
        }
      }
    }
  }
}

/** A body source that yields a buffered prefix, then the rest of the source it came from. */
export class PrefixedBody implements BodySource {
  readonly #prefix: Uint8Array[];
  readonly #rest: BodySource;
  constructor(prefix: Uint8Array[], rest: BodySource) {
    this.#prefix = prefix;
    this.#rest = rest;
  }
  /** The prefix was read from `rest`, so its count already includes it. */
  get bytes(): number {
    return this.#rest.bytes;
  }
  read(): Promise<Uint8Array | null> {
    const p = this.#prefix.shift();
    return p ? Promise.resolve(p) : this.#rest.read();
  }
}

const CRLF = new Uint8Array([13, 10]);
/** The last chunk of a chunked body with an empty trailer section. */
export const LAST_CHUNK: Uint8Array = latin1Encode("0\r\n\r\n");

/** Frames one piece of data as an HTTP/1.1 chunk. */
export function encodeChunk(data: Uint8Array): Uint8Array {
  const size = latin1Encode(data.length.toString(16) + "\r\n");
  const out = new Uint8Array(size.length + data.length + 2);
  out.set(size, 0);
  out.set(data, size.length);
  out.set(CRLF, size.length + data.length);
  return out;
}
