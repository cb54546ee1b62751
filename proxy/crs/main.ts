/**
 * `crs` command: scores the CRS engine on go-ftw regression tests, in-process or through a
 * running proxy (`--via`). The only module of the CRS engine that reads arguments and files.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { denoFiles } from "./_io.ts";
import { CrsError } from "./_errors.ts";
import { loadCrs } from "./crs.ts";
import { generateBenignCorpus } from "./benign_corpus.ts";
import {
  albedoResponse,
  engineRunner,
  type FtwInput,
  type FtwSummary,
  type FtwTest,
  parseFtwFile,
  runFtwSuite,
  stageRequest,
  type StageRunner,
} from "./ftw.ts";

const USAGE = `Usage: crs --tests DIR [options]
       crs --benign N --rules DIR --setup FILE [--paranoia N] [--format F]
       crs --albedo HOST:PORT

Runs go-ftw regression tests (CRS tests/regression/tests layout) against the CRS engine, or
runs N generated benign requests in block mode and reports how many were blocked.

Options:
  --tests DIR         test directory (one sub-directory per rule file, *.yaml inside)
  --rules DIR         CRS rules directory (default: DIR/../rules)
  --setup FILE        setup file (default: DIR/../crs-setup.conf.example)
  --paranoia N        paranoia level 1-4 (default 4, as the CRS test suite runs)
  --format F          text (default) or json
  --via URL           send each request through a running proxy (e.g. http://127.0.0.1:8080);
                      fired rules are read from its x-infraveil-rules response header
  --split S           all (default), even or odd: only test files whose rule id is even/odd
  --no-libinjection   disable @detectSQLi/@detectXSS (to measure what they contribute)
  --benign N          false-positive run on N generated benign requests (seed --seed, default 1)
  --albedo HOST:PORT  serve the regression tests' backend (go-ftw's albedo: POST /reflect answers
                      as its JSON asks, anything else 200 without a body) until interrupted; put
                      the proxy under test in front of it to score the response rules with --via
  --help              this text

Exit codes: 0 all run tests passed, 1 some failed, 2 usage or input error.`;

/** Settings of rule 900005 that the CRS regression-test README prescribes. */
export const CRS_TEST_TX: Record<string, string> = {
  crs_validate_utf8_encoding: "1",
  arg_name_length: "100",
  arg_length: "400",
  total_arg_length: "64000",
  max_num_args: "255",
  max_file_size: "64100",
  combined_file_sizes: "65535",
};

/**
 * Loads every go-ftw file under `dir` (one sub-directory per rule file).
 *
 * @param dir The tests directory.
 * @param split "all", or "even"/"odd" to keep only test files whose rule id has that parity.
 * @returns The tests.
 */
export function loadTests(dir: string, split = "all"): FtwTest[] {
  const tests: FtwTest[] = [];
  const subdirs = [...Deno.readDirSync(dir)]
    .filter((e) => e.isDirectory || (e.isSymlink && Deno.statSync(`${dir}/${e.name}`).isDirectory))
    .map((e) => e.name)
    .sort();
  for (const sub of subdirs) {
    const files = [...Deno.readDirSync(`${dir}/${sub}`)]
      .filter((e) => e.isFile && /\.ya?ml$/.test(e.name))
      .map((e) => e.name)
      .sort();
    for (const f of files) {
      const id = Number(/(\d+)/.exec(f)?.[1] ?? 0);
      if (split === "even" && id % 2 !== 0) continue;
      if (split === "odd" && id % 2 !== 1) continue;
      const path = `${dir}/${sub}/${f}`;
      tests.push(...parseFtwFile(Deno.readTextFileSync(path), sub, path));
    }
  }
  return tests;
}

function rawRequest(input: FtwInput, host: string): Uint8Array | undefined {
  if (input.encoded_request) {
    const s = atob(input.encoded_request);
    return Uint8Array.from(s, (c) => c.charCodeAt(0));
  }
  const req = stageRequest(input);
  if (!req) return undefined;
  const headers = [...req.headers];
  if (!headers.some(([n]) => n.toLowerCase() === "host")) headers.unshift(["Host", host]);
  let head = `${req.method} ${req.target} ${req.protocol}\r\n`;
  for (const [n, v] of headers) head += `${n}: ${v}\r\n`;
  head += "\r\n";
  const h = Uint8Array.from(head, (c) => c.charCodeAt(0) & 0xff);
  const body = req.body ?? new Uint8Array();
  const out = new Uint8Array(h.length + body.length);
  out.set(h);
  out.set(body, h.length);
  return out;
}

/**
 * Serves {@linkcode albedoResponse} over HTTP: the backend the response tests expect.
 *
 * @param hostname Address to listen on (loopback in tests).
 * @param port Port (0: any free one).
 * @returns The port and a function that stops the server.
 */
export function serveAlbedo(
  hostname: string,
  port: number,
): { port: number; finished: Promise<void>; close: () => Promise<void> } {
  const server = Deno.serve({ hostname, port, onListen() {} }, async (request) => {
    const url = new URL(request.url);
    const headers: [string, string][] = [];
    request.headers.forEach((v, k) => headers.push([k, v]));
    const res = albedoResponse({
      method: request.method,
      target: url.pathname + url.search,
      protocol: "HTTP/1.1",
      headers,
      remoteAddr: "",
      body: request.body ? new Uint8Array(await request.arrayBuffer()) : undefined,
    });
    const out = new Headers();
    for (const [k, v] of res.headers) if (k.toLowerCase() !== "content-length") out.append(k, v);
    const status = res.status < 200 ? 200 : res.status; // albedo leaves 1xx undefined
    const empty = status === 204 || status === 205 || status === 304;
    const body = empty || res.body === undefined ? null : new Uint8Array(res.body);
    return new Response(body, { status, headers: out });
  });
  return { port: server.addr.port, finished: server.finished, close: () => server.shutdown() };
}

/**
 * A stage runner that sends each request through a running proxy and reads the rules that fired
 * from its `x-infraveil-rules` response header (the proxy needs `debugHeaders: true`).
 *
 * @param url The proxy's address, e.g. `http://127.0.0.1:8080`.
 * @returns The runner.
 */
export function viaRunner(url: string): StageRunner {
  const u = new URL(url);
  const port = Number(u.port || 80);
  return async (input) => {
    const bytes = rawRequest(input, u.host);
    if (!bytes) return undefined;
    const conn = await Deno.connect({ hostname: u.hostname, port });
    try {
      await conn.write(bytes);
      const chunks: Uint8Array[] = [];
      const buf = new Uint8Array(65536);
      let total = 0;
      while (total < 1 << 20) {
        const n = await conn.read(buf).catch(() => null);
        if (n === null) break;
        chunks.push(buf.slice(0, n));
        total += n;
        const text = new TextDecoder("latin1").decode(chunks[chunks.length - 1]);
        if (text.includes("\r\n\r\n") && chunks.length === 1 && /^HTTP\/\S+ \d{3}/.test(text)) {
          // headers are all we need
          break;
        }
      }
      const text = new TextDecoder("latin1").decode(
        chunks.reduce((a, c) => {
          const o = new Uint8Array(a.length + c.length);
          o.set(a);
          o.set(c, a.length);
          return o;
        }, new Uint8Array()),
      );
      const status = Number(/^HTTP\/\S+ (\d{3})/.exec(text)?.[1] ?? 0);
      const rules = /\r\nx-infraveil-rules:\s*([^\r\n]*)/i.exec(text)?.[1] ?? "";
      const fired = new Set(rules.split(/[\s,]+/).filter((x) => x !== "").map(Number));
      const log = [...fired].map((id) => `[id "${id}"]`).join("\n");
      return { fired, log, status };
    } finally {
      try {
        conn.close();
      } catch { /* already closed */ }
    }
  };
}

function pct(p: number, n: number): string {
  return n === 0 ? "   -  " : `${(100 * p / n).toFixed(1).padStart(5)}%`;
}

function textReport(s: FtwSummary): string {
  const pls = ["1", "2", "3", "4"];
  const lines: string[] = [];
  lines.push(
    `${"rule file".padEnd(46)} ${"all".padStart(14)} ${
      pls.map((p) => `PL${p}`.padStart(14)).join(" ")
    }`,
  );
  const cell = (t?: { tests: number; passed: number }): string =>
    t ? `${`${t.passed}/${t.tests}`.padStart(7)} ${pct(t.passed, t.tests)}` : "".padStart(14);
  for (const [f, t] of Object.entries(s.files)) {
    lines.push(`${f.padEnd(46)} ${cell(t)} ${pls.map((p) => cell(t.paranoia[p])).join(" ")}`);
  }
  lines.push(`${"TOTAL".padEnd(46)} ${cell(s)} ${pls.map((p) => cell(s.paranoia[p])).join(" ")}`);
  lines.push(
    `no_expect_ids tests: ${s.negative.passed}/${s.negative.tests} ${
      pct(s.negative.passed, s.negative.tests)
    }` +
      `   skipped (web-server status only / unsendable): ${s.skipped}`,
  );
  if (s.failed.length > 0) {
    lines.push(`failing: ${s.failed.map((f) => f.id).join(" ")}`);
  }
  return lines.join("\n");
}

function benignRun(values: {
  benign?: string;
  seed?: string;
  rules?: string;
  setup?: string;
  paranoia?: string;
  format?: string;
}): number {
  const n = Number(values.benign);
  const paranoia = values.paranoia === undefined ? 1 : Number(values.paranoia);
  if (!(n > 0) || !values.rules || !values.setup || ![1, 2, 3, 4].includes(paranoia)) {
    console.error(`crs: --benign N needs N > 0, --rules DIR and --setup FILE\n\n${USAGE}`);
    return 2;
  }
  let engine;
  try {
    engine = loadCrs({
      setupFile: values.setup,
      rulesDir: values.rules,
      paranoia,
      mode: "block",
      files: denoFiles,
    });
  } catch (e) {
    console.error(`crs: ${(e as Error).message}`);
    return 2;
  }
  const corpus = generateBenignCorpus(n, Number(values.seed ?? 1));
  const byKind: Record<string, { requests: number; blocked: number }> = {};
  const rules: Record<string, number> = {};
  const blockedSamples: string[] = [];
  let blocked = 0;
  const t0 = performance.now();
  for (const { kind, request } of corpus) {
    const v = engine.evaluate(request);
    const k = (byKind[kind] ??= { requests: 0, blocked: 0 });
    k.requests++;
    if (v.action === "block") {
      blocked++;
      k.blocked++;
      if (blockedSamples.length < 20) blockedSamples.push(`${request.method} ${request.target}`);
      for (const m of v.matches) rules[m.ruleId] = (rules[m.ruleId] ?? 0) + 1;
    }
  }
  const ms = performance.now() - t0;
  const report = {
    requests: n,
    blocked,
    rate: blocked / n,
    paranoia,
    byKind,
    rules,
    blockedSamples,
    requestsPerSecond: Math.round(n / ms * 1000),
  };
  if (values.format === "json") console.log(JSON.stringify(report, null, 2));
  else {
    console.log(
      `benign requests: ${n}, blocked: ${blocked} (${
        (100 * blocked / n).toFixed(3)
      }%) at PL${paranoia}, ${report.requestsPerSecond} req/s in-process`,
    );
    for (const [k, v] of Object.entries(byKind)) {
      console.log(`  ${k.padEnd(8)} ${v.blocked}/${v.requests}`);
    }
    if (blocked > 0) {
      console.log(
        `  rules: ${JSON.stringify(rules)}\n  e.g. ${blockedSamples.slice(0, 5).join("\n       ")}`,
      );
    }
  }
  return blocked / n <= 0.001 ? 0 : 1;
}

/**
 * CLI entry.
 *
 * @param args Command-line arguments.
 * @returns The exit code.
 */
export async function main(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      options: {
        tests: { type: "string" },
        rules: { type: "string" },
        setup: { type: "string" },
        paranoia: { type: "string" },
        format: { type: "string", default: "text" },
        via: { type: "string" },
        split: { type: "string", default: "all" },
        "no-libinjection": { type: "boolean", default: false },
        benign: { type: "string" },
        albedo: { type: "string" },
        seed: { type: "string", default: "1" },
        help: { type: "boolean", default: false },
      },
    }));
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.benign !== undefined) return benignRun(values);
  if (values.albedo !== undefined) {
    const m = /^(.+):(\d{1,5})$/.exec(values.albedo);
    if (!m || Number(m[2]) > 65535) {
      console.error(`crs: --albedo needs HOST:PORT, e.g. 127.0.0.1:8081\n\n${USAGE}`);
      return 2;
    }
    let server;
    try {
      server = serveAlbedo(m[1].replace(/^\[(.*)\]$/, "$1"), Number(m[2]));
    } catch (e) {
      console.error(`crs: cannot listen on ${values.albedo}: ${(e as Error).message}`);
      return 2;
    }
    console.log(`albedo-compatible backend on ${m[1]}:${server.port} (Ctrl-C stops it)`);
    await server.finished;
    return 0;
  }
  const paranoia = Number(values.paranoia ?? "4");
  if (
    !values.tests || ![1, 2, 3, 4].includes(paranoia) ||
    !["text", "json"].includes(values.format!) || !["all", "even", "odd"].includes(values.split!)
  ) {
    console.error(
      `crs: --tests DIR is required; --paranoia 1-4; --format text|json; --split all|even|odd\n\n${USAGE}`,
    );
    return 2;
  }
  const dir = values.tests.replace(/\/+$/, "");
  const rulesDir = values.rules ?? `${dir}/../rules`;
  const setupFile = values.setup ?? `${dir}/../crs-setup.conf.example`;
  let tests: FtwTest[];
  let engine;
  try {
    tests = loadTests(dir, values.split!);
    engine = loadCrs({
      setupFile,
      rulesDir,
      paranoia,
      mode: "monitor",
      tx: CRS_TEST_TX,
      libinjection: !values["no-libinjection"],
      files: denoFiles,
    });
  } catch (e) {
    if (e instanceof CrsError || e instanceof Deno.errors.NotFound) {
      console.error(`crs: ${(e as Error).message}`);
      return 2;
    }
    throw e;
  }
  const run = values.via ? viaRunner(values.via) : engineRunner(engine);
  const summary = await runFtwSuite(tests, run, (id) => engine.paranoiaOf(id), paranoia);
  if (values.format === "json") console.log(JSON.stringify(summary, null, 2));
  else console.log(textReport(summary));
  return summary.passed === summary.tests ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
