import assert from "node:assert/strict";
import { detectSqli, sqliFingerprint } from "./libinjection_sqli.ts";
import { detectXss } from "./libinjection_xss.ts";

Deno.test("detectSqli() finds classic injections in every quoting context", () => {
  for (
    const s of [
      "1 OR 1=1",
      "1' OR '1'='1",
      '1" or "1"="1',
      "1' union select 1,2,3--",
      "1; drop table users",
      "admin'--",
      "1) or (1=1",
      "x' AND sleep(5)--",
      "1/*!50000union*/select",
      "5' waitfor delay '0:0:5'--",
    ]
  ) assert.ok(detectSqli(s) !== undefined, s);
});

Deno.test("detectSqli() leaves ordinary text with quotes and SQL words alone", () => {
  for (
    const s of [
      "O'Reilly and sons",
      "rock and roll",
      "it's a test, isn't it",
      "select your size",
      "1 or 2 bedroom apartment",
      "don't stop believing",
      "user@example.com",
      "price: $1,000.00",
      "union square restaurants",
      "",
    ]
  ) assert.equal(detectSqli(s), undefined, s);
});

Deno.test("sqliFingerprint() folds like libinjection", () => {
  assert.equal(sqliFingerprint("1 OR 1=1"), "1&1");
  assert.equal(sqliFingerprint("-1' or '1'='1", "single"), "s&sos");
  assert.equal(sqliFingerprint("1/**/union/**/select 1"), "1UE1");
});

Deno.test("detectXss() finds tags, handlers and script URLs; ignores plain text", () => {
  for (
    const s of [
      "<script>alert(1)</script>",
      "<img src=x onerror=alert(1)>",
      '" onmouseover="alert(1)',
      "<a href=' javascript:alert(1)'>x</a>",
      "<svg/onload=alert(1)>",
      "<!DOCTYPE html>",
      "<p style=x:expression(alert(1))>",
    ]
  ) assert.ok(detectXss(s), s);
  for (
    const s of ["a < b and c > d", "<b>bold</b>", "x=1&y=2", "go online now", 'it\'s "quoted"']
  ) {
    assert.ok(!detectXss(s), s);
  }
});
