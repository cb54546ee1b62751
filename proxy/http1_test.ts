import assert from "node:assert/strict";
import fc from "fast-check";
import { parseRequestHead, parseResponseHead, Rejection } from "./_http1.ts";

const L = { maxHeadBytes: 16384, maxLineBytes: 8192, maxHeaderCount: 100 };
const bytes = (s: string): Uint8Array => {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
  return b;
};
const parse = (s: string) => {
  const b = bytes(s);
  return parseRequestHead(b, 0, b.length, L);
};

Deno.test("parseRequestHead() keeps header names, order and obs-text bytes", () => {
  const h = parse("GET /a?b HTTP/1.1\r\nHost: x\r\nX-A:  v1 \r\nx-a: v\xe92\r\n\r\n");
  assert.equal(h.method, "GET");
  assert.equal(h.target, "/a?b");
  assert.deepEqual(h.headers, [["Host", "x"], ["X-A", "v1"], ["x-a", "v\xe92"]]);
  assert.equal(h.host, "x");
});

Deno.test("parseRequestHead() derives framing and rejects smuggling shapes", () => {
  assert.equal(parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n").contentLength, 10);
  assert.equal(
    parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 7, 7\r\n\r\n").contentLength,
    7,
  );
  assert.equal(
    parse("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n").chunked,
    true,
  );
  for (
    const bad of [
      "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n",
      "GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n",
      "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
      "GET  / HTTP/1.1\r\n\r\n",
      "GET / HTTP/1.1 \r\n\r\n",
      "G(T / HTTP/1.1\r\n\r\n",
    ]
  ) {
    assert.throws(() => parse(bad), Rejection, JSON.stringify(bad));
  }
});

Deno.test("parseRequestHead() never throws anything but Rejection (property)", () => {
  fc.assert(
    fc.property(fc.string({ unit: "binary-ascii", maxLength: 300 }), (s) => {
      const text = s + "\r\n\r\n";
      try {
        parse(text);
      } catch (e) {
        if (!(e instanceof Rejection)) throw e;
      }
    }),
    { numRuns: 500 },
  );
});

Deno.test("parseResponseHead() reads status, reason and framing; malformed is a 502", () => {
  const b = bytes("HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\n");
  const r = parseResponseHead(b, 0, b.length);
  assert.equal(r.status, 404);
  assert.equal(r.reason, "Not Found");
  assert.equal(r.contentLength, 3);
  const bad = bytes("HTTP/1.1 2000 OK\r\n\r\n");
  assert.throws(
    () => parseResponseHead(bad, 0, bad.length),
    (e: unknown) => e instanceof Rejection && e.status === 502,
  );
});

Deno.test("parseRequestHead() matches framing names case-insensitively, and only exact names", () => {
  // Mixed case still frames the body, so the CL + TE smuggling shape is refused.
  assert.throws(
    () =>
      parse(
        "POST / HTTP/1.1\r\nHost: x\r\ncOnTeNt-LeNgTh: 1\r\ntRaNsFeR-eNcOdInG: chunked\r\n\r\n",
      ),
    Rejection,
  );
  assert.equal(parse("POST / HTTP/1.1\r\nHost: x\r\nCONTENT-LENGTH: 4\r\n\r\n").contentLength, 4);
  // Near-miss names are ordinary fields: no framing from them.
  for (const name of ["Content_Length", "Content-Lengt", "Content-Length2", "Xontent-Length"]) {
    const h = parse(`POST / HTTP/1.1\r\nHost: x\r\n${name}: 4\r\n\r\n`);
    assert.equal(h.contentLength, -1, name);
    assert.deepEqual(h.headers[1], [name, "4"]);
  }
  assert.equal(parse("GET / HTTP/1.1\r\nhOsT: a\r\n\r\n").host, "a");
  assert.equal(parse("GET / HTTP/1.1\r\nHost: a\r\nHOST: b\r\n\r\n").hostCount, 2);
});

Deno.test("parseRequestHead() refuses Content-Length values that are not plain digits", () => {
  for (
    const v of [
      "",
      " ",
      "1 2",
      "0x10",
      "1.0",
      "-1",
      "5\xa0",
      "\xa05",
      "1,",
      ",1",
      "1234567890123456",
    ]
  ) {
    assert.throws(
      () => parse(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${v}\r\n\r\n`),
      (e: unknown) => e instanceof Rejection && e.status === 400,
      JSON.stringify(v),
    );
  }
  assert.equal(
    parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\t 12 ,12\t\r\n\r\n").contentLength,
    12,
  );
});

Deno.test("parseRequestHead() rejects bad request lines, versions and header counts", () => {
  const cases: [string, number][] = [
    ["GET / HTTP/2.0\r\n\r\n", 505],
    ["GET / HTTP/1.2\r\n\r\n", 505],
    ["GET / HTTP/1.1x\r\n\r\n", 400],
    ["GET / http/1.1\r\n\r\n", 400],
    ["GET /\x7f HTTP/1.1\r\n\r\n", 400],
    ["GET / HTTP/1.1\r\n" + "a: b\r\n".repeat(101) + "\r\n", 431],
    ["GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", 400],
    ["GET / HTTP/1.1\r\n: b\r\n\r\n", 400],
    ["GET / HTTP/1.1\r\nExpect: nothing\r\n\r\n", 417],
  ];
  for (const [text, status] of cases) {
    assert.throws(
      () => parse(text),
      (e: unknown) => e instanceof Rejection && e.status === status,
      JSON.stringify(text),
    );
  }
});

Deno.test("parseRequestHead() returns exactly the fields it was given (property)", () => {
  const token = fc.stringMatching(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,20}$/);
  const value = fc.stringMatching(
    /^[\x21-\x7e\x80-\xff]([\x20-\x7e\x80-\xff]{0,30}[\x21-\x7e\x80-\xff])?$/,
  );
  fc.assert(
    fc.property(fc.array(fc.tuple(token, value), { maxLength: 20 }), (fields) => {
      const framingNames = /^(content-length|transfer-encoding|host|expect|connection|upgrade)$/i;
      const plain = fields.filter(([n]) => !framingNames.test(n));
      const text = "GET /p HTTP/1.1\r\n" + plain.map(([n, v]) => `${n}:  ${v} \r\n`).join("") +
        "\r\n";
      const h = parse(text);
      assert.deepEqual(h.headers, plain);
      assert.equal(h.kinds.length, plain.length);
      assert.equal(h.contentLength, -1);
    }),
    { numRuns: 300 },
  );
});

Deno.test("parseResponseHead() is strict about the status line and fields (502)", () => {
  for (
    const text of [
      "HTTP/1.1 200 O\x01K\r\n\r\n",
      "HTTP/1.1 20 OK\r\n\r\n",
      "HTTP/1.1 200OK\r\n\r\n",
      "HTTP/2 200 OK\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX : y\r\n\r\n",
      "HTTP/1.1 200 OK\r\n y\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    ]
  ) {
    const b = bytes(text);
    assert.throws(
      () => parseResponseHead(b, 0, b.length),
      (e: unknown) => e instanceof Rejection && e.status === 502,
      JSON.stringify(text),
    );
  }
  const ok = bytes("HTTP/1.0 204\r\nconnection: Keep-Alive\r\nX-A:\tv \r\n\r\n");
  const r = parseResponseHead(ok, 0, ok.length);
  assert.equal(r.status, 204);
  assert.equal(r.minor, 0);
  assert.equal(r.reason, "");
  assert.deepEqual(r.connection, ["keep-alive"]);
  assert.deepEqual(r.headers, [["connection", "Keep-Alive"], ["X-A", "v"]]);
  const te = bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, CHUNKED\r\n\r\n");
  assert.equal(parseResponseHead(te, 0, te.length).chunked, true);
});

Deno.test("parse*Head() reuse their scratch arrays without mixing heads", () => {
  const fields: number[] = [];
  const kinds: number[] = [];
  const a = bytes(
    "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: Upgrade\r\nA: 1\r\n\r\n",
  );
  const b = bytes("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
  const c = bytes("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n");
  assert.deepEqual(parseResponseHead(a, 0, a.length, fields).connection, ["keep-alive", "upgrade"]);
  assert.equal(fields.length, 12);
  const rb = parseResponseHead(b, 0, b.length, fields);
  assert.deepEqual(rb.connection, ["close"]);
  assert.deepEqual(rb.headers, [["Connection", "close"]]);
  assert.equal(fields.length, 4);
  // The shared single-token arrays were not extended by the two-field head before.
  assert.deepEqual(parseResponseHead(c, 0, c.length, fields).connection, ["keep-alive"]);
  assert.deepEqual(parseResponseHead(a, 0, a.length).connection, ["keep-alive", "upgrade"]);
  const r1 = bytes("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nContent-Length: 3\r\n\r\n");
  const r2 = bytes("GET / HTTP/1.1\r\nHost: b\r\n\r\n");
  const h1 = parseRequestHead(r1, 0, r1.length, L, kinds);
  assert.equal(h1.contentLength, 3);
  assert.equal(kinds.length, 3);
  const h2 = parseRequestHead(r2, 0, r2.length, L, kinds);
  assert.equal(h2.contentLength, -1);
  assert.equal(h2.host, "b");
  assert.equal(kinds.length, 1);
  assert.deepEqual(h2.headers, [["Host", "b"]]);
});
