import assert from "node:assert/strict";
import { header, rawRequest, serveBackend, startProxy } from "./_testing.ts";
import type { RuleEngine, RuleRequest } from "./rule_engine.ts";
import type { Span } from "./trace.ts";
import type { Finding } from "./findings.ts";

const SECRET_COOKIE = "sess-9f8e7d6c5b4a";
const SECRET_BEARER = "eyJhbGciOiJIUzI1NiJ9.secret-token-value";
const SECRET_PARAM = "tok_live_1234567890";

Deno.test("baseline rules block SQL injection; the finding redacts secrets", async () => {
  const be = serveBackend();
  const px = startProxy(be.url, {});
  try {
    const [res] = await rawRequest(
      px.port,
      `GET /search?q=1'%20or%20'1'='1&token=${SECRET_PARAM} HTTP/1.1\r\nHost: shop\r\n` +
        `Cookie: session=${SECRET_COOKIE}; theme=dark\r\nAuthorization: Bearer ${SECRET_BEARER}\r\n` +
        `X-Api-Key: ${SECRET_PARAM}-k\r\nUser-Agent: test\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(res.status, 403);
    assert.equal(be.seen.length, 0, "blocked before the backend");
    const [f] = px.proxy.findings.query({ category: "sqli" });
    assert.ok(f, "an sqli finding");
    assert.equal(f.ruleId, "baseline-sqli");
    assert.equal(f.action, "blocked");
    assert.equal(f.severity, "critical");
    assert.equal(f.status, 403);
    assert.match(f.id, /^f_[0-9a-f]{16}$/);
    assert.match(f.traceId, /^[0-9a-f]{32}$/);
    assert.ok(res.text.includes(f.traceId), "the block page names the trace id");
    const all = JSON.stringify(f);
    for (const secret of [SECRET_COOKIE, SECRET_BEARER, SECRET_PARAM]) {
      assert.ok(!all.includes(secret), `finding leaks ${secret}: ${all}`);
    }
    const h = Object.fromEntries(f.request.headers.map(([k, v]) => [k.toLowerCase(), v]));
    assert.equal(h["cookie"], "session=[REDACTED]; theme=[REDACTED]");
    assert.equal(h["authorization"], "Bearer [REDACTED]");
    assert.equal(h["x-api-key"], "[REDACTED]");
    assert.equal(h["user-agent"], "test");
    assert.match(f.request.target, /token=\[REDACTED\]/);
    assert.match(f.request.target, /^\/search\?q=/);
    // The span links to the finding.
    const [span] = px.proxy.traces.query({ traceId: f.traceId });
    assert.equal(span.decision, "blocked");
    assert.deepEqual(span.findingIds, [f.id]);
    assert.equal(span.route, "/search");
  } finally {
    await px.close();
    await be.close();
  }
});

Deno.test("baseline rules: traversal, scanner and Log4Shell blocked; ordinary requests pass", async () => {
  const be = serveBackend();
  const px = startProxy(be.url, {});
  try {
    const cases: [string, number, string | undefined][] = [
      ["GET /files?name=..%2F..%2Fetc%2Fpasswd HTTP/1.1\r\nHost: h\r\n", 403, "lfi"],
      ["GET /.env HTTP/1.1\r\nHost: h\r\n", 403, "scanner"],
      ["GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: sqlmap/1.7\r\n", 403, "scanner"],
      ["GET / HTTP/1.1\r\nHost: h\r\nX-Api-Version: ${jndi:ldap://x/a}\r\n", 403, "java"],
      ["GET /p?q=%3Cscript%3Ealert(1)%3C/script%3E HTTP/1.1\r\nHost: h\r\n", 403, "xss"],
      ["GET /p?cmd=x;cat%20/etc/hosts HTTP/1.1\r\nHost: h\r\n", 403, undefined],
      ["GET /products?id=5&sort=price&order=desc HTTP/1.1\r\nHost: h\r\n", 200, undefined],
      ["GET /blog/o'brien-and-sons?page=2 HTTP/1.1\r\nHost: h\r\n", 200, undefined],
      ["GET /search?q=union+station+select+seats HTTP/1.1\r\nHost: h\r\n", 403, "sqli"],
    ];
    for (const [req, status, category] of cases) {
      const [res] = await rawRequest(px.port, req + "Connection: close\r\n\r\n");
      assert.equal(res.status, status, req);
      if (category) assert.equal(px.proxy.findings.query({ limit: 1 })[0].category, category, req);
    }
  } finally {
    await px.close();
    await be.close();
  }
});

Deno.test("monitor mode records rule matches but forwards the request", async () => {
  const be = serveBackend();
  const px = startProxy(be.url, { mode: "monitor" });
  try {
    const [res] = await rawRequest(
      px.port,
      "GET /?q=1%20union%20select%20password%20from%20users HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    );
    assert.equal(res.status, 200);
    assert.equal(be.seen.length, 1);
    const [f] = px.proxy.findings.query();
    assert.equal(f.action, "detected");
    assert.equal(f.status, undefined);
    assert.equal(px.proxy.traces.query()[0].decision, "detected");
  } finally {
    await px.close();
    await be.close();
  }
});

Deno.test("debugHeaders lists matched rule ids of every engine on every response", async () => {
  const be = serveBackend();
  const tagger: RuleEngine = {
    name: "tagger",
    inspectsBody: false,
    evaluate: (req) =>
      req.target.includes("tag")
        ? {
          action: "allow",
          matches: [{
            ruleId: "900001",
            category: "generic",
            severity: "notice",
            message: "tagged",
          }],
        }
        : { action: "allow", matches: [] },
  };
  const px = startProxy(be.url, { debugHeaders: true }, { ruleEngines: [tagger] });
  const off = startProxy(be.url, {}, { ruleEngines: [tagger] });
  try {
    const [clean] = await rawRequest(
      px.port,
      "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    );
    assert.equal(header(clean, "x-infraveil-rules"), "");
    const [tagged] = await rawRequest(
      px.port,
      "GET /tag HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    );
    assert.equal(tagged.status, 200);
    assert.equal(header(tagged, "x-infraveil-rules"), "900001");
    const [blocked] = await rawRequest(
      px.port,
      "GET /tag/../../etc/passwd HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    );
    assert.equal(blocked.status, 403);
    assert.equal(
      header(blocked, "x-infraveil-rules"),
      "baseline-lfi-traversal,baseline-lfi-sensitive-file,900001",
    );
    const [quiet] = await rawRequest(
      off.port,
      "GET /tag HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    );
    assert.equal(header(quiet, "x-infraveil-rules"), undefined, "off by default");
  } finally {
    await px.close();
    await off.close();
    await be.close();
  }
});

Deno.test("ruleEngines: custom status, body inspection, and a throwing engine fails open", async () => {
  const be = serveBackend();
  const bodies: string[] = [];
  const bodyEngine: RuleEngine = {
    name: "body",
    inspectsBody: true,
    maxBodyBytes: 8,
    evaluate: async (req: RuleRequest) => {
      await Promise.resolve();
      const text = new TextDecoder().decode(req.body ?? new Uint8Array());
      bodies.push(text);
      return text.includes("evil")
        ? {
          action: "block",
          status: 406,
          score: 7,
          matches: [{
            ruleId: "body-1",
            category: "rce",
            severity: "critical",
            message: "evil body",
            matched: `ARGS:payload ${text}`,
          }],
        }
        : { action: "allow", matches: [] };
    },
  };
  const broken: RuleEngine = {
    name: "broken",
    inspectsBody: false,
    evaluate: () => {
      throw new Error("engine bug");
    },
  };
  const px = startProxy(be.url, { rules: { baseline: false } }, {
    ruleEngines: [broken, bodyEngine],
  });
  try {
    const [blocked] = await rawRequest(
      px.port,
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\nConnection: close\r\n\r\nevil payload",
    );
    assert.equal(blocked.status, 406);
    assert.equal(bodies[0], "evil pay", "body truncated to the engine's maxBodyBytes");
    const [f] = px.proxy.findings.query();
    assert.equal(f.engine, "body");
    assert.equal(f.score, 7);
    assert.equal(f.status, 406);
    const [ok] = await rawRequest(
      px.port,
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 20\r\nConnection: close\r\n\r\nfine payload, longer",
    );
    assert.equal(ok.status, 200);
    assert.equal(JSON.parse(ok.text).body, 20, "inspected body still reaches the backend whole");
    assert.equal(px.proxy.stats().ruleErrors, 2);
  } finally {
    await px.close();
    await be.close();
  }
});

Deno.test("traceparent is propagated with a new span id, or created", async () => {
  const be = serveBackend();
  const px = startProxy(be.url, { rules: { baseline: false } });
  try {
    const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    await rawRequest(
      px.port,
      `GET /t?x=secret HTTP/1.1\r\nHost: h\r\ntraceparent: ${incoming}\r\ntracestate: a=b\r\nConnection: close\r\n\r\n`,
    );
    const sent = be.seen[0].headers["traceparent"];
    const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(sent);
    assert.ok(m, sent);
    assert.equal(m[1], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert.notEqual(m[2], "00f067aa0ba902b7");
    assert.equal(be.seen[0].headers["tracestate"], "a=b");
    const [span] = px.proxy.traces.query();
    assert.equal(span.traceId, m[1]);
    assert.equal(span.spanId, m[2]);
    assert.equal(span.parentSpanId, "00f067aa0ba902b7");
    assert.equal(span.route, "/t", "no query string in spans");
    assert.equal(span.method, "GET");
    assert.equal(span.status, 200);
    assert.ok(span.durationMs >= 0 && span.upstreamMs! >= 0 && span.upstreamMs! <= span.durationMs);
    assert.ok(span.responseBytes > 0);
    // Created when absent.
    await rawRequest(px.port, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    const created = be.seen[1].headers["traceparent"];
    assert.match(created, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    assert.equal(px.proxy.traces.query()[0].parentSpanId, undefined);
    // Invalid incoming values start a new trace.
    await rawRequest(
      px.port,
      "GET / HTTP/1.1\r\nHost: h\r\ntraceparent: 00-00000000000000000000000000000000-00f067aa0ba902b7-01\r\nConnection: close\r\n\r\n",
    );
    assert.doesNotMatch(be.seen[2].headers["traceparent"], /^00-0{32}/);
  } finally {
    await px.close();
    await be.close();
  }
});

Deno.test("sampling: rate 0 records no spans, a sampled parent is respected, ids are injected", async () => {
  const be = serveBackend();
  let counter = 0;
  const px = startProxy(be.url, { rules: { baseline: false }, tracing: { sampleRate: 0 } }, {
    random: (buf) => {
      for (let i = 0; i < buf.length; i++) buf[i] = (counter++ * 7 + 1) & 0xff;
    },
  });
  try {
    await rawRequest(px.port, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    assert.equal(px.proxy.traces.size, 0);
    assert.match(be.seen[0].headers["traceparent"], /-00$/, "unsampled flag propagated");
    await rawRequest(
      px.port,
      "GET / HTTP/1.1\r\nHost: h\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\nConnection: close\r\n\r\n",
    );
    assert.equal(px.proxy.traces.size, 1);
    // Ids come from the injected source (consecutive bytes step by 7).
    const id = px.proxy.traces.query()[0].spanId;
    const bytes = id.match(/../g)!.map((h) => parseInt(h, 16));
    for (let i = 1; i < bytes.length; i++) {
      assert.equal((bytes[i] - bytes[i - 1] + 256) % 256, 7, id);
    }
  } finally {
    await px.close();
    await be.close();
  }
});

Deno.test("spans are exported as OTLP/JSON to a collector; findings to their sink", async () => {
  const be = serveBackend();
  const received: unknown[] = [];
  const collector = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    received.push(await req.json());
    return new Response("{}");
  });
  const sunk: Finding[] = [];
  const px = startProxy(be.url, {
    tracing: {
      otlp: { url: `http://127.0.0.1:${collector.addr.port}/v1/traces`, flushIntervalMs: 20 },
    },
  }, { findingSinks: [{ export: (fs) => (sunk.push(...fs), Promise.resolve()) }] });
  try {
    await rawRequest(px.port, "GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    await rawRequest(px.port, "GET /.git/config HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    for (let i = 0; i < 100 && (received.length === 0 || sunk.length === 0); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    // deno-lint-ignore no-explicit-any
    const body = received[0] as any;
    const spans = body.resourceSpans[0].scopeSpans[0].spans;
    assert.equal(body.resourceSpans[0].resource.attributes[0].value.stringValue, "infraveil-proxy");
    assert.ok(spans.length >= 1);
    const s = spans[0];
    assert.match(s.traceId, /^[0-9a-f]{32}$/);
    assert.equal(s.kind, 2);
    assert.match(s.startTimeUnixNano, /^[0-9]{19}$/);
    const attrs = Object.fromEntries(
      // deno-lint-ignore no-explicit-any
      s.attributes.map((a: any) => [a.key, Object.values(a.value)[0]]),
    );
    assert.equal(attrs["http.request.method"], "GET");
    assert.equal(attrs["url.path"], "/x");
    assert.equal(attrs["http.response.status_code"], "200");
    assert.equal(sunk[0].ruleId, "baseline-scanner-dotfile");
  } finally {
    await px.close();
    await collector.shutdown();
    await be.close();
  }
});

Deno.test("a stuck exporter never slows the request path: queue bounded, drops counted", async () => {
  const be = serveBackend((_req) => new Response("ok"));
  const never = new Promise<void>(() => {});
  const sink = { export: (_s: Span[]) => never };
  const px = startProxy(be.url, {
    rules: { baseline: false },
  }, { traceSinks: [sink] });
  try {
    const req = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    const t0 = Date.now();
    for (let i = 0; i < 20; i++) {
      await rawRequest(
        px.port,
        req.repeat(499) + req.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n"),
      );
    }
    const elapsed = Date.now() - t0;
    const [ex] = px.proxy.stats().traceExport;
    assert.equal(ex.queued + ex.dropped, 10_000);
    assert.ok(ex.dropped > 0, "full queue drops");
    assert.ok(ex.pending <= 8192, "queue bounded");
    assert.ok(elapsed < 20_000);
  } finally {
    // close() gives up on the stuck sink after its flush timeout.
    await px.close();
    await be.close();
  }
});
