import assert from "node:assert/strict";
import fc from "fast-check";
import { compileOperator } from "./_operators.ts";

/** The plain reading of `@ipMatch` for IPv4: parse the dotted quad, compare with each range. */
function plainIpv4Match(list: string, value: string): boolean {
  const v = value.trim();
  if (!/^\d{1,3}(?:\.\d{1,3}){3}$/.test(v)) return false;
  const p = v.split(".").map(Number);
  if (p.some((x) => x > 255)) return false;
  const a = p[0] * 16777216 + p[1] * 65536 + p[2] * 256 + p[3];
  for (const e of list.split(",")) {
    const [ip, bits] = e.trim().split("/");
    if (ip.includes(":")) continue;
    const q = ip.split(".").map(Number);
    const base = q[0] * 16777216 + q[1] * 65536 + q[2] * 256 + q[3];
    const size = 2 ** (32 - (bits === undefined ? 32 : Number(bits)));
    const lo = Math.floor(base / size) * size;
    if (a >= lo && a < lo + size) return true;
  }
  return false;
}

Deno.test("compileOperator() @ipMatch matches IPv4 values like the plain range comparison", () => {
  const lists = [
    "127.0.0.1,::1",
    "10.0.0.0/8,192.168.0.0/16,172.16.0.0/12,::1,fe80::/10",
    "0.0.0.0/0",
    "255.255.255.255/32,1.2.3.0/24,100.64.0.0/10",
  ];
  const value = fc.oneof(
    fc.tuple(fc.nat(300), fc.nat(300), fc.nat(300), fc.nat(300)).map((p) => p.join(".")),
    fc.ipV4(),
    fc.string(),
    fc.constantFrom(
      " 127.0.0.1 ",
      "127.0.0.1.",
      ".1.2.3",
      "1..2.3",
      "0001.2.3.4",
      "1.2.3",
      "127.0.0.01",
      "255.255.255.255",
      "256.1.1.1",
      "10.1.2.3",
      "192.168.300.1",
    ),
  );
  for (const list of lists) {
    const op = compileOperator("ipMatch", list, "test", () => "");
    fc.assert(
      fc.property(value, (v) => op.test(v, list) === plainIpv4Match(list, v)),
      { numRuns: 3000 },
    );
  }
});

Deno.test("compileOperator() @ipMatch still matches IPv6 and rejects what is no address", () => {
  const op = compileOperator("ipMatch", "127.0.0.1,::1,fe80::/10", "test", () => "");
  assert.equal(op.test("::1", ""), true);
  assert.equal(op.test("fe80::1234", ""), true);
  assert.equal(op.test("fe00::1", ""), false);
  assert.equal(op.test("127.0.0.1", ""), true);
  assert.equal(op.test("127.0.0.2", ""), false);
  assert.equal(op.test("127.0.0.1:80", ""), false);
  assert.equal(op.test("", ""), false);
});
