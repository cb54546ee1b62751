import assert from "node:assert/strict";
import fc from "fast-check";
import { BatchExporter, spansToOtlp } from "./export.ts";
import { REDACTED, summarizeRequest } from "./findings.ts";
import { forwardingHeaders, resolveClient, stripHopByHop } from "./forwarding.ts";
import { BufferedConn } from "./_conn.ts";
import { IpSet, parseCidr, parseIp } from "./ip.ts";
import { RateLimiter } from "./rate_limit.ts";
import {
  formatTraceParent,
  IdSource,
  parseTraceParent,
  RingBuffer,
  type Span,
  TraceStore,
} from "./trace.ts";

Deno.test("parseIp() handles IPv4, IPv6 and IPv4-mapped IPv6; rejects junk", () => {
  assert.deepEqual([...parseIp("10.1.2.3")!], [10, 1, 2, 3]);
  assert.equal(parseIp("::1")!.length, 16);
  assert.deepEqual([...parseIp("::ffff:10.0.0.1")!], [10, 0, 0, 1]);
  assert.deepEqual([...parseIp("[::ffff:a00:1]")!], [10, 0, 0, 1]);
  for (const bad of ["256.1.1.1", "1.2.3", "01.2.3.4", "1::2::3", "x", "", "1.2.3.4.5", "::g"]) {
    assert.equal(parseIp(bad), undefined, bad);
  }
});

Deno.test("IpSet matches CIDR ranges; mapped IPv6 cannot bypass an IPv4 rule", () => {
  const s = new IpSet(["10.0.0.0/8", "2001:db8::/32", "192.168.1.1"]);
  assert.ok(s.has("10.200.0.1"));
  assert.ok(s.has("::ffff:10.0.0.1"));
  assert.ok(s.has("2001:db8::5"));
  assert.ok(s.has("192.168.1.1"));
  assert.ok(!s.has("192.168.1.2"));
  assert.ok(!s.has("11.0.0.1"));
  assert.ok(!s.has("garbage"));
  assert.equal(parseCidr("10.0.0.0/33"), undefined);
  assert.throws(() => new IpSet(["nope"]), TypeError);
});

Deno.test("IpSet agrees with a reference for IPv4 /n (property)", () => {
  fc.assert(
    fc.property(fc.ipV4(), fc.ipV4(), fc.integer({ min: 0, max: 32 }), (net, ip, n) => {
      const toInt = (s: string) => s.split(".").reduce((a, b) => (a * 256 + Number(b)), 0);
      const mask = n === 0 ? 0 : (0xffffffff << (32 - n)) >>> 0;
      const expected = ((toInt(net) & mask) >>> 0) === ((toInt(ip) & mask) >>> 0);
      assert.equal(new IpSet([`${net}/${n}`]).has(ip), expected);
    }),
  );
});

Deno.test("RateLimiter refills over time and reports Retry-After", () => {
  let now = 0;
  const r = new RateLimiter({ requestsPerSecond: 2, burst: 3, now: () => now });
  assert.ok(r.take("a").allowed && r.take("a").allowed && r.take("a").allowed);
  const d = r.take("a");
  assert.equal(d.allowed, false);
  assert.equal(d.retryAfter, 1);
  assert.ok(r.take("b").allowed, "per client");
  now += 500;
  assert.ok(r.take("a").allowed);
  assert.equal(r.take("a").allowed, false);
  const small = new RateLimiter({ requestsPerSecond: 1, burst: 1, maxClients: 2, now: () => now });
  small.take("x");
  small.take("y");
  small.take("z");
  assert.equal(small.size, 2, "bounded");
});

Deno.test("forwarding helpers: hop-by-hop, client resolution, RFC 7239 quoting", () => {
  assert.deepEqual(
    stripHopByHop([["Connection", "x-a"], ["X-A", "1"], ["TE", "t"], ["X-B", "2"]]),
    [["X-B", "2"]],
  );
  const trusted = new IpSet(["10.0.0.0/8"]);
  const h: [string, string][] = [["X-Forwarded-For", "1.2.3.4, 10.0.0.5"]];
  assert.equal(resolveClient("10.0.0.9", h, trusted), "1.2.3.4");
  assert.equal(resolveClient("8.8.8.8", h, trusted), "8.8.8.8", "untrusted peer ignored");
  const f = forwardingHeaders([], { peer: "::1", trustedPeer: false, scheme: "http", host: "a b" });
  assert.deepEqual(f.find(([n]) => n === "Forwarded"), [
    "Forwarded",
    'for="[::1]";host="a b";proto=http',
  ]);
});

Deno.test("summarizeRequest() redacts cookies, authorization, secret params and headers", () => {
  const { summary, secrets } = summarizeRequest({
    method: "GET",
    target: "/cb?code=abc123xyz&state=ok&api_key=k-999999&page=2",
    protocol: "HTTP/1.1",
    headers: [
      ["Cookie", "sid=s3cr3t-value; lang=en"],
      ["Authorization", "Basic dXNlcjpwYXNz"],
      ["X-Session-Token", "tok-abcdef"],
      ["Accept", "text/html"],
    ],
    client: "1.2.3.4",
  });
  assert.equal(summary.target, `/cb?code=${REDACTED}&state=ok&api_key=${REDACTED}&page=2`);
  assert.deepEqual(summary.headers, [
    ["Cookie", `sid=${REDACTED}; lang=${REDACTED}`],
    ["Authorization", `Basic ${REDACTED}`],
    ["X-Session-Token", REDACTED],
    ["Accept", "text/html"],
  ]);
  assert.ok(secrets.includes("s3cr3t-value") && secrets.includes("dXNlcjpwYXNz"));
  assert.ok(!JSON.stringify(summary).includes("s3cr3t"));
});

Deno.test("traceparent parse/format follow W3C Trace Context", () => {
  const p = parseTraceParent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  assert.deepEqual(p, {
    traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
    parentId: "00f067aa0ba902b7",
    sampled: false,
  });
  for (
    const bad of [
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
    ]
  ) assert.equal(parseTraceParent(bad), undefined, bad);
  // Future versions may carry more fields.
  assert.ok(parseTraceParent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"));
  assert.equal(
    formatTraceParent("a".repeat(32), "b".repeat(16), true),
    `00-${"a".repeat(32)}-${"b".repeat(16)}-01`,
  );
  const ids = new IdSource((b) => b.fill(0x11));
  assert.equal(ids.traceId(), "11".repeat(16));
});

Deno.test("RingBuffer keeps the newest entries", () => {
  const r = new RingBuffer<number>(3);
  for (let i = 1; i <= 5; i++) r.push(i);
  assert.deepEqual(r.find(() => true), [5, 4, 3]);
  assert.equal(r.total, 5);
});

Deno.test("BatchExporter batches, counts failures, and drops when full without blocking", async () => {
  const batches: number[][] = [];
  let fail = true;
  const ex = new BatchExporter<number>({
    export: (items) => {
      if (fail) {
        fail = false;
        return Promise.reject(new Error("down"));
      }
      batches.push(items);
      return Promise.resolve();
    },
  }, { queueSize: 5, batchSize: 2, flushIntervalMs: 5 });
  for (let i = 0; i < 7; i++) ex.offer(i);
  assert.equal(ex.stats().dropped, 2);
  await ex.flush(1000);
  const s = ex.stats();
  assert.equal(s.failed, 2);
  assert.equal(s.exported, 3);
  assert.deepEqual(batches.flat(), [2, 3, 4]);
  await ex.close();
  assert.equal(ex.offer(9), false);
});

Deno.test("spansToOtlp() encodes ids, nanosecond times and error status", () => {
  const span: Span = {
    traceId: "a".repeat(32),
    spanId: "b".repeat(16),
    parentSpanId: "c".repeat(16),
    name: "GET /x",
    start: 1700000000000.5,
    end: 1700000000002.25,
    method: "GET",
    route: "/x",
    status: 502,
    durationMs: 1.75,
    requestBytes: 0,
    responseBytes: 10,
    client: "1.2.3.4",
    decision: "error",
    ruleIds: ["r1"],
    findingIds: [],
  };
  const o = spansToOtlp([span]).resourceSpans[0].scopeSpans[0].spans[0];
  assert.equal(o.startTimeUnixNano, "1700000000000500000");
  assert.equal(o.endTimeUnixNano, "1700000000002250000");
  assert.equal(o.parentSpanId, "c".repeat(16));
  assert.equal(o.status.code, 2);
  assert.ok(o.attributes.some((a) => a.key === "infraveil.rule_ids"));
});

Deno.test("TraceStore records spans in columns and rebuilds them on query", () => {
  const store = new TraceStore(3);
  const ids = new Uint8Array(32);
  for (let i = 0; i < 32; i++) ids[i] = i + 1;
  const fields = {
    ids,
    hasParent: true,
    method: "GET",
    route: "/a/very/long/route/name",
    start: 1000.5,
    end: 1002.25,
    status: 200,
    upstreamMs: 1.5,
    requestBytes: 3,
    responseBytes: 4,
    client: "192.0.2.1",
    host: "example.test",
    decision: "allowed" as const,
    ruleIds: [],
    findingIds: [],
    error: undefined,
  };
  store.record(fields);
  const [s] = store.query();
  assert.equal(s.traceId, "0102030405060708090a0b0c0d0e0f10");
  assert.equal(s.spanId, "1112131415161718");
  assert.equal(s.parentSpanId, "191a1b1c1d1e1f20");
  assert.equal(s.name, "GET /a/very/long/route/name");
  assert.equal(s.durationMs, 1.75);
  assert.equal(s.upstreamMs, 1.5);
  assert.equal(s.host, "example.test");
  assert.deepEqual(s.ruleIds, []);
  // The store copied the ids: changing the caller's buffer changes nothing.
  ids.fill(0);
  assert.equal(store.query()[0].traceId, "0102030405060708090a0b0c0d0e0f10");
  // Ring: the newest three are kept, newest first; optional fields come back absent.
  for (let i = 0; i < 4; i++) {
    store.record({
      ...fields,
      hasParent: false,
      upstreamMs: NaN,
      host: undefined,
      status: 500 + i,
      ruleIds: i === 3 ? ["r1"] : [],
      error: i === 3 ? "boom" : undefined,
    });
  }
  assert.equal(store.size, 3);
  const all = store.query();
  assert.deepEqual(all.map((x) => x.status), [503, 502, 501]);
  assert.equal(all[0].parentSpanId, undefined);
  assert.equal(all[0].upstreamMs, undefined);
  assert.equal(all[0].host, undefined);
  assert.equal(all[0].error, "boom");
  assert.deepEqual(all[0].ruleIds, ["r1"]);
  assert.deepEqual(store.query({ minStatus: 502, limit: 1 }).map((x) => x.status), [503]);
  // add() keeps accepting whole spans.
  store.add({ ...all[0], traceId: "ab".repeat(16), spanId: "cd".repeat(8), status: 201 });
  assert.equal(store.query({ traceId: "ab".repeat(16) })[0].status, 201);
});

Deno.test("IdSource.fillId() writes non-zero ids from one random fill per pool", () => {
  let calls = 0;
  let n = 0;
  const ids = new IdSource((b) => {
    calls++;
    // The first 16 bytes are zero: that id must be skipped.
    for (let i = 0; i < b.length; i++) b[i] = i < 16 ? 0 : (n++ & 0xff) | 1;
  });
  const out = new Uint8Array(24);
  ids.fillId(out, 0, 16);
  ids.fillId(out, 16, 8);
  assert.ok(out.some((x) => x !== 0));
  assert.ok(out.subarray(16).some((x) => x !== 0));
  assert.equal(calls, 1);
});

Deno.test("BufferedConn.readRaw() reads a plain TCP stream through the op or the connection alike", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  try {
    for (const plainTcp of [true, false]) {
      const client = await Deno.connect({ hostname: "127.0.0.1", port });
      const server = await listener.accept();
      const bc = new BufferedConn(server, 8, 64, plainTcp);
      // Deno 2.x exposes the op; when a runtime stops doing so, the fallback must be the one used.
      assert.equal(bc.rawRead, plainTcp, "raw read op in use");
      await client.write(new TextEncoder().encode("hello"));
      let got = "";
      while (got.length < 5) {
        const n = await bc.readRaw(bc.space());
        assert.ok(n !== null && n > 0);
        bc.commit(n);
        got += new TextDecoder().decode(bc.take(64));
      }
      assert.equal(got, "hello");
      assert.equal(bc.bytesRead, 5);
      client.close();
      const end = await bc.readRaw(bc.space());
      assert.ok(end === 0 || end === null, `end of stream: ${end}`);
      // Closing while a read is pending rejects it (or ends it), never hangs.
      const client2 = await Deno.connect({ hostname: "127.0.0.1", port });
      const server2 = await listener.accept();
      const bc2 = new BufferedConn(server2, 8, 64, plainTcp);
      const pending = bc2.readRaw(bc2.space()).then(() => "ended", () => "rejected");
      bc2.close();
      assert.ok(["ended", "rejected"].includes(await pending));
      assert.equal(await bc2.fill(), false);
      client2.close();
      bc.close();
    }
  } finally {
    listener.close();
  }
});
