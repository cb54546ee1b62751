/**
 * Per-request cost of CRS v4.28 evaluation (PL1, block mode), in process: the request that
 * `scripts/crs_wrk_bench.sh` sends with wrk, plus a form POST, a JSON API call and a search with
 * quotes. Needs ../shared/crs.
 *
 * `deno bench -A proxy/crs/eval_bench.ts`
 *
 * @module
 */
import type { RuleRequest, RuleResponse } from "../rule_engine.ts";
import { type CrsEngine, loadCrs } from "./crs.ts";
import { denoFiles } from "./_io.ts";

const root = new URL("../../../shared/crs/", import.meta.url).pathname;
let present = true;
try {
  Deno.statSync(`${root}rules`);
} catch {
  present = false;
  console.warn(`skipping CRS evaluation benches: ${root} not found`);
}

const BROWSER: [string, string][] = [
  ["User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"],
  ["Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"],
  ["Accept-Language", "en-US,en;q=0.9"],
  ["Cookie", "session=abc123; theme=dark"],
];
const enc = new TextEncoder();

/** The requests the benches evaluate, by name. */
export const BENCH_REQUESTS: Record<string, RuleRequest> = {
  // Exactly what wrk sends in scripts/crs_wrk_bench.sh (wrk puts Host first).
  wrk: {
    method: "GET",
    target: "/search?q=running+shoes+women%27s&page=2&sort=price_asc",
    protocol: "HTTP/1.1",
    headers: [["Host", "127.0.0.1:18201"], ...BROWSER],
    remoteAddr: "127.0.0.1",
  },
  form: {
    method: "POST",
    target: "/account/contact",
    protocol: "HTTP/1.1",
    headers: [
      ["Host", "shop.example.com"],
      ...BROWSER,
      ["Content-Type", "application/x-www-form-urlencoded"],
      ["Content-Length", "171"],
      ["Referer", "https://shop.example.com/account/contact"],
      ["Origin", "https://shop.example.com"],
    ],
    remoteAddr: "203.0.113.7",
    body: enc.encode(
      "name=Siobhan+O%27Brien&email=siobhan.obrien%40example.org&subject=Order+%2312345" +
        "&message=Hi%2C+my+parcel+arrived+damaged+-+could+you+send+a+replacement%3F+Thanks%21" +
        "&newsletter=on",
    ),
  },
  json: {
    method: "POST",
    target: "/api/v2/orders?include=items,customer",
    protocol: "HTTP/1.1",
    headers: [
      ["Host", "api.example.com"],
      ["User-Agent", "okhttp/4.12.0"],
      ["Accept", "application/json"],
      ["Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl"],
      ["Content-Type", "application/json; charset=utf-8"],
      ["Content-Length", "190"],
    ],
    remoteAddr: "198.51.100.23",
    body: enc.encode(JSON.stringify({
      customerId: 48213,
      currency: "EUR",
      items: [{ sku: "SHOE-RUN-42", qty: 1, price: 89.9 }, { sku: "SOCK-3PK", qty: 2, price: 9.5 }],
      shipping: { name: "Anna Müller", city: "Köln", street: "Hohe Straße 12", zip: "50667" },
      note: "Please leave at the door",
    })),
  },
  search: {
    method: "GET",
    target: "/search?q=%22exact+phrase%22+O%27Reilly+books+-kindle&lang=en&page=1",
    protocol: "HTTP/1.1",
    headers: [
      ["Host", "www.example.com"],
      ...BROWSER,
      ["Referer", "https://www.example.com/search?q=o%27reilly"],
      ["Accept-Encoding", "gzip, deflate, br"],
    ],
    remoteAddr: "192.0.2.44",
  },
};

let engine: CrsEngine | undefined;

/** CRS at PL1 in block mode, loaded on first use (benches that are filtered out load nothing). */
function crs(): CrsEngine {
  return engine ??= loadCrs({
    setupFile: `${root}crs-setup.conf.example`,
    rulesDir: `${root}rules`,
    paranoia: 1,
    mode: "block",
    files: denoFiles,
  });
}

for (const [name, req] of Object.entries(BENCH_REQUESTS)) {
  Deno.bench({
    name: `evaluate() PL1 block: ${name}`,
    group: "evaluate",
    baseline: name === "wrk",
    ignore: !present,
    fn() {
      const v = crs().evaluate(req);
      if (v.action !== "allow") throw new Error(`${name} was blocked`);
    },
  });
}

/** What the bench's nginx backend answers, and an HTML page of 100 KB. */
const RESPONSES: Record<string, RuleResponse> = {
  "3-byte text/plain": {
    status: 200,
    protocol: "HTTP/1.1",
    headers: [
      ["Server", "nginx/1.22.1"],
      ["Date", "Wed, 25 Nov 2026 03:53:10 GMT"],
      ["Content-Type", "text/plain"],
      ["Content-Length", "3"],
    ],
    body: enc.encode("ok\n"),
  },
  "100 KB text/html": {
    status: 200,
    protocol: "HTTP/1.1",
    headers: [["Content-Type", "text/html; charset=utf-8"], ["Content-Length", "102400"]],
    body: enc.encode(
      "<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p>\n".repeat(1600),
    ),
  },
};

for (const [name, res] of Object.entries(RESPONSES)) {
  Deno.bench({
    name: `response phases PL1 block, after the wrk request: ${name}`,
    group: "response",
    ignore: !present,
    fn(b) {
      const v = crs().evaluate(BENCH_REQUESTS.wrk);
      b.start();
      const out = v.response!(res);
      b.end();
      if (out.action !== "allow") throw new Error(`${name} was blocked`);
    },
  });
}
