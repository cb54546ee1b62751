/**
 * Proxy configuration: the JSONC file format, its defaults and its validation. Validation is
 * strict (unknown keys are errors, so a typo cannot silently disable a defence) and every error
 * names the file position and key path. Reading the file is main.ts's job; this module only
 * parses text.
 *
 * @module
 */

import { type Node, type ParseError, parseTree, printParseErrorCode } from "jsonc-parser";
import { ProxyError } from "./errors.ts";
import { parseCidr } from "./ip.ts";

/** Collector settings for exports over HTTP. */
export interface ExportConfig {
  /** Endpoint URL, e.g. "http://127.0.0.1:4318/v1/traces". */
  url: string;
  /** Extra request headers. */
  headers: Record<string, string>;
  /** Items per request. */
  batchSize: number;
  /** Longest wait before a partial batch is sent, ms. */
  flushIntervalMs: number;
  /** Most items waiting; more are dropped and counted. */
  queueSize: number;
  /** Per-request timeout, ms. */
  timeoutMs: number;
}

/** The complete, resolved configuration (every key has a value). */
export interface ProxyConfig {
  /** Listen address "host:port" (port 0 picks a free port). */
  listen: string;
  /** Backend origin, "http://host:port" or "https://host:port". */
  backend: string;
  /** "block" enforces rules, access lists and rate limits; "monitor" only records findings. */
  mode: "block" | "monitor";
  /** Host names (optionally with port) that absolute-form request targets may name. */
  hosts: string[];
  /** Addresses or CIDR ranges of proxies whose forwarding headers are believed. */
  trustedProxies: string[];
  /** Add X-Forwarded-For/-Proto/-Host and Forwarded to upstream requests. */
  forwardedHeaders: boolean;
  /** Add `x-infraveil-rules` (matched rule ids) to every response. Debugging only. */
  debugHeaders: boolean;
  /**
   * Listener threads sharing the port (SO_REUSEPORT); the CLI starts this many. Each thread
   * keeps its own rate-limit buckets, spans and findings.
   */
  workers: number;
  /** IP allow and deny lists (addresses or CIDR ranges). */
  access: { allow: string[]; deny: string[] };
  /** Client-side limits and timeouts. */
  limits: {
    maxHeaderBytes: number;
    maxHeaderCount: number;
    maxRequestLineBytes: number;
    /** 0 means unlimited. */
    maxBodyBytes: number;
    headerTimeoutMs: number;
    idleTimeoutMs: number;
    bodyTimeoutMs: number;
    maxConnections: number;
  };
  /** Backend connection settings. */
  upstream: {
    connectTimeoutMs: number;
    responseTimeoutMs: number;
    maxIdleConnections: number;
    idleTimeoutMs: number;
    maxResponseHeaderBytes: number;
  };
  /** Per-client token bucket. */
  rateLimit: { enabled: boolean; requestsPerSecond: number; burst: number; maxClients: number };
  /** Rule engines. */
  rules: {
    /** Run the built-in baseline rules. */
    baseline: boolean;
    /** Baseline rule ids to disable. */
    disabled: string[];
    /** Extra engine: "none" or "crs" (OWASP Core Rule Set). */
    engine: "none" | "crs";
    /** CRS rules directory (engine "crs"). */
    crsDir?: string;
    /** CRS setup file (engine "crs"). */
    setupFile?: string;
    /** CRS paranoia level 1–4. */
    paranoia: number;
    /** Further options handed to the CRS engine unchanged. */
    crsOptions: Record<string, unknown>;
  };
  /** Request tracing. */
  tracing: {
    enabled: boolean;
    sampleRate: number;
    respectParentSampling: boolean;
    propagate: boolean;
    bufferSize: number;
    serviceName: string;
    otlp?: ExportConfig;
  };
  /** Findings store and export. */
  findings: { bufferSize: number; export?: ExportConfig };
}

/** A partial configuration as written by users (every key optional). */
export type ProxyConfigInput = DeepPartial<ProxyConfig>;
/** Recursive Partial. */
export type DeepPartial<T> = {
  [K in keyof T]?: T[K] extends (infer U)[] ? U[]
    : T[K] extends Record<string, unknown> ? DeepPartial<T[K]>
    : T[K];
};

/** The defaults every key falls back to. */
export function defaultConfig(): ProxyConfig {
  return {
    listen: "127.0.0.1:8080",
    backend: "http://127.0.0.1:3000",
    mode: "block",
    hosts: [],
    trustedProxies: [],
    forwardedHeaders: true,
    debugHeaders: false,
    workers: 1,
    access: { allow: [], deny: [] },
    limits: {
      maxHeaderBytes: 16384,
      maxHeaderCount: 100,
      maxRequestLineBytes: 8192,
      maxBodyBytes: 10 * 1024 * 1024,
      headerTimeoutMs: 10_000,
      idleTimeoutMs: 60_000,
      bodyTimeoutMs: 30_000,
      maxConnections: 10_000,
    },
    upstream: {
      connectTimeoutMs: 5_000,
      responseTimeoutMs: 60_000,
      maxIdleConnections: 256,
      idleTimeoutMs: 30_000,
      maxResponseHeaderBytes: 65536,
    },
    rateLimit: { enabled: false, requestsPerSecond: 100, burst: 200, maxClients: 100_000 },
    rules: { baseline: true, disabled: [], engine: "none", paranoia: 1, crsOptions: {} },
    tracing: {
      enabled: true,
      sampleRate: 1,
      respectParentSampling: true,
      propagate: true,
      bufferSize: 10_000,
      serviceName: "infraveil-proxy",
    },
    findings: { bufferSize: 5_000 },
  };
}

type Spec =
  | { t: "string" }
  | { t: "bool" }
  | { t: "int"; min: number; max: number }
  | { t: "num"; min: number; max: number }
  | { t: "enum"; values: readonly string[] }
  | { t: "strings"; check?: (s: string) => string | undefined }
  | { t: "record" }
  | { t: "any" }
  | { t: "obj"; fields: Record<string, Spec>; optional?: boolean };

const ms = { t: "int", min: 1, max: 86_400_000 } as const;
const exportSpec: Spec = {
  t: "obj",
  optional: true,
  fields: {
    url: { t: "string" },
    headers: { t: "record" },
    batchSize: { t: "int", min: 1, max: 100_000 },
    flushIntervalMs: ms,
    queueSize: { t: "int", min: 1, max: 10_000_000 },
    timeoutMs: ms,
  },
};
const cidrCheck = (s: string): string | undefined =>
  parseCidr(s) ? undefined : `"${s}" is not an IP address or CIDR range (e.g. "10.0.0.0/8")`;

const SPEC: Spec = {
  t: "obj",
  fields: {
    listen: { t: "string" },
    backend: { t: "string" },
    mode: { t: "enum", values: ["block", "monitor"] },
    hosts: { t: "strings" },
    trustedProxies: { t: "strings", check: cidrCheck },
    forwardedHeaders: { t: "bool" },
    debugHeaders: { t: "bool" },
    workers: { t: "int", min: 1, max: 64 },
    access: {
      t: "obj",
      fields: {
        allow: { t: "strings", check: cidrCheck },
        deny: { t: "strings", check: cidrCheck },
      },
    },
    limits: {
      t: "obj",
      fields: {
        maxHeaderBytes: { t: "int", min: 256, max: 1 << 20 },
        maxHeaderCount: { t: "int", min: 1, max: 10_000 },
        maxRequestLineBytes: { t: "int", min: 64, max: 1 << 20 },
        maxBodyBytes: { t: "int", min: 0, max: Number.MAX_SAFE_INTEGER },
        headerTimeoutMs: ms,
        idleTimeoutMs: ms,
        bodyTimeoutMs: ms,
        maxConnections: { t: "int", min: 1, max: 1_000_000 },
      },
    },
    upstream: {
      t: "obj",
      fields: {
        connectTimeoutMs: ms,
        responseTimeoutMs: ms,
        maxIdleConnections: { t: "int", min: 0, max: 100_000 },
        idleTimeoutMs: ms,
        maxResponseHeaderBytes: { t: "int", min: 1024, max: 1 << 22 },
      },
    },
    rateLimit: {
      t: "obj",
      fields: {
        enabled: { t: "bool" },
        requestsPerSecond: { t: "num", min: 0.001, max: 1e9 },
        burst: { t: "int", min: 1, max: 1e9 },
        maxClients: { t: "int", min: 1, max: 10_000_000 },
      },
    },
    rules: {
      t: "obj",
      fields: {
        baseline: { t: "bool" },
        disabled: { t: "strings" },
        engine: { t: "enum", values: ["none", "crs"] },
        crsDir: { t: "string" },
        setupFile: { t: "string" },
        paranoia: { t: "int", min: 1, max: 4 },
        crsOptions: { t: "any" },
      },
    },
    tracing: {
      t: "obj",
      fields: {
        enabled: { t: "bool" },
        sampleRate: { t: "num", min: 0, max: 1 },
        respectParentSampling: { t: "bool" },
        propagate: { t: "bool" },
        bufferSize: { t: "int", min: 1, max: 10_000_000 },
        serviceName: { t: "string" },
        otlp: exportSpec,
      },
    },
    findings: {
      t: "obj",
      fields: { bufferSize: { t: "int", min: 1, max: 10_000_000 }, export: exportSpec },
    },
  },
};

class Invalid extends Error {
  constructor(readonly path: (string | number)[], message: string) {
    super(message);
  }
}

function typeName(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "array" : typeof v;
}

function check(v: unknown, spec: Spec, path: (string | number)[]): void {
  const at = path.length ? path.join(".") : "(top level)";
  switch (spec.t) {
    case "string":
      if (typeof v !== "string") {
        throw new Invalid(path, `${at} must be a string, got ${typeName(v)}`);
      }
      return;
    case "bool":
      if (typeof v !== "boolean") {
        throw new Invalid(path, `${at} must be true or false, got ${typeName(v)}`);
      }
      return;
    case "int":
    case "num":
      if (
        typeof v !== "number" || !Number.isFinite(v) || (spec.t === "int" && !Number.isInteger(v))
      ) {
        throw new Invalid(path, `${at} must be ${spec.t === "int" ? "an integer" : "a number"}`);
      }
      if (v < spec.min || v > spec.max) {
        throw new Invalid(path, `${at} must be between ${spec.min} and ${spec.max}, got ${v}`);
      }
      return;
    case "enum":
      if (typeof v !== "string" || !spec.values.includes(v)) {
        throw new Invalid(
          path,
          `${at} must be one of ${spec.values.map((s) => `"${s}"`).join(", ")}, got ${
            JSON.stringify(v)
          }`,
        );
      }
      return;
    case "strings":
      if (!Array.isArray(v)) throw new Invalid(path, `${at} must be an array of strings`);
      v.forEach((s, i) => {
        if (typeof s !== "string") throw new Invalid([...path, i], `${at}[${i}] must be a string`);
        const msg = spec.check?.(s);
        if (msg) throw new Invalid([...path, i], `${at}[${i}]: ${msg}`);
      });
      return;
    case "record":
      if (typeof v !== "object" || v === null || Array.isArray(v)) {
        throw new Invalid(path, `${at} must be an object of strings`);
      }
      for (const [k, s] of Object.entries(v)) {
        if (typeof s !== "string") throw new Invalid([...path, k], `${at}.${k} must be a string`);
      }
      return;
    case "any":
      if (typeof v !== "object" || v === null || Array.isArray(v)) {
        throw new Invalid(path, `${at} must be an object`);
      }
      return;
    case "obj": {
      if (typeof v !== "object" || v === null || Array.isArray(v)) {
        throw new Invalid(path, `${at} must be an object, got ${typeName(v)}`);
      }
      for (const [k, sub] of Object.entries(v)) {
        if (sub === undefined) continue; // absent, e.g. a spread of a resolved config
        const fs = spec.fields[k];
        if (!fs) {
          const known = Object.keys(spec.fields).join(", ");
          throw new Invalid(
            [...path, k],
            `unknown key "${[...path, k].join(".")}" (known keys: ${known})`,
          );
        }
        check(sub, fs, [...path, k]);
      }
    }
  }
}

function merge(
  base: Record<string, unknown>,
  over: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    const b = base[k];
    out[k] = typeof b === "object" && b !== null && !Array.isArray(b) && typeof v === "object" &&
        v !== null && !Array.isArray(v)
      ? merge(b as Record<string, unknown>, v as Record<string, unknown>)
      : v;
  }
  return out;
}

function fillExport(e: Partial<ExportConfig> | undefined): ExportConfig | undefined {
  if (!e) return undefined;
  return {
    url: e.url ?? "",
    headers: e.headers ?? {},
    batchSize: e.batchSize ?? 512,
    flushIntervalMs: e.flushIntervalMs ?? 2000,
    queueSize: e.queueSize ?? 8192,
    timeoutMs: e.timeoutMs ?? 5000,
  };
}

/** Splits "host:port" (IPv6 in brackets); undefined when malformed. */
export function parseHostPort(s: string): { hostname: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]\s]+)):([0-9]{1,5})$/.exec(s);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { hostname: m[1] ?? m[2], port };
}

/** A parsed backend origin. */
export interface BackendTarget {
  tls: boolean;
  hostname: string;
  port: number;
  /** "host:port" as sent in X-Forwarded headers when needed. */
  authority: string;
}

/** Parses the backend URL; undefined with a reason when invalid. */
export function parseBackend(s: string): BackendTarget | string {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return `"${s}" is not a URL (expected e.g. "http://127.0.0.1:3000")`;
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    return `backend must be http:// or https://, got "${u.protocol}"`;
  }
  if ((u.pathname !== "/" && u.pathname !== "") || u.search || u.hash || u.username) {
    return `backend must be an origin without path, query or credentials (e.g. "http://127.0.0.1:3000")`;
  }
  const tls = u.protocol === "https:";
  const hostname = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
  return { tls, hostname, port: u.port ? Number(u.port) : (tls ? 443 : 80), authority: u.host };
}

function semantic(c: ProxyConfig): void {
  if (!parseHostPort(c.listen)) {
    throw new Invalid(
      ["listen"],
      `listen must be "host:port" (e.g. "127.0.0.1:8080"), got "${c.listen}"`,
    );
  }
  const b = parseBackend(c.backend);
  if (typeof b === "string") throw new Invalid(["backend"], b);
  if (c.rules.engine === "crs" && !c.rules.crsDir) {
    throw new Invalid(["rules", "crsDir"], `rules.crsDir is required when rules.engine is "crs"`);
  }
  for (const [key, e] of [["tracing", c.tracing.otlp], ["findings", c.findings.export]] as const) {
    if (!e) continue;
    const sub = key === "tracing" ? "otlp" : "export";
    try {
      const u = new URL(e.url);
      if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error();
    } catch {
      throw new Invalid(
        [key, sub, "url"],
        `${key}.${sub}.url must be an http(s) URL, got "${e.url}"`,
      );
    }
  }
}

/**
 * Validates a configuration object and fills in defaults.
 *
 * @param input User configuration (every key optional).
 * @returns The resolved configuration.
 * @throws {ProxyError} CONFIG_INVALID naming the key path.
 */
export function resolveConfig(input: unknown): ProxyConfig {
  try {
    return resolveInner(input);
  } catch (e) {
    if (e instanceof Invalid) {
      throw new ProxyError("CONFIG_INVALID", `Invalid proxy config: ${e.message}`);
    }
    throw e;
  }
}

function resolveInner(input: unknown): ProxyConfig {
  check(input ?? {}, SPEC, []);
  const merged = merge(
    defaultConfig() as unknown as Record<string, unknown>,
    (input ?? {}) as Record<string, unknown>,
  ) as unknown as ProxyConfig;
  merged.tracing.otlp = fillExport(merged.tracing.otlp);
  merged.findings.export = fillExport(merged.findings.export);
  if (merged.tracing.otlp && !("url" in ((input as ProxyConfigInput).tracing?.otlp ?? {}))) {
    throw new Invalid(["tracing", "otlp"], "tracing.otlp.url is required");
  }
  if (merged.findings.export && !("url" in ((input as ProxyConfigInput).findings?.export ?? {}))) {
    throw new Invalid(["findings", "export"], "findings.export.url is required");
  }
  semantic(merged);
  return merged;
}

function lineCol(text: string, offset: number): string {
  let line = 1;
  let last = -1;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      last = i;
    }
  }
  return `${line}:${offset - last}`;
}

function nodeAt(root: Node | undefined, path: (string | number)[]): Node | undefined {
  let node = root;
  let best = root;
  for (const seg of path) {
    if (!node?.children) break;
    if (node.type === "object") {
      const prop = node.children.find((p: Node) => p.children?.[0]?.value === seg);
      if (!prop) break;
      best = prop;
      node = prop.children?.[1];
    } else if (node.type === "array" && typeof seg === "number") {
      node = node.children[seg];
      if (!node) break;
      best = node;
    } else break;
  }
  return best;
}

/**
 * Parses a JSONC configuration file and resolves it.
 *
 * @param text File contents.
 * @param source File name used in error messages.
 * @returns The resolved configuration.
 * @throws {ProxyError} CONFIG_SYNTAX or CONFIG_INVALID with "file:line:col".
 * @example
 * ```ts
 * import { parseConfig } from "./config.ts";
 * import assert from "node:assert/strict";
 * const c = parseConfig(`{ "mode": "monitor" } // comments allowed`, "proxy.jsonc");
 * assert.equal(c.mode, "monitor");
 * assert.equal(c.limits.maxHeaderCount, 100);
 * ```
 */
export function parseConfig(text: string, source: string): ProxyConfig {
  const errors: ParseError[] = [];
  const root = parseTree(text, errors, { allowTrailingComma: true, disallowComments: false });
  if (errors.length > 0) {
    const e = errors[0];
    throw new ProxyError(
      "CONFIG_SYNTAX",
      `${source}:${lineCol(text, e.offset)}: ${
        printParseErrorCode(e.error)
      } — fix the JSONC syntax`,
    );
  }
  const value = root ? nodeValue(root) : {};
  try {
    return resolveInner(value);
  } catch (e) {
    if (e instanceof Invalid) {
      const node = nodeAt(root, e.path);
      const where = node ? lineCol(text, node.offset) : "1:1";
      throw new ProxyError("CONFIG_INVALID", `${source}:${where}: ${e.message}`);
    }
    throw e;
  }
}

function nodeValue(n: Node): unknown {
  switch (n.type) {
    case "object": {
      const o: Record<string, unknown> = {};
      for (const p of n.children ?? []) {
        const [k, v] = p.children ?? [];
        if (k && v) o[k.value as string] = nodeValue(v);
      }
      return o;
    }
    case "array":
      return (n.children ?? []).map(nodeValue);
    default:
      return n.value;
  }
}
