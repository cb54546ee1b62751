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

/** A parsed response head. */
export interface ResponseHead {
  status: number;
  reason: string;
  minor: number;
  headers: [string, string][];
  contentLength: number;
  chunked: boolean;
  connection: string[];
  headBytes: number;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values: VCHAR, obs-text, SP and HTAB only.
// deno-lint-ignore no-control-regex -- control characters are what this rejects
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
const TARGET = /^[\x21-\x7e]+$/;
const DIGITS = /^[0-9]{1,15}$/;

/**
 * Reads until a complete head is buffered. Returns the index just past the blank line, or -1
 * when the stream ended cleanly before any byte of a new message.
 */
export async function readHead(
  bc: BufferedConn,
  limits: HeadLimits,
  onFirstByte?: () => void,
): Promise<number> {
  let scanned = 0;
  let seen = bc.buffered > 0;
  if (seen) onFirstByte?.();
  for (;;) {
    // RFC 9112 §2.2: ignore empty lines before the request line.
    while (
      bc.end - bc.start >= 2 && bc.buf[bc.start] === 13 && bc.buf[bc.start + 1] === 10
    ) bc.start += 2;
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
    scanned = Math.max(0, have - 3);
    const ok = await bc.fill();
    if (!ok) {
      if (bc.end - bc.start === 0 && !seen) return -1;
      throw new Rejection(400, "proxy-incomplete-head", "connection closed inside a message head");
    }
    if (!seen) {
      seen = true;
      onFirstByte?.();
    }
  }
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

function splitLines(text: string): string[] {
  // text ends with "\r\n\r\n"; drop the final empty lines.
  const lines = text.split("\r\n");
  lines.length -= 2;
  return lines;
}

function parseFields(
  lines: string[],
  limits: HeadLimits | undefined,
): [string, string][] {
  const headers: [string, string][] = [];
  if (limits && lines.length - 1 > limits.maxHeaderCount) {
    throw new Rejection(431, "proxy-header-count", "too many header fields");
  }
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    if (limits && line.length > limits.maxLineBytes) {
      throw new Rejection(431, "proxy-header-size", "header field too large");
    }
    const c0 = line.charCodeAt(0);
    if (c0 === 32 || c0 === 9) {
      throw new Rejection(400, "proxy-obs-fold", "obsolete line folding is not accepted");
    }
    const colon = line.indexOf(":");
    if (colon <= 0) throw new Rejection(400, "proxy-bad-header", "header line without a name");
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) {
      throw new Rejection(400, "proxy-bad-header", "invalid header field name");
    }
    let a = colon + 1;
    let b = line.length;
    while (a < b && (line.charCodeAt(a) === 32 || line.charCodeAt(a) === 9)) a++;
    while (b > a && (line.charCodeAt(b - 1) === 32 || line.charCodeAt(b - 1) === 9)) b--;
    const value = line.slice(a, b);
    if (BAD_VALUE.test(value)) {
      throw new Rejection(400, "proxy-bad-header", "invalid character in header field value");
    }
    headers.push([name, value]);
  }
  return headers;
}

function tokens(value: string, into: string[]): void {
  for (const t of value.split(",")) {
    const s = t.trim().toLowerCase();
    if (s) into.push(s);
  }
}

/** Parses framing headers shared by requests and responses. */
function framing(
  headers: [string, string][],
  isRequest: boolean,
): {
  contentLength: number;
  chunked: boolean;
  connection: string[];
  host: string | undefined;
  hostCount: number;
  upgrade: string | undefined;
  expectContinue: boolean;
} {
  let contentLength = -1;
  let te: string[] | undefined;
  const connection: string[] = [];
  let host: string | undefined;
  let hostCount = 0;
  let upgrade: string | undefined;
  let expectContinue = false;
  const bad = (msg: string): Rejection =>
    isRequest ? new Rejection(400, "proxy-bad-framing", msg) : new Rejection(502, "upstream", msg);
  for (const [name, value] of headers) {
    const n = name.length;
    // Cheap length switch before lower-casing: only a few names matter here.
    if (n !== 4 && n !== 6 && n !== 7 && n !== 10 && n !== 14 && n !== 17) continue;
    const lower = name.toLowerCase();
    switch (lower) {
      case "content-length": {
        for (const part of value.split(",")) {
          const v = part.trim();
          if (!DIGITS.test(v)) throw bad("invalid Content-Length");
          const len = Number(v);
          if (contentLength !== -1 && contentLength !== len) {
            throw bad("conflicting Content-Length values");
          }
          contentLength = len;
        }
        break;
      }
      case "transfer-encoding":
        te ??= [];
        tokens(value, te);
        break;
      case "connection":
        tokens(value, connection);
        break;
      case "host":
        host = value;
        hostCount++;
        break;
      case "upgrade":
        upgrade = value;
        break;
      case "expect":
        if (value.toLowerCase() === "100-continue") expectContinue = true;
        else if (isRequest) {
          throw new Rejection(417, "proxy-expect", "unsupported Expect value");
        }
        break;
    }
  }
  let chunked = false;
  if (te !== undefined) {
    if (isRequest && contentLength !== -1) {
      throw bad("both Transfer-Encoding and Content-Length");
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
  return { contentLength, chunked, connection, host, hostCount, upgrade, expectContinue };
}

/** Parses a request head occupying bc.buf[bc.start, end). */
export function parseRequestHead(
  buf: Uint8Array,
  start: number,
  end: number,
  limits: HeadLimits,
): RequestHead {
  const text = latin1Decode(buf, start, end);
  const lines = splitLines(text);
  const line = lines[0];
  if (line.length > limits.maxLineBytes) {
    throw new Rejection(414, "proxy-uri-too-long", "request line too long");
  }
  const sp1 = line.indexOf(" ");
  const sp2 = line.indexOf(" ", sp1 + 1);
  if (sp1 <= 0 || sp2 <= sp1 + 1 || line.indexOf(" ", sp2 + 1) !== -1) {
    throw new Rejection(400, "proxy-bad-request-line", "malformed request line");
  }
  const method = line.slice(0, sp1);
  const target = line.slice(sp1 + 1, sp2);
  const protocol = line.slice(sp2 + 1);
  if (!TOKEN.test(method)) {
    throw new Rejection(400, "proxy-bad-request-line", "invalid method");
  }
  if (!TARGET.test(target)) {
    throw new Rejection(400, "proxy-bad-request-line", "invalid request target");
  }
  let minor: number;
  if (protocol === "HTTP/1.1") minor = 1;
  else if (protocol === "HTTP/1.0") minor = 0;
  else if (/^HTTP\/[0-9]\.[0-9]$/.test(protocol)) {
    throw new Rejection(505, "proxy-http-version", "HTTP version not supported");
  } else {
    throw new Rejection(400, "proxy-bad-request-line", "invalid HTTP version");
  }
  const headers = parseFields(lines, limits);
  const f = framing(headers, true);
  return {
    method,
    target,
    protocol,
    minor,
    headers,
    ...f,
    headBytes: end - start,
  };
}

/** Parses a response head occupying buf[start, end). Throws a 502 Rejection when malformed. */
export function parseResponseHead(buf: Uint8Array, start: number, end: number): ResponseHead {
  const text = latin1Decode(buf, start, end);
  const lines = splitLines(text);
  const m = /^HTTP\/1\.([01]) ([0-9]{3})(?: (.*))?$/.exec(lines[0]);
  if (!m) throw new Rejection(502, "upstream", "malformed upstream status line");
  let headers: [string, string][];
  try {
    headers = parseFields(lines, undefined);
  } catch {
    throw new Rejection(502, "upstream", "malformed upstream header");
  }
  const f = framing(headers, false);
  return {
    status: Number(m[2]),
    reason: m[3] ?? "",
    minor: Number(m[1]),
    headers,
    contentLength: f.contentLength,
    chunked: f.chunked,
    connection: f.connection,
    headBytes: end - start,
  };
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
