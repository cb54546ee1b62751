import assert from "node:assert/strict";
import { freePort } from "../tests/_harness.ts";
import {
  header,
  parseResponses,
  rawBackend,
  rawRequest,
  readAll,
  serveBackend,
  startProxy,
} from "./_testing.ts";

const enc = new TextEncoder();

Deno.test("proxy forwards a request, preserves Host and adds only forwarding headers", async () => {
  const be = serveBackend();
  const px = startProxy(be.url, { rules: { baseline: false } });
  try {
    const [res] = await rawRequest(
      px.port,
      "GET /a/b?x=1 HTTP/1.1\r\nHost: app.example:8443\r\nX-Custom: one\r\nConnection: close\r\n\r\n",
    );
    assert.equal(res.status, 200);
    const seen = be.seen[0];
    assert.equal(seen.headers["host"], "app.example:8443");
    assert.equal(new URL(seen.url).pathname + new URL(seen.url).search, "/a/b?x=1");
    assert.deepEqual(Object.keys(seen.headers).sort(), [
      "forwarded",
      "host",
      "traceparent",
      "x-custom",
      "x-forwarded-for",
      "x-forwarded-host",
      "x-forwarded-proto",
    ]);
    assert.equal(seen.headers["x-forwarded-for"], "127.0.0.1");
    assert.equal(seen.headers["x-forwarded-proto"], "http");
    assert.equal(seen.headers["x-forwarded-host"], "app.example:8443");
    assert.equal(seen.headers["forwarded"], 'for=127.0.0.1;host="app.example:8443";proto=http');
    assert.equal(header(res, "connection"), "close");
  } finally {
    await px.close();
    await be.close();
  }
});

Deno.test("proxy strips hop-by-hop headers and those named in Connection, both ways", async () => {
  const be = rawBackend(async (_head, conn) => {
    await conn.write(enc.encode(
      "HTTP/1.1 200 OK\r\nConnection: X-Resp-Hop\r\nX-Resp-Hop: 1\r\nKeep-Alive: timeout=5\r\n" +
        "Proxy-Authenticate: Basic\r\nX-Kept: yes\r\nContent-Length: 2\r\n\r\nok",
    ));
  });
  const px = startProxy(be.url, { rules: { baseline: false } });
  try {
    const [res] = await rawRequest(
      px.port,
      "GET / HTTP/1.1\r\nHost: h\r\nConnection: close, X-Hop\r\nX-Hop: secret\r\n" +
        "Keep-Alive: 300\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\nTrailer: X\r\n" +
        "Proxy-Authorization: Basic Zm9vOmJhcg==\r\nX-Kept: 1\r\n\r\n",
    );
    assert.equal(res.status, 200);
    assert.equal(res.text, "ok");
    const head = be.heads[0].toLowerCase();
    for (
      const h of [
        "x-hop",
        "keep-alive",
        "te:",
        "proxy-connection",
        "trailer",
        "proxy-authorization",
        "connection:",
      ]
    ) {
      assert.ok(!head.includes(`\n${h}`), `upstream request still has ${h}:\n${head}`);
    }
    assert.ok(head.includes("\nx-kept: 1"));
    assert.equal(header(res, "x-resp-hop"), undefined);
    assert.equal(header(res, "keep-alive"), undefined);
    assert.equal(header(res, "proxy-authenticate"), undefined);
    assert.equal(header(res, "x-kept"), "yes");
  } finally {
    await px.close();
    await be.close();
  }
});

Deno.test("proxy replaces forged forwarding headers from untrusted clients", async () => {
  const be = serveBackend();
  const px = startProxy(be.url, { rules: { baseline: false } });
  try {
    await rawRequest(
      px.port,
      "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\n" +
        "X-Forwarded-Host: evil\r\nForwarded: for=6.6.6.6\r\nConnection: close\r\n\r\n",
    );
    const h = be.seen[0].headers;
    assert.equal(h["x-forwarded-for"], "127.0.0.1");
    assert.equal(h["x-forwarded-proto"], "http");
    assert.equal(h["x-forwarded-host"], "h");
    assert.equal(h["forwarded"], "for=127.0.0.1;host=h;proto=http");
  } finally {
    await px.close();
    await be.close();
  }
});

Deno.test("proxy appends to forwarding headers from a trusted proxy and resolves the client", async () => {
  const be = serveBackend();
  const px = startProxy(be.url, {
    rules: { baseline: false },
    trustedProxies: ["127.0.0.0/8"],
    access: { deny: ["203.0.113.9"] },
  });
  try {
    await rawRequest(
      px.port,
      "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 198.51.100.7\r\nX-Forwarded-Proto: https\r\n" +
        "Forwarded: for=198.51.100.7;proto=https\r\nConnection: close\r\n\r\n",
    );
    const h = be.seen[0].headers;
    assert.equal(h["x-forwarded-for"], "198.51.100.7, 127.0.0.1");
    assert.equal(h["x-forwarded-proto"], "https");
    assert.equal(h["forwarded"], "for=198.51.100.7;proto=https, for=127.0.0.1;host=h;proto=http");
    const [span] = px.proxy.traces.query();
    assert.equal(span.client, "198.51.100.7");
    // The resolved client address is what access lists see.
    const [denied] = await rawRequest(
      px.port,
      "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 203.0.113.9\r\nConnection: close\r\n\r\n",
    );
    assert.equal(denied.status, 403);
  } finally {
    await px.close();
    await be.close();
  }
});

Deno.test("proxy passes compressed bodies through byte for byte", async () => {
  const plain = enc.encode("compress me ".repeat(500));
  const gz = new Uint8Array(
    await new Response(new Blob([plain]).stream().pipeThrough(new CompressionStream("gzip")))
      .arrayBuffer(),
  );
  const be = serveBackend((req) =>
    new Response(gz, {
      headers: {
        "content-encoding": "gzip",
        "content-type": "text/plain",
        "x-accept-encoding-seen": req.headers.get("accept-encoding") ?? "none",
      },
    })
  );
  const px = startProxy(be.url, { rules: { baseline: false } });
  try {
    const [res] = await rawRequest(
      px.port,
      "GET /z HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n",
    );
    assert.equal(header(res, "content-encoding"), "gzip");
    assert.equal(header(res, "x-accept-encoding-seen"), "gzip");
    assert.deepEqual(res.body, gz);
    // Without Accept-Encoding from the client, none reaches the backend.
    const [res2] = await rawRequest(
      px.port,
      "GET /z HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    );
    assert.equal(header(res2, "x-accept-encoding-seen"), "none");
  } finally {
    await px.close();
    await be.close();
  }
});

Deno.test("proxy serves keep-alive and pipelined requests in order", async () => {
  const be = serveBackend((req) => new Response(new URL(req.url).pathname));
  const px = startProxy(be.url, { rules: { baseline: false } });
  try {
    const res = await rawRequest(
      px.port,
      "GET /one HTTP/1.1\r\nHost: h\r\n\r\nGET /two HTTP/1.1\r\nHost: h\r\n\r\n" +
        "GET /three HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    );
    assert.deepEqual(res.map((r) => r.text), ["/one", "/two", "/three"]);
  } finally {
    await px.close();
    await be.close();
  }
});

Deno.test("proxy forwards chunked request and response bodies", async () => {
  const be = serveBackend(async (req) => {
    const text = await req.text();
    const body = new ReadableStream({
      start(c) {
        c.enqueue(enc.encode("got:"));
        c.enqueue(enc.encode(text));
        c.close();
      },
    });
    return new Response(body);
  });
  const px = startProxy(be.url, { rules: { baseline: false } });
  try {
    const [res] = await rawRequest(
      px.port,
      "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
        "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n",
    );
    assert.equal(res.status, 200);
    assert.equal(res.text, "got:hello world");
    assert.equal(header(res, "transfer-encoding"), "chunked");
    assert.match(be.seen[0].headers["transfer-encoding"] ?? "", /chunked/);
  } finally {
    await px.close();
    await be.close();
  }
});

Deno.test("proxy answers Expect: 100-continue itself and forwards the body", async () => {
  const be = serveBackend();
  const px = startProxy(be.url, { rules: { baseline: false } });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: px.port });
  try {
    await conn.write(enc.encode(
      "PUT /u HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
    ));
    const buf = new Uint8Array(100);
    const n = await conn.read(buf);
    assert.equal(new TextDecoder().decode(buf.subarray(0, n!)), "HTTP/1.1 100 Continue\r\n\r\n");
    await conn.write(enc.encode("hello"));
    const [res] = parseResponses(await readAll(conn));
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(res.text).body, 5);
    assert.equal(be.seen[0].headers["expect"], undefined);
  } finally {
    conn.close();
    await px.close();
    await be.close();
  }
});

Deno.test("proxy handles HEAD, 204 and 304 without bodies", async () => {
  const be = serveBackend((req) => {
    const p = new URL(req.url).pathname;
    if (p === "/204") return new Response(null, { status: 204 });
    if (p === "/304") return new Response(null, { status: 304, headers: { etag: '"x"' } });
    return new Response("twelve bytes");
  });
  const px = startProxy(be.url, { rules: { baseline: false } });
  try {
    const res = await rawRequest(
      px.port,
      "HEAD /h HTTP/1.1\r\nHost: h\r\n\r\n",
      { headRequest: true, timeoutMs: 500 },
    );
    assert.equal(res[0].status, 200);
    assert.equal(header(res[0], "content-length"), "12");
    const res2 = await rawRequest(
      px.port,
      "GET /204 HTTP/1.1\r\nHost: h\r\n\r\nGET /304 HTTP/1.1\r\nHost: h\r\n\r\nGET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    );
    assert.deepEqual(res2.map((r) => r.status), [204, 304, 200]);
    assert.equal(res2[2].text, "twelve bytes");
  } finally {
    await px.close();
    await be.close();
  }
});

Deno.test("proxy passes WebSocket upgrades through (echo)", async () => {
  const be = serveBackend((req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onmessage = (e) => socket.send(`echo:${e.data}`);
    return response;
  });
  const px = startProxy(be.url, { rules: { baseline: false } });
  try {
    const ws = new WebSocket(`ws://127.0.0.1:${px.port}/ws`);
    const got = await new Promise<string>((resolve, reject) => {
      ws.onopen = () => ws.send("hello");
      ws.onmessage = (e) => resolve(String(e.data));
      ws.onerror = (e) => reject(new Error(`websocket error ${(e as ErrorEvent).message}`));
    });
    assert.equal(got, "echo:hello");
    const closed = new Promise((r) => ws.onclose = r);
    ws.close();
    await closed;
    assert.equal(be.seen[0].headers["upgrade"], "websocket");
  } finally {
    await px.close();
    await be.close();
  }
});

Deno.test("proxy rejects HTTP/1.1 without Host, several Hosts, and bad framing with 400", async () => {
  const be = serveBackend();
  const px = startProxy(be.url, { rules: { baseline: false } });
  try {
    const cases: [string, number, string][] = [
      ["GET / HTTP/1.1\r\n\r\n", 400, "proxy-host-missing"],
      ["GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "proxy-host-multiple"],
      ["GET / HTTP/1.1\nHost: a\n\n", 400, "proxy-bare-lf"],
      [
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        400,
        "proxy-bad-framing",
      ],
      [
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        400,
        "proxy-bad-framing",
      ],
      ["GET / HTTP/1.1\r\nHost: a\r\n X-Folded: 1\r\n\r\n", 400, "proxy-obs-fold"],
      ["GET / HTTP/1.1\r\nHost: a\r\nBad Name: 1\r\n\r\n", 400, "proxy-bad-header"],
      ["GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400, "proxy-bad-request-line"],
      ["GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, "proxy-http-version"],
      ["POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "proxy-bad-framing"],
    ];
    for (const [req, status, ruleId] of cases) {
      const res = await rawRequest(px.port, req);
      assert.equal(res.length, 1, `one response for ${JSON.stringify(req)}`);
      assert.equal(res[0].status, status, JSON.stringify(req));
      assert.equal(header(res[0], "connection"), "close");
      const f = px.proxy.findings.query({ limit: 1 })[0];
      assert.equal(f.ruleId, ruleId, JSON.stringify(req));
      assert.equal(f.category, "protocol");
    }
    assert.equal(be.seen.length, 0, "nothing reached the backend");
    // HTTP/1.0 without Host is fine.
    const [ok] = await rawRequest(px.port, "GET / HTTP/1.0\r\n\r\n");
    assert.equal(ok.status, 200);
  } finally {
    await px.close();
    await be.close();
  }
});

Deno.test("proxy rejects absolute-form targets for foreign hosts and accepts its own", async () => {
  const be = serveBackend();
  const px = startProxy(be.url, { rules: { baseline: false }, hosts: ["app.example"] });
  try {
    const [foreign] = await rawRequest(
      px.port,
      "GET http://evil.example/steal HTTP/1.1\r\nHost: evil.example\r\n\r\n",
    );
    assert.equal(foreign.status, 400);
    assert.equal(px.proxy.findings.query()[0].ruleId, "proxy-absolute-form-foreign");
    const [own] = await rawRequest(
      px.port,
      "GET http://app.example/p?q=1 HTTP/1.1\r\nHost: other\r\nConnection: close\r\n\r\n",
    );
    assert.equal(own.status, 200);
    assert.equal(be.seen.length, 1);
    assert.equal(be.seen[0].headers["host"], "app.example");
    assert.equal(new URL(be.seen[0].url).pathname, "/p");
    const [self] = await rawRequest(
      px.port,
      `GET http://127.0.0.1:${px.port}/ HTTP/1.1\r\nHost: 127.0.0.1:${px.port}\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(self.status, 200);
    const [connect] = await rawRequest(
      px.port,
      "CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n",
    );
    assert.equal(connect.status, 405);
  } finally {
    await px.close();
    await be.close();
  }
});

Deno.test("proxy enforces header limits with 431 and request-line limit with 414", async () => {
  const be = serveBackend();
  const px = startProxy(be.url, {
    rules: { baseline: false },
    limits: { maxHeaderCount: 10, maxHeaderBytes: 2048, maxRequestLineBytes: 512 },
  });
  try {
    let many = "GET / HTTP/1.1\r\nHost: h\r\n";
    for (let i = 0; i < 11; i++) many += `X-H${i}: v\r\n`;
    const [count] = await rawRequest(px.port, many + "\r\n");
    assert.equal(count.status, 431);
    const [size] = await rawRequest(
      px.port,
      `GET / HTTP/1.1\r\nHost: h\r\nX-Big: ${"a".repeat(4000)}\r\n\r\n`,
    );
    assert.equal(size.status, 431);
    const [line] = await rawRequest(px.port, `GET /${"a".repeat(600)} HTTP/1.1\r\nHost: h\r\n\r\n`);
    assert.equal(line.status, 414);
    const [endless] = await rawRequest(px.port, `GET /${"a".repeat(5000)}`);
    assert.equal(endless.status, 414);
    assert.equal(be.seen.length, 0);
  } finally {
    await px.close();
    await be.close();
  }
});

Deno.test("proxy answers 413 for bodies over the limit, declared or streamed", async () => {
  const be = serveBackend();
  const px = startProxy(be.url, { rules: { baseline: false }, limits: { maxBodyBytes: 1000 } });
  try {
    const [declared] = await rawRequest(
      px.port,
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1001\r\n\r\n",
    );
    assert.equal(declared.status, 413);
    assert.equal(be.seen.length, 0);
    const chunk = "x".repeat(600);
    const [streamed] = await rawRequest(
      px.port,
      `POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n${chunk}\r\n258\r\n${chunk}\r\n0\r\n\r\n`,
    );
    assert.equal(streamed.status, 413);
    assert.equal(px.proxy.findings.query()[0].ruleId, "proxy-body-size");
    const [fine] = await rawRequest(
      px.port,
      `POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 600\r\nConnection: close\r\n\r\n${chunk}`,
    );
    assert.equal(fine.status, 200);
  } finally {
    await px.close();
    await be.close();
  }
});

Deno.test("proxy rate-limits per client with 429 and Retry-After", async () => {
  let now = 1_700_000_000_000;
  const be = serveBackend();
  const px = startProxy(
    be.url,
    { rules: { baseline: false }, rateLimit: { enabled: true, requestsPerSecond: 0.5, burst: 2 } },
    { now: () => now },
  );
  try {
    const req = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    const res = await rawRequest(
      px.port,
      req + req + req + req.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n"),
    );
    assert.deepEqual(res.map((r) => r.status), [200, 200, 429, 429]);
    assert.equal(header(res[2], "retry-after"), "2");
    const f = px.proxy.findings.query({ category: "rate_limit" });
    assert.equal(f.length, 2);
    assert.equal(f[0].action, "blocked");
    now += 2000;
    const [after] = await rawRequest(
      px.port,
      req.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n"),
    );
    assert.equal(after.status, 200);
  } finally {
    await px.close();
    await be.close();
  }
});

Deno.test("proxy applies IP allow and deny lists; monitor mode only records", async () => {
  const be = serveBackend();
  const deny = startProxy(be.url, {
    rules: { baseline: false },
    access: { deny: ["127.0.0.0/8"] },
  });
  const allow = startProxy(be.url, {
    rules: { baseline: false },
    access: { allow: ["10.0.0.0/8"] },
  });
  const monitor = startProxy(be.url, {
    rules: { baseline: false },
    mode: "monitor",
    access: { deny: ["127.0.0.1"] },
  });
  try {
    const req = "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    assert.equal((await rawRequest(deny.port, req))[0].status, 403);
    assert.equal(deny.proxy.findings.query()[0].ruleId, "proxy-ip-deny");
    assert.equal((await rawRequest(allow.port, req))[0].status, 403);
    assert.equal(allow.proxy.findings.query()[0].ruleId, "proxy-ip-not-allowed");
    assert.equal((await rawRequest(monitor.port, req))[0].status, 200);
    assert.equal(monitor.proxy.findings.query()[0].action, "detected");
    assert.equal(be.seen.length, 1);
  } finally {
    await deny.close();
    await allow.close();
    await monitor.close();
    await be.close();
  }
});

Deno.test("proxy answers 502 when the backend is down and 504 when it is slow", async () => {
  const deadPort = freePort();
  const down = startProxy(`http://127.0.0.1:${deadPort}`, { rules: { baseline: false } });
  const silent = rawBackend(async () => {
    await new Promise((r) => setTimeout(r, 400));
    return false;
  });
  const slow = startProxy(silent.url, {
    rules: { baseline: false },
    upstream: { responseTimeoutMs: 200 },
  });
  const garbage = rawBackend(async (_h, conn) => {
    await conn.write(enc.encode("NOT HTTP AT ALL\r\n\r\n"));
    return false;
  });
  const bad = startProxy(garbage.url, { rules: { baseline: false } });
  try {
    const req = "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    const [r502] = await rawRequest(down.port, req);
    assert.equal(r502.status, 502);
    const t0 = Date.now();
    const [r504] = await rawRequest(slow.port, req);
    assert.equal(r504.status, 504);
    assert.ok(Date.now() - t0 < 1200, "504 arrives near the response timeout");
    const [rBad] = await rawRequest(bad.port, req);
    assert.equal(rBad.status, 502);
    const span = down.proxy.traces.query()[0];
    assert.equal(span.decision, "error");
    assert.equal(span.status, 502);
  } finally {
    await down.close();
    await slow.close();
    await bad.close();
    await silent.close();
    await garbage.close();
  }
});

Deno.test("proxy closes a Slowloris connection within the header timeout", async () => {
  const be = serveBackend();
  const px = startProxy(be.url, { rules: { baseline: false }, limits: { headerTimeoutMs: 300 } });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: px.port });
  try {
    const t0 = Date.now();
    await conn.write(enc.encode("GET / HTTP/1.1\r\nHost: h\r\n"));
    let closedAt = 0;
    const reader = (async () => {
      const buf = new Uint8Array(1024);
      try {
        while ((await conn.read(buf)) !== null) { /* drain */ }
      } catch { /* reset */ }
      closedAt = Date.now();
    })();
    // Trickle one header byte every 50 ms, like Slowloris.
    for (let i = 0; i < 40 && closedAt === 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      try {
        await conn.write(enc.encode("X"));
      } catch {
        break;
      }
    }
    await reader;
    const elapsed = closedAt - t0;
    // Bytes kept trickling for 2 s: a timeout that each byte restarted would not have fired.
    // The upper bound leaves a loaded machine's timers room without losing that.
    assert.ok(elapsed >= 250 && elapsed < 1800, `closed after ${elapsed} ms`);
    const f = px.proxy.findings.query()[0];
    assert.equal(f.ruleId, "proxy-header-timeout");
    assert.equal(be.seen.length, 0);
  } finally {
    conn.close();
    await px.close();
    await be.close();
  }
});

Deno.test("proxy closes idle keep-alive connections after the idle timeout", async () => {
  const be = serveBackend();
  const px = startProxy(be.url, { rules: { baseline: false }, limits: { idleTimeoutMs: 200 } });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: px.port });
  try {
    await conn.write(enc.encode("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
    const t0 = Date.now();
    const bytes = await readAll(conn, 3000);
    const elapsed = Date.now() - t0;
    assert.equal(parseResponses(bytes)[0].status, 200);
    assert.ok(elapsed < 1500, `idle connection closed after ${elapsed} ms`);
  } finally {
    conn.close();
    await px.close();
    await be.close();
  }
});

Deno.test("proxy retries a request on a pooled connection the backend closed", async () => {
  let n = 0;
  // Answers one request per connection and closes without saying so.
  const be = rawBackend(async (_h, conn) => {
    n++;
    await conn.write(enc.encode(`HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n${n}`));
    return false;
  });
  const px = startProxy(be.url, { rules: { baseline: false } });
  try {
    const req = "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    assert.equal((await rawRequest(px.port, req))[0].status, 200);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal((await rawRequest(px.port, req))[0].status, 200);
  } finally {
    await px.close();
    await be.close();
  }
});

Deno.test("proxy passes response fields on as received, dropping those Connection names in any case", async () => {
  const be = rawBackend(async (_head, conn) => {
    await conn.write(enc.encode(
      "HTTP/1.1 201 Made It\r\nCONNECTION: X-Drop, Keep-Alive\r\nx-drop: 1\r\nX-Keep:\ta  b\r\n" +
        "Keep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok",
    ));
  });
  const px = startProxy(be.url, { rules: { baseline: false } });
  try {
    const [res] = await rawRequest(
      px.port,
      "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    );
    assert.equal(res.status, 201);
    assert.equal(res.text, "ok");
    assert.equal(header(res, "x-drop"), undefined);
    assert.equal(header(res, "keep-alive"), undefined);
    assert.equal(header(res, "x-keep"), "a  b");
    assert.equal(header(res, "connection"), "close");
    assert.equal(header(res, "content-length"), "2");
  } finally {
    await px.close();
    await be.close();
  }
});

Deno.test("proxy streams a large response whose body starts in the head's read", async () => {
  const body = new Uint8Array(300_000).map((_, i) => i % 251);
  const be = rawBackend(async (_head, conn) => {
    const head = enc.encode(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`);
    const all = new Uint8Array(head.length + body.length);
    all.set(head);
    all.set(body, head.length);
    for (let off = 0; off < all.length;) off += await conn.write(all.subarray(off));
  });
  const px = startProxy(be.url, { rules: { baseline: false } });
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: px.port });
    await conn.write(enc.encode("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
    const raw = await readAll(conn, 10_000);
    conn.close();
    const text = new TextDecoder("latin1").decode(raw);
    const split = text.indexOf("\r\n\r\n") + 4;
    const got = raw.subarray(split);
    assert.equal(got.length, body.length);
    assert.deepEqual(got, body);
    const [span] = px.proxy.traces.query();
    assert.equal(span.responseBytes, body.length);
  } finally {
    await px.close();
    await be.close();
  }
});
