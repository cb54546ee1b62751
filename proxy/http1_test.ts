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
