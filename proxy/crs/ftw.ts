/**
 * go-ftw regression tests (the format of CRS `tests/regression/tests`): loading, turning stages
 * into requests, deciding pass/fail from the rules that fired, and summarising pass rates per
 * rule file and paranoia level. Running requests is injected (in-process engine or a proxy).
 *
 * @module
 */
import { parse as parseYaml } from "yaml";
import type { RuleRequest, RuleResponse } from "../rule_engine.ts";
import { CrsError } from "./_errors.ts";
import { latin1 } from "./_request.ts";
import type { CrsEngine } from "./crs.ts";

/** One go-ftw stage input. */
export interface FtwInput {
  method?: string;
  uri?: string;
  version?: string;
  headers?: Record<string, string>;
  data?: string;
  encoded_request?: string;
  autocomplete_headers?: boolean;
  dest_addr?: string;
  port?: number;
}

/** One go-ftw stage expectation. */
export interface FtwOutput {
  status?: number | number[];
  log?: {
    expect_ids?: number[];
    no_expect_ids?: number[];
    match_regex?: string;
    no_match_regex?: string;
  };
}

/** One test case. */
export interface FtwTest {
  /** Rule file directory, e.g. "REQUEST-942-APPLICATION-ATTACK-SQLI". */
  file: string;
  /** The rule the test file is about. */
  ruleId: number;
  /** "942100-3". */
  id: string;
  stages: { input: FtwInput; output: FtwOutput }[];
}

/**
 * Parses one go-ftw YAML file.
 *
 * @param text File content.
 * @param file Rule file directory name used for grouping.
 * @param path Path for error messages.
 * @returns The tests.
 * @throws {CrsError} `BAD_TEST` when the YAML is not a go-ftw test file.
 */
export function parseFtwFile(text: string, file: string, path: string): FtwTest[] {
  let doc: {
    rule_id?: number;
    tests?: {
      test_id?: number;
      stages?: { input?: FtwInput; output?: FtwOutput; stage?: unknown }[];
    }[];
  };
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new CrsError("BAD_TEST", `${path}: not valid YAML (${(e as Error).message})`, {
      cause: e,
    });
  }
  if (doc === null || doc === undefined) return []; // a file of comments only
  if (!Array.isArray(doc.tests)) {
    throw new CrsError("BAD_TEST", `${path}: no "tests" list; is this a go-ftw test file?`);
  }
  const ruleId = Number(doc.rule_id ?? /(\d{6})/.exec(path)?.[1] ?? 0);
  return doc.tests.map((t, i) => {
    const stages = (t.stages ?? []).map((s, j) => {
      // Old format nests {stage: {input, output}}.
      const st = (s.stage ?? s) as { input?: FtwInput; output?: FtwOutput };
      if (!st.input || !st.output) {
        throw new CrsError(
          "BAD_TEST",
          `${path}: test ${t.test_id ?? i + 1} stage ${j + 1} needs input and output`,
        );
      }
      return { input: st.input, output: st.output };
    });
    return { file, ruleId, id: `${ruleId}-${t.test_id ?? i + 1}`, stages };
  });
}

/** UTF-8 encodes a (Unicode) YAML string into a byte string. */
function bytes(s: string): string {
  // deno-lint-ignore no-control-regex
  return /[^\x00-\x7f]/.test(s) ? latin1(new TextEncoder().encode(s)) : s;
}

/**
 * Builds the request a go-ftw stage sends (what the web server would hand the WAF).
 *
 * @param input The stage input.
 * @returns The request, or undefined for raw requests no HTTP server would parse.
 */
export function stageRequest(input: FtwInput): RuleRequest | undefined {
  if (input.encoded_request) return parseRawRequest(atob(input.encoded_request));
  const method = bytes(String(input.method ?? "GET"));
  const target = bytes(String(input.uri ?? "/"));
  const protocol = String(input.version ?? "HTTP/1.1");
  const headers: [string, string][] = Object.entries(input.headers ?? {}).map((
    [k, v],
  ) => [bytes(k), bytes(String(v))]);
  let body: Uint8Array | undefined;
  if (input.data !== undefined && input.data !== null) {
    body = new TextEncoder().encode(String(input.data));
    const auto = input.autocomplete_headers !== false;
    // go-ftw's header completion: Content-Type (form) and Content-Length for a body.
    if (auto && body.length > 0 && !headers.some(([n]) => n.toLowerCase() === "content-type")) {
      headers.push(["Content-Type", "application/x-www-form-urlencoded"]);
    }
    if (auto && !headers.some(([n]) => n.toLowerCase() === "content-length")) {
      headers.push(["Content-Length", String(body.length)]);
    }
  }
  if (
    input.autocomplete_headers !== false && !headers.some(([n]) => n.toLowerCase() === "connection")
  ) {
    headers.push(["Connection", "close"]);
  }
  return { method, target, protocol, headers, remoteAddr: "127.0.0.1", body };
}

function parseRawRequest(raw: string): RuleRequest | undefined {
  const headEnd = raw.indexOf("\r\n\r\n");
  const head = headEnd < 0 ? raw : raw.slice(0, headEnd);
  const bodyStr = headEnd < 0 ? "" : raw.slice(headEnd + 4);
  const lines = head.split("\r\n");
  const m = /^(\S+) (\S+) (\S+)$/.exec(lines[0] ?? "");
  if (!m) return undefined;
  const headers: [string, string][] = [];
  for (const l of lines.slice(1)) {
    const c = l.indexOf(":");
    if (c > 0) headers.push([l.slice(0, c), l.slice(c + 1).trim()]);
  }
  const body = new Uint8Array(bodyStr.length);
  for (let i = 0; i < bodyStr.length; i++) body[i] = bodyStr.charCodeAt(i);
  return { method: m[1], target: m[2], protocol: m[3], headers, remoteAddr: "127.0.0.1", body };
}

const HTML_SIGNATURES = [
  "<!doctype html",
  "<html",
  "<head",
  "<script",
  "<iframe",
  "<h1",
  "<div",
  "<font",
  "<table",
  "<a",
  "<style",
  "<title",
  "<b",
  "<body",
  "<br",
  "<p",
  "<!--",
];

/**
 * The media type a Go web server gives a body sent without a Content-Type (the part of
 * `http.DetectContentType` that text bodies reach): HTML by its opening tags, XML, plain text,
 * or binary.
 *
 * @param body The body.
 * @returns The Content-Type value.
 */
export function sniffContentType(body: Uint8Array): string {
  let i = 0;
  // Go's sniffer skips these, not 0x0B.
  while (i < body.length && [0x09, 0x0a, 0x0c, 0x0d, 0x20].includes(body[i])) i++;
  const head = latin1(body.subarray(i, i + 16)).toLowerCase();
  for (const sig of HTML_SIGNATURES) {
    if (!head.startsWith(sig)) continue;
    const next = head.charCodeAt(sig.length);
    if (next === 0x20 || next === 0x3e) return "text/html; charset=utf-8";
  }
  if (head.startsWith("<?xml")) return "text/xml; charset=utf-8";
  for (let k = 0; k < Math.min(body.length, 512); k++) {
    const c = body[k];
    if (c <= 0x08 || c === 0x0b || (c >= 0x0e && c <= 0x1a) || (c >= 0x1c && c <= 0x1f)) {
      return "application/octet-stream";
    }
  }
  return "text/plain; charset=utf-8";
}

/**
 * The response the CRS regression tests' backend (albedo) gives a request: `POST /reflect`
 * answers as its JSON body specifies (`status`, `headers`, `body` or base64 `encodedBody`),
 * any other request gets 200 without a body.
 *
 * @param req The request (as the web server received it).
 * @returns The response.
 */
export function albedoResponse(req: RuleRequest): RuleResponse {
  const empty: RuleResponse = {
    status: 200,
    protocol: "HTTP/1.1",
    headers: [["Content-Length", "0"]],
    body: new Uint8Array(),
  };
  const path = req.target.replace(/[?#].*$/, "");
  if (req.method !== "POST" || path !== "/reflect" || !req.body) return empty;
  let spec: { status?: unknown; headers?: unknown; body?: unknown; encodedBody?: unknown };
  try {
    spec = JSON.parse(new TextDecoder().decode(req.body));
  } catch {
    return { ...empty, status: 400 };
  }
  if (spec === null || typeof spec !== "object") return { ...empty, status: 400 };
  let body = new Uint8Array();
  if (typeof spec.encodedBody === "string" && spec.encodedBody !== "") {
    try {
      body = Uint8Array.from(atob(spec.encodedBody), (c) => c.charCodeAt(0));
    } catch {
      return { ...empty, status: 400 };
    }
  } else if (typeof spec.body === "string") body = new TextEncoder().encode(spec.body);
  const headers: [string, string][] = [];
  if (spec.headers !== null && typeof spec.headers === "object") {
    for (const [k, v] of Object.entries(spec.headers as Record<string, unknown>)) {
      headers.push([k, String(v)]);
    }
  }
  if (body.length > 0 && !headers.some(([n]) => n.toLowerCase() === "content-type")) {
    headers.push(["Content-Type", sniffContentType(body)]);
  }
  headers.push(["Content-Length", String(body.length)]);
  const status = typeof spec.status === "number" && spec.status >= 100 && spec.status <= 599
    ? spec.status
    : 200;
  return { status, protocol: "HTTP/1.1", headers, body };
}

/** What running one stage produced. */
export interface StageOutcome {
  /** Ids of every rule that fired. */
  fired: Set<number>;
  /** Log lines (`[id "…"] [msg "…"]`) of the rules that log. */
  log: string;
  /** Response status (403 when blocked, else 200) when known. */
  status?: number;
}

/** Runs one stage (in-process or through a proxy); undefined = request cannot be sent. */
export type StageRunner = (input: FtwInput) => Promise<StageOutcome | undefined>;

/** Verdict of one test. */
export interface TestResult {
  test: FtwTest;
  /** "pass", "fail" or "skip" (server-level behaviour such as a 400 from the web server). */
  result: "pass" | "fail" | "skip";
  /** Whether the test checks that rules do NOT fire. */
  negative: boolean;
  reason?: string;
}

/**
 * Runs and judges one test: `expect_ids` pass when every listed rule fired, `no_expect_ids`
 * when none did, `match_regex`/`no_match_regex` against the rule log, and a status-only check
 * (go-ftw's check of a web-server answer such as 400) is skipped unless it is a 403 decision.
 *
 * @param test The test.
 * @param run The stage runner.
 * @returns The verdict.
 */
export async function runFtwTest(test: FtwTest, run: StageRunner): Promise<TestResult> {
  let negative = false;
  for (const st of test.stages) {
    const log = st.output.log ?? {};
    const hasLog = log.expect_ids || log.no_expect_ids || log.match_regex || log.no_match_regex;
    if (log.no_expect_ids && !log.expect_ids) negative = true;
    if (!hasLog) {
      const want = st.output.status;
      const only403 = want !== undefined && [want].flat().every((s) => s === 403);
      if (!only403) {
        return { test, result: "skip", negative, reason: "checks web-server status only" };
      }
    }
    const out = await run(st.input);
    if (!out) return { test, result: "skip", negative, reason: "request not representable" };
    for (const id of log.expect_ids ?? []) {
      if (!out.fired.has(Number(id))) {
        return { test, result: "fail", negative, reason: `rule ${id} did not fire` };
      }
    }
    for (const id of log.no_expect_ids ?? []) {
      if (out.fired.has(Number(id))) {
        return { test, result: "fail", negative, reason: `rule ${id} fired` };
      }
    }
    if (log.match_regex && !new RegExp(log.match_regex).test(out.log)) {
      return { test, result: "fail", negative, reason: `log does not match ${log.match_regex}` };
    }
    if (log.no_match_regex && new RegExp(log.no_match_regex).test(out.log)) {
      return { test, result: "fail", negative, reason: `log matches ${log.no_match_regex}` };
    }
    if (!hasLog && out.status !== undefined && out.status !== 403) {
      return { test, result: "fail", negative, reason: `status ${out.status}, want 403` };
    }
  }
  return { test, result: "pass", negative };
}

/** Pass counts. */
export interface Tally {
  tests: number;
  passed: number;
}

/** Summary of a run. */
export interface FtwSummary {
  tests: number;
  passed: number;
  skipped: number;
  /** Per rule file: totals and per paranoia level. */
  files: Record<string, Tally & { paranoia: Record<string, Tally> }>;
  /** Per paranoia level across files. */
  paranoia: Record<string, Tally>;
  /** Tests that only check that rules do not fire (false-positive checks). */
  negative: Tally;
  /** Ids of failing tests with the reason. */
  failed: { id: string; reason: string }[];
}

/**
 * Summarises verdicts per rule file and paranoia level.
 *
 * @param results The verdicts.
 * @param paranoiaOf Paranoia level of a rule id (1 when unknown).
 * @returns The summary.
 */
export function summarise(results: TestResult[], paranoiaOf: (id: number) => number): FtwSummary {
  const s: FtwSummary = {
    tests: 0,
    passed: 0,
    skipped: 0,
    files: {},
    paranoia: {},
    negative: { tests: 0, passed: 0 },
    failed: [],
  };
  for (const r of results) {
    if (r.result === "skip") {
      s.skipped++;
      continue;
    }
    const ok = r.result === "pass" ? 1 : 0;
    const pl = String(paranoiaOf(r.test.ruleId));
    s.tests++;
    s.passed += ok;
    const f = (s.files[r.test.file] ??= { tests: 0, passed: 0, paranoia: {} });
    f.tests++;
    f.passed += ok;
    const fp = (f.paranoia[pl] ??= { tests: 0, passed: 0 });
    fp.tests++;
    fp.passed += ok;
    const p = (s.paranoia[pl] ??= { tests: 0, passed: 0 });
    p.tests++;
    p.passed += ok;
    if (r.negative) {
      s.negative.tests++;
      s.negative.passed += ok;
    }
    if (!ok) s.failed.push({ id: r.test.id, reason: r.reason ?? "" });
  }
  return s;
}

/**
 * A stage runner that evaluates requests in-process on an engine (monitor mode recommended):
 * the request phases, then the response phases on the answer of the regression tests' backend
 * ({@linkcode albedoResponse}) and the logging phase, as one transaction.
 *
 * @param engine The engine.
 * @returns The runner.
 */
export function engineRunner(engine: CrsEngine): StageRunner {
  return (input) => {
    const req = stageRequest(input);
    if (!req) return Promise.resolve(undefined);
    const request = engine.inspect(req);
    const response = engine.inspectResponse(request, albedoResponse(req), true);
    const matched = [...request.matched, ...response.matched];
    const fired = new Set(matched.map((m) => m.rule.id).filter((id) => id !== 0));
    const log = matched.filter((m) => m.log !== "").map((m) => m.log).join("\n");
    const interrupted = request.interrupted ?? response.interrupted;
    return Promise.resolve({ fired, log, status: interrupted ? interrupted.status : 200 });
  };
}

/**
 * Runs a suite: tests of rules above `paranoia` are skipped, the rest run in order.
 *
 * @param tests The tests.
 * @param run The stage runner.
 * @param paranoiaOf Paranoia level of a rule id.
 * @param paranoia The engine's paranoia level.
 * @returns The summary.
 */
export async function runFtwSuite(
  tests: FtwTest[],
  run: StageRunner,
  paranoiaOf: (id: number) => number | undefined,
  paranoia: number,
): Promise<FtwSummary> {
  const results: TestResult[] = [];
  for (const t of tests) {
    const pl = paranoiaOf(t.ruleId) ?? 1;
    if (pl > paranoia) {
      results.push({ test: t, result: "skip", negative: false, reason: `paranoia ${pl}` });
      continue;
    }
    results.push(await runFtwTest(t, run));
  }
  return summarise(results, (id) => paranoiaOf(id) ?? 1);
}
