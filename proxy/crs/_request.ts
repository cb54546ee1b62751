/**
 * Turns one HTTP request into the SecLang variable collections: request line parts, headers,
 * cookies, query and body arguments (urlencoded, multipart, JSON, XML), files.
 * Values are byte strings (one char per byte).
 *
 * @module
 */
import { urlDecode } from "./_transforms.ts";

/** One variable value: `ARGS:q` = "1 or 1=1". */
export interface VarElem {
  /** Key inside its collection ("" for scalars). */
  key: string;
  /** The value as a byte string. */
  value: string;
  /** Full name as logged, e.g. "ARGS:q" or "REQUEST_URI". */
  name: string;
  /** Per-request caches, shared by the elements with the same value (see the engine). */
  vc?: ValueCache;
}

/** Per-request facts about one string (a value, or a value after transformations). */
export interface ValueCache {
  /** The string. */
  value: string;
  /** Which characters occur in it (see the engine's `charMask`), once needed. */
  mask: number[] | undefined;
  /** Literal-scanner result, once needed. */
  sat: number[] | undefined;
  /** Transformed values by transformation-chain prefix id (the engine's `Rule.tids`). */
  tv: (ValueCache | undefined)[] | undefined;
}

/** The collections of one request. */
export interface RequestData {
  collections: Map<string, VarElem[]>;
  /** Lowercased key index of each collection, built on first use. */
  index: Map<string, Map<string, VarElem[]>>;
  scalars: Map<string, string>;
}

/** Converts bytes to a byte string. */
export function latin1(bytes: Uint8Array): string {
  let s = "";
  const CH = 8192;
  for (let i = 0; i < bytes.length; i += CH) {
    s += String.fromCharCode.apply(
      null,
      bytes.subarray(i, Math.min(i + CH, bytes.length)) as unknown as number[],
    );
  }
  return s;
}

/** A fresh {@linkcode ValueCache} for a string. */
export function valueCacheOf(value: string): ValueCache {
  return { value, mask: undefined, sat: undefined, tv: undefined };
}

function push(
  data: RequestData,
  coll: string,
  key: string,
  value: string,
  vc: ValueCache | undefined = undefined,
): void {
  let list = data.collections.get(coll);
  if (!list) {
    list = [];
    data.collections.set(coll, list);
  }
  list.push({ key, value, name: key === "" ? coll : `${coll}:${key}`, vc });
}

function setArgs(data: RequestData, kind: "GET" | "POST", pairs: [string, string][]): void {
  for (const [k, v] of pairs) {
    // the same value in several collections shares its caches
    const kc = valueCacheOf(k);
    const vc = valueCacheOf(v);
    push(data, `ARGS_${kind}`, k, v, vc);
    push(data, `ARGS_${kind}_NAMES`, k, k, kc);
    push(data, "ARGS", k, v, vc);
    push(data, "ARGS_NAMES", k, k, kc);
  }
}

/** Parses `a=1&b=2` the ModSecurity way (non-strict decoding, `+` is a space). */
export function parseUrlEncoded(s: string): [string, string][] {
  const out: [string, string][] = [];
  if (s === "") return out;
  for (const part of s.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    if (eq < 0) out.push([urlDecode(part), ""]);
    else out.push([urlDecode(part.slice(0, eq)), urlDecode(part.slice(eq + 1))]);
  }
  return out;
}

/**
 * Adds a response's status line and headers (phase 3) to a transaction's variables:
 * RESPONSE_STATUS, RESPONSE_PROTOCOL, RESPONSE_HEADERS(_NAMES),
 * RESPONSE_CONTENT_TYPE and RESPONSE_CONTENT_LENGTH.
 *
 * @param data The request's variables.
 * @param status The response status.
 * @param protocol "HTTP/1.1" etc.
 * @param headers Header lines in arrival order, names as received.
 */
export function addResponseHead(
  data: RequestData,
  status: number,
  protocol: string,
  headers: [string, string][],
): void {
  const sc = data.scalars;
  sc.set("RESPONSE_STATUS", String(status));
  sc.set("RESPONSE_PROTOCOL", protocol);
  data.collections.set("RESPONSE_HEADERS", []);
  data.collections.set("RESPONSE_HEADERS_NAMES", []);
  data.index.delete("RESPONSE_HEADERS");
  data.index.delete("RESPONSE_HEADERS_NAMES");
  for (const [name, value] of headers) {
    push(data, "RESPONSE_HEADERS", name, value, valueCacheOf(value));
    push(data, "RESPONSE_HEADERS_NAMES", name, name, valueCacheOf(name));
    const lower = name.toLowerCase();
    if (lower === "content-type") sc.set("RESPONSE_CONTENT_TYPE", value);
    else if (lower === "content-length") sc.set("RESPONSE_CONTENT_LENGTH", value);
  }
}

/** Collections and scalars with nothing in them (the response's, before its head is added). */
export function emptyRequestData(): RequestData {
  return { collections: new Map(), index: new Map(), scalars: new Map() };
}

/** Builds the request-line and header collections (phase 1). */
export function buildRequestData(
  method: string,
  target: string,
  protocol: string,
  headers: [string, string][],
  remoteAddr: string,
): RequestData {
  const data: RequestData = {
    collections: new Map(),
    index: new Map(),
    scalars: new Map(),
  };
  const sc = data.scalars;
  sc.set("REQUEST_METHOD", method);
  sc.set("REQUEST_PROTOCOL", protocol);
  sc.set("REQUEST_LINE", `${method} ${target} ${protocol}`);
  sc.set("REQUEST_URI_RAW", target);
  sc.set("REMOTE_ADDR", remoteAddr);
  sc.set("REMOTE_HOST", remoteAddr);
  let uri = target;
  const abs = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*/.exec(uri);
  if (abs) uri = uri.slice(abs[0].length) || "/";
  sc.set("REQUEST_URI", uri);
  const hash = uri.indexOf("#");
  const noFrag = hash >= 0 ? uri.slice(0, hash) : uri;
  const q = noFrag.indexOf("?");
  const path = q >= 0 ? noFrag.slice(0, q) : noFrag;
  const query = q >= 0 ? noFrag.slice(q + 1) : "";
  sc.set("REQUEST_FILENAME", path);
  const slash = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  sc.set("REQUEST_BASENAME", slash >= 0 ? path.slice(slash + 1) : path);
  sc.set("PATH_INFO", "");
  sc.set("QUERY_STRING", query);
  setArgs(data, "GET", parseUrlEncoded(query));
  for (const [name, value] of headers) {
    push(data, "REQUEST_HEADERS", name, value, valueCacheOf(value));
    push(data, "REQUEST_HEADERS_NAMES", name, name, valueCacheOf(name));
    if (name.toLowerCase() === "cookie") {
      for (const c of value.split(";")) {
        const t = c.replace(/^[ \t]+/, "");
        if (t === "") continue;
        const eq = t.indexOf("=");
        const k = eq < 0 ? t : t.slice(0, eq);
        const v = eq < 0 ? "" : t.slice(eq + 1);
        push(data, "REQUEST_COOKIES", k, v, valueCacheOf(v));
        push(data, "REQUEST_COOKIES_NAMES", k, k, valueCacheOf(k));
      }
    }
  }
  for (
    const c of [
      "ARGS",
      "ARGS_NAMES",
      "ARGS_GET",
      "ARGS_GET_NAMES",
      "ARGS_POST",
      "ARGS_POST_NAMES",
      "REQUEST_HEADERS",
      "REQUEST_HEADERS_NAMES",
      "REQUEST_COOKIES",
      "REQUEST_COOKIES_NAMES",
      "FILES",
      "FILES_NAMES",
      "FILES_SIZES",
      "MULTIPART_PART_HEADERS",
      "XML",
    ]
  ) {
    if (!data.collections.has(c)) data.collections.set(c, []);
  }
  sc.set("REQUEST_BODY", "");
  sc.set("REQUEST_BODY_LENGTH", "0");
  sc.set("FILES_COMBINED_SIZE", "0");
  sc.set("REQBODY_ERROR", "0");
  sc.set("REQBODY_ERROR_MSG", "");
  sc.set("MULTIPART_STRICT_ERROR", "0");
  sc.set("MULTIPART_UNMATCHED_BOUNDARY", "0");
  updateArgsSize(data);
  return data;
}

function updateArgsSize(data: RequestData): void {
  let n = 0;
  for (const e of data.collections.get("ARGS") ?? []) n += e.key.length + e.value.length;
  data.scalars.set("ARGS_COMBINED_SIZE", String(n));
}

/** The body processor ModSecurity's recommended configuration picks for a Content-Type. */
export function bodyProcessorFor(contentType: string | undefined): string {
  if (!contentType) return "";
  const ct = contentType.toLowerCase();
  if (ct.startsWith("application/x-www-form-urlencoded")) return "URLENCODED";
  if (ct.startsWith("multipart/form-data")) return "MULTIPART";
  if (/^(?:application(?:\/soap\+|\/)|text\/)xml/.test(ct)) return "XML";
  if (/^application\/(?:[a-z0-9.-]+\+)?json/.test(ct)) return "JSON";
  return "";
}

/**
 * Parses the request body with the given processor and adds ARGS_POST, FILES, XML, … .
 *
 * @param data The request data from {@linkcode buildRequestData}.
 * @param body The body as a byte string.
 * @param processor URLENCODED, MULTIPART, JSON, XML or "" (none).
 * @param contentType The Content-Type header (for the multipart boundary).
 * @param forceBodyVariable Fill REQUEST_BODY even for processors that do not.
 * @param jsonDepthLimit Deepest nesting of a JSON body (SecRequestBodyJsonDepthLimit): a deeper
 *   body is a body error, whatever stack the parse runs on.
 */
export function parseBody(
  data: RequestData,
  body: string,
  processor: string,
  contentType: string,
  forceBodyVariable: boolean,
  jsonDepthLimit: number = JSON_DEPTH_LIMIT,
): void {
  const sc = data.scalars;
  sc.set("REQUEST_BODY_LENGTH", String(body.length));
  if (processor === "URLENCODED" || (processor === "" && forceBodyVariable) || forceBodyVariable) {
    sc.set("REQUEST_BODY", body);
  }
  if (body === "") return;
  try {
    if (processor === "URLENCODED") setArgs(data, "POST", parseUrlEncoded(body));
    else if (processor === "JSON") parseJsonBody(data, body, jsonDepthLimit);
    else if (processor === "MULTIPART") parseMultipart(data, body, contentType);
    else if (processor === "XML") parseXml(data, body);
  } catch (e) {
    sc.set("REQBODY_ERROR", "1");
    sc.set("REQBODY_ERROR_MSG", (e as Error).message);
  }
  data.index.clear();
  updateArgsSize(data);
}

function utf8(s: string): string {
  try {
    const b = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
    return new TextDecoder("utf-8", { fatal: true }).decode(b);
  } catch {
    return s;
  }
}

function toBytesString(s: string): string {
  // JSON.parse yields UTF-16; go back to UTF-8 bytes.
  // deno-lint-ignore no-control-regex
  if (!/[^\x00-\x7f]/.test(s)) return s;
  return latin1(new TextEncoder().encode(s));
}

/** SecRequestBodyJsonDepthLimit of ModSecurity's modsecurity.conf-recommended. */
export const JSON_DEPTH_LIMIT = 512;

function parseJsonBody(data: RequestData, body: string, depthLimit: number): void {
  const v = JSON.parse(utf8(body));
  const pairs: [string, string][] = [];
  // `depth`: the arrays and objects enclosing x. The limit makes the outcome of a deeply nested
  // body the same on every call, rather than depend on how much stack the caller left.
  const walk = (x: unknown, prefix: string, depth: number): void => {
    if (x === null) pairs.push([prefix, ""]);
    else if (typeof x !== "object") pairs.push([prefix, toBytesString(String(x))]);
    else if (depth >= depthLimit) {
      throw new Error(
        `JSON: nested deeper than ${depthLimit} levels (SecRequestBodyJsonDepthLimit)`,
      );
    } else if (Array.isArray(x)) {
      if (x.length === 0) pairs.push([prefix, ""]);
      x.forEach((y, i) => walk(y, `${prefix}.${i}`, depth + 1));
    } else {
      const entries = Object.entries(x as Record<string, unknown>);
      if (entries.length === 0) pairs.push([prefix, ""]);
      for (const [k, y] of entries) walk(y, `${prefix}.${toBytesString(k)}`, depth + 1);
    }
  };
  walk(v, "json", 0);
  setArgs(data, "POST", pairs);
}

function parseMultipart(data: RequestData, body: string, contentType: string): void {
  const m = /boundary\s*=\s*(?:"([^"]*)"|([^;,\s]+))/i.exec(contentType);
  if (!m) throw new Error("multipart: no boundary in Content-Type");
  const boundary = "--" + (m[1] ?? m[2]);
  const pairs: [string, string][] = [];
  let combined = 0;
  let pos = body.indexOf(boundary);
  if (pos < 0) throw new Error("multipart: boundary not found");
  while (pos >= 0) {
    let start = pos + boundary.length;
    if (body.startsWith("--", start)) break; // closing boundary
    if (body[start] === "\r") start++;
    if (body[start] === "\n") start++;
    const next = body.indexOf(boundary, start);
    let part = next < 0 ? body.slice(start) : body.slice(start, next);
    if (next < 0) data.scalars.set("MULTIPART_UNMATCHED_BOUNDARY", "1");
    if (part.endsWith("\r\n")) part = part.slice(0, -2);
    else if (part.endsWith("\n")) part = part.slice(0, -1);
    let sep = part.indexOf("\r\n\r\n");
    let sepLen = 4;
    if (sep < 0) {
      sep = part.indexOf("\n\n");
      sepLen = 2;
    }
    const head = sep < 0 ? part : part.slice(0, sep);
    const content = sep < 0 ? "" : part.slice(sep + sepLen);
    const lines = head.split(/\r?\n/).filter((l) => l !== "");
    let name = "";
    let filename: string | undefined;
    for (const l of lines) {
      if (/^content-disposition\s*:/i.test(l)) {
        const nm = /[;\s]name\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))/i.exec(l);
        if (nm) name = nm[1] ?? nm[2] ?? "";
        const fn = /filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))/i.exec(l);
        if (fn) filename = fn[1] ?? fn[2] ?? "";
      }
    }
    for (const l of lines) push(data, "MULTIPART_PART_HEADERS", name, l);
    if (filename !== undefined) {
      push(data, "FILES", name, filename);
      push(data, "FILES_NAMES", name, name);
      push(data, "FILES_SIZES", name, String(content.length));
      combined += content.length;
    } else pairs.push([name, content]);
    pos = next;
  }
  data.scalars.set("FILES_COMBINED_SIZE", String(combined));
  setArgs(data, "POST", pairs);
}

function xmlUnescape(s: string): string {
  return s.replace(/&(lt|gt|amp|quot|apos|#x[0-9a-f]+|#\d+);/gi, (_m, e: string) => {
    const l = e.toLowerCase();
    if (l === "lt") return "<";
    if (l === "gt") return ">";
    if (l === "amp") return "&";
    if (l === "quot") return '"';
    if (l === "apos") return "'";
    const cp = l[1] === "x" ? parseInt(l.slice(2), 16) : parseInt(l.slice(1), 10);
    return cp < 256 ? String.fromCharCode(cp) : toBytesString(String.fromCodePoint(cp));
  });
}

function parseXml(data: RequestData, body: string): void {
  // XML:/* is the text content of the document element; XML://@* every attribute value.
  let text = "";
  const tagRe =
    /<!\[CDATA\[([\s\S]*?)\]\]>|<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<!DOCTYPE[^>]*>|<\/?([^\s>\/]+)([^>]*?)\/?>|([^<]+)/gi;
  let m: RegExpExecArray | null;
  let sawTag = false;
  while ((m = tagRe.exec(body)) !== null) {
    if (m[1] !== undefined) text += m[1];
    else if (m[4] !== undefined) {
      if (sawTag) text += xmlUnescape(m[4]);
    } else if (m[2] !== undefined) {
      sawTag = true;
      const attrRe = /([^\s=]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;
      let a: RegExpExecArray | null;
      while ((a = attrRe.exec(m[3] ?? "")) !== null) {
        push(data, "XML", "//@*", xmlUnescape(a[2] ?? a[3] ?? ""));
      }
    }
  }
  if (!sawTag) throw new Error("XML: no root element");
  push(data, "XML", "/*", text);
}
