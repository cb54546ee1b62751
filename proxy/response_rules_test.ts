import assert from "node:assert/strict";
import {
  header,
  parseResponses,
  rawBackend,
  rawRequest,
  readAll,
  serveBackend,
  startProxy,
} from "./_testing.ts";
import { inlineEngine } from "./crs/_testutil.ts";
import type { RuleEngine, RuleVerdict } from "./rule_engine.ts";

const LEAK = "ERROR: ORA-00933: SQL command not properly ended";
const RULES = `
SecResponseBodyLimit 4096
SecRule RESPONSE_BODY "@contains ORA-00933" "id:5,phase:4,deny,status:403,log,msg:'SQL error leaked'"
SecRule RESPONSE_HEADERS:X-Debug "@streq on" "id:6,phase:3,deny,status:403,log,msg:'debug header'"
`;

function chunks(parts: string[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({
    async pull(c) {
      const p = parts.shift();
      if (p === undefined) return c.close();
      await new Promise((r) => setTimeout(r, 5));
      c.enqueue(enc.encode(p));
    },
  });
}

const BIG = "a".repeat(6000);

function backend() {
  return serveBackend((req) => {
    const path = new URL(req.url).pathname;
    const html = { "content-type": "text/html; charset=utf-8" };
    switch (path) {
      case "/leak":
        return new Response(`<p>${LEAK}</p>`, { headers: html });
      case "/binary":
        return new Response(LEAK, { headers: { "content-type": "application/octet-stream" } });
      case "/late":
        return new Response(BIG + LEAK, { headers: { "content-type": "text/plain" } });
      case "/chunked-leak":
        return new Response(chunks(["<p>one</p>", `<p>${LEAK}</p>`, "<p>three</p>"]), {
          headers: html,
        });
      case "/chunked":
        return new Response(chunks(["<p>one</p>", "<p>two</p>", "<p>three</p>"]), {
          headers: html,
        });
      case "/debug":
        return new Response("fine", { headers: { ...html, "x-debug": "on" } });
      default:
        return new Response("<p>hello</p>", { headers: html });
    }
  });
}

Deno.test("proxy with a response-inspecting engine blocks leaking responses before any byte leaves", async () => {
  const be = backend();
  const engine = inlineEngine(RULES, { mode: "block" });
  const px = startProxy(be.url, { rules: { baseline: false }, debugHeaders: true }, {
    ruleEngines: [engine],
  });
  try {
    const get = async (path: string, method = "GET") =>
      (await rawRequest(
        px.port,
        `${method} ${path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n`,
        { headRequest: method === "HEAD" },
      ))[0];

    const leak = await get("/leak");
    assert.equal(leak.status, 403);
    assert.ok(!leak.text.includes("ORA-"), "the leaked text must not reach the client");
    assert.equal(header(leak, "x-infraveil-rules"), "5");
    const chunkedLeak = await get("/chunked-leak");
    assert.equal(chunkedLeak.status, 403);
    assert.ok(!chunkedLeak.text.includes("one"), "no part of a blocked body is sent");
    assert.equal((await get("/debug")).status, 403); // a header rule (phase 3)

    // Media types the engine does not read, and bytes past its limit, pass uninspected and whole.
    const binary = await get("/binary");
    assert.equal(binary.status, 200);
    assert.equal(binary.text, LEAK);
    const late = await get("/late");
    assert.equal(late.status, 200);
    assert.equal(late.text, BIG + LEAK);
    const chunked = await get("/chunked");
    assert.equal(chunked.status, 200);
    assert.equal(chunked.text, "<p>one</p><p>two</p><p>three</p>");
    const ok = await get("/ok");
    assert.equal(ok.status, 200);
    assert.equal(ok.text, "<p>hello</p>");
    // HEAD: the head is inspected, there is no body to read.
    assert.equal((await get("/leak", "HEAD")).status, 200);

    const findings = px.proxy.findings.query().filter((f) => f.ruleId === "5");
    assert.equal(findings.length, 2);
    assert.ok(findings.every((f) => f.action === "blocked" && f.status === 403));
    assert.equal(findings[0].message, "SQL error leaked");
  } finally {
    await px.close();
    await be.close();
  }
});

Deno.test("proxy keeps the client connection after a blocked response and serves the next request", async () => {
  const be = backend();
  const px = startProxy(be.url, { rules: { baseline: false } }, {
    ruleEngines: [inlineEngine(RULES, { mode: "block" })],
  });
  try {
    const res = await rawRequest(
      px.port,
      "GET /leak HTTP/1.1\r\nHost: h\r\n\r\nGET /ok HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    );
    assert.deepEqual(res.map((r) => r.status), [403, 200]);
    assert.equal(res[1].text, "<p>hello</p>");
  } finally {
    await px.close();
    await be.close();
  }
});

Deno.test("proxy in monitor mode passes a leaking response on and records the finding", async () => {
  const be = backend();
  const px = startProxy(be.url, { rules: { baseline: false }, mode: "monitor" }, {
    ruleEngines: [inlineEngine(RULES, { mode: "monitor" })],
  });
  try {
    const [leak] = await rawRequest(
      px.port,
      "GET /chunked-leak HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    );
    assert.equal(leak.status, 200);
    assert.equal(leak.text, `<p>one</p><p>${LEAK}</p><p>three</p>`);
    const [f] = px.proxy.findings.query().filter((x) => x.ruleId === "5");
    assert.equal(f.action, "detected");
  } finally {
    await px.close();
    await be.close();
  }
});

Deno.test("proxy blocking a response while the request body still streams ends the connection without waiting for it", async () => {
  const enc = new TextEncoder();
  // The backend answers at once, before the request body has arrived.
  const be = rawBackend(async (_head, conn) => {
    const body = `<p>${LEAK}</p>`;
    await conn.write(
      enc.encode(
        `HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      ),
    );
  });
  const px = startProxy(be.url, { rules: { baseline: false } }, {
    ruleEngines: [inlineEngine(RULES, { mode: "block", maxBodyBytes: 1024 })],
  });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: px.port });
  try {
    // 1 KiB the engine reads, then a trickle: the rest of the declared 64 KiB never comes.
    await conn.write(
      enc.encode(
        `POST /upload HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\nContent-Length: 65536\r\n\r\n${
          "x".repeat(1024 + 100)
        }`,
      ),
    );
    // Whether the proxy ends the connection itself, or only this test's 5 s timer does.
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      conn.close();
    }, 5_000);
    const [res] = parseResponses(await readAll(conn, 60_000));
    clearTimeout(timer);
    assert.equal(timedOut, false, "the proxy kept the connection open waiting for the body");
    assert.equal(res.status, 403);
    assert.equal(header(res, "connection"), "close");
    assert.ok(!res.text.includes("ORA-"));
    assert.equal(px.proxy.stats().blocked, 1);
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
    await px.close();
    await be.close();
  }
});

Deno.test("proxy awaits asynchronous response checks and fails open on a broken one", async () => {
  const be = backend();
  const match = { ruleId: "x-1", category: "disclosure", severity: "error" as const, message: "m" };
  const engine = (response: RuleVerdict["response"], verdict?: unknown): RuleEngine => ({
    name: "custom",
    inspectsBody: false,
    responseBody: { mediaTypes: ["text/html"], maxBytes: 1024 },
    evaluate: () => (verdict ?? { action: "allow", matches: [], response }) as RuleVerdict,
  });
  const cases: [string, RuleEngine, number, number][] = [
    [
      "async block",
      engine((res) =>
        Promise.resolve({
          action: "block",
          status: 451,
          matches: new TextDecoder().decode(res.body).includes("hello") ? [match] : [],
        })
      ),
      451,
      0,
    ],
    ["no verdict", engine(() => undefined as unknown as RuleVerdict), 200, 1],
    ["throws", engine(() => Promise.reject(new Error("engine bug"))), 200, 1],
    ["request verdict without matches", engine(undefined, { action: "block" }), 200, 1],
  ];
  for (const [name, e, status, errors] of cases) {
    const px = startProxy(be.url, { rules: { baseline: false } }, {
      ruleEngines: [e],
      onError: () => {},
    });
    try {
      const [res] = await rawRequest(
        px.port,
        "GET /ok HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
      );
      assert.equal(res.status, status, name);
      if (status === 200) assert.equal(res.text, "<p>hello</p>", name);
      assert.equal(px.proxy.stats().ruleErrors, errors, name);
    } finally {
      await px.close();
    }
  }
  await be.close();
});
