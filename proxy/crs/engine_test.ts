import assert from "node:assert/strict";
import { fired, inlineEngine, req } from "./_testutil.ts";
import { CrsError } from "./_errors.ts";

Deno.test("engine: a chain fires only when every link matches; the starter's setvar is visible", () => {
  const e = inlineEngine(`
SecRule REQUEST_HEADERS:Content-Type "@rx ^([^;]+)" "id:10,phase:1,block,capture,setvar:'tx.ct=|%{tx.1}|',chain"
  SecRule TX:ct "!@within |text/plain|" "t:lowercase"
`);
  assert.deepEqual(fired(e, req("/", { headers: [["Content-Type", "application/evil"]] })), [10]);
  assert.deepEqual(fired(e, req("/", { headers: [["Content-Type", "text/plain; x"]] })), []);
});

Deno.test("engine: setvar runs once per matched variable (anomaly scores add up)", () => {
  const e = inlineEngine(`
SecRule ARGS "@rx bad" "id:20,phase:2,pass,setvar:tx.score=+5"
SecRule TX:score "@ge 10" "id:21,phase:2,deny"
`);
  assert.deepEqual(fired(e, req("/?a=bad&b=bad")), [20, 21]);
  assert.deepEqual(fired(e, req("/?a=bad")), [20]);
});

Deno.test("engine: exclusions, counts and SecRuleUpdateTargetById", () => {
  const e = inlineEngine(`
SecRule ARGS|!ARGS:safe "@contains x" "id:30,phase:2,pass"
SecRule &ARGS "@gt 2" "id:31,phase:2,pass"
SecRule ARGS "@contains y" "id:32,phase:2,pass"
SecRuleUpdateTargetById 32 "!ARGS:/^ok_/"
`);
  assert.deepEqual(fired(e, req("/?safe=x")), []);
  assert.deepEqual(fired(e, req("/?q=x&a=1&b=2")), [30, 31]);
  assert.deepEqual(fired(e, req("/?ok_1=y")), []);
  assert.deepEqual(fired(e, req("/?no=y")), [32]);
});

Deno.test("engine: skipAfter jumps to its marker; ctl:ruleRemoveById removes later rules", () => {
  const e = inlineEngine(`
SecRule ARGS:skip "@streq 1" "id:40,phase:1,pass,nolog,skipAfter:END"
SecRule ARGS "@unconditionalMatch" "id:41,phase:1,pass"
SecMarker END
SecRule ARGS:off "@streq 1" "id:42,phase:1,pass,ctl:ruleRemoveById=43"
SecRule ARGS "@unconditionalMatch" "id:43,phase:2,pass"
`);
  assert.deepEqual(fired(e, req("/?skip=1")), [40, 43]);
  assert.deepEqual(fired(e, req("/?off=1")), [41, 42]);
});

Deno.test("engine: parses urlencoded, JSON and multipart bodies into ARGS and FILES", () => {
  const e = inlineEngine(`
SecRule ARGS_POST:name "@streq O'Brien" "id:50,phase:2,pass"
SecRule ARGS:json.user.tags.1 "@streq b" "id:51,phase:2,pass"
SecRule FILES "@endsWith .php" "id:52,phase:2,pass"
SecRule ARGS_POST:title "@streq hi" "id:53,phase:2,pass"
`);
  assert.deepEqual(
    fired(
      e,
      req("/", {
        headers: [["Content-Type", "application/x-www-form-urlencoded"]],
        bodyText: "name=O%27Brien",
      }),
    ),
    [50],
  );
  assert.deepEqual(
    fired(
      e,
      req("/", {
        headers: [["Content-Type", "application/json"]],
        bodyText: '{"user":{"tags":["a","b"]}}',
      }),
    ),
    [51],
  );
  const mp = '--B\r\nContent-Disposition: form-data; name="title"\r\n\r\nhi\r\n' +
    '--B\r\nContent-Disposition: form-data; name="f"; filename="x.php"\r\n\r\n<?php\r\n--B--\r\n';
  assert.deepEqual(
    fired(
      e,
      req("/", { headers: [["Content-Type", "multipart/form-data; boundary=B"]], bodyText: mp }),
    ),
    [52, 53],
  );
});

Deno.test("engine: @pmFromFile reads its data file once and matches case-insensitively", () => {
  const e = inlineEngine(
    `SecRule REQUEST_HEADERS:User-Agent "@pmFromFile bots.data" "id:60,phase:1,pass"`,
    {
      data: { "bots.data": "# scanners\nsqlmap\nnikto\n" },
    },
  );
  assert.deepEqual(fired(e, req("/", { headers: [["User-Agent", "SQLMap/1.7"]] })), [60]);
  assert.deepEqual(fired(e, req("/", { headers: [["User-Agent", "Mozilla"]] })), []);
});

Deno.test("engine: block mode denies, monitor mode only reports", async () => {
  const rules = `SecRule ARGS "@rx evil" "id:70,phase:2,deny,status:406,msg:'evil %{MATCHED_VAR}'"`;
  const block = inlineEngine(rules, { mode: "block" });
  const v = await block.evaluate(req("/?q=evil"));
  assert.equal(v.action, "block");
  assert.equal(v.status, 406);
  assert.equal(v.matches[0].message, "evil evil");
  assert.equal(v.matches[0].matched, "ARGS:q: evil");
  const mon = await inlineEngine(rules, { mode: "monitor" }).evaluate(req("/?q=evil"));
  assert.equal(mon.action, "allow");
  assert.equal(mon.matches.length, 1);
});

Deno.test("loadCrs() rejects bad rules with file:line and a hint", () => {
  const bad: [string, string, RegExp][] = [
    [`SecRule ARGS "@nope x" "id:1"`, "UNKNOWN_OPERATOR", /test\.conf:1.*@nope/],
    [`SecRule ARGZ "@rx x" "id:1"`, "UNKNOWN_VARIABLE", /ARGZ/],
    [`SecRule ARGS "@rx x" "id:1,t:frobnicate"`, "UNKNOWN_TRANSFORMATION", /frobnicate/],
    [`SecRule ARGS "@rx (" "id:1"`, "BAD_REGEX", /test\.conf:1/],
    [`SecRule ARGS "@rx x" "phase:2"`, "BAD_RULE", /id:NNN/],
    [`\n\nSecFoo On`, "UNKNOWN_DIRECTIVE", /test\.conf:3/],
    [`SecRule ARGS "@rx x" "id:1,chain"`, "BAD_RULE", /chain/],
  ];
  for (const [text, code, re] of bad) {
    assert.throws(() => inlineEngine(text), (e: unknown) => {
      assert.ok(e instanceof CrsError, String(e));
      assert.equal(e.code, code);
      assert.match(e.message, re);
      return true;
    });
  }
});

Deno.test("engine: a runtime target removal concerns only its rule, not others with the same targets", () => {
  const e = inlineEngine(`
SecRule ARGS:skip "@streq 1" "id:50,phase:1,pass,nolog,ctl:ruleRemoveTargetById=52;ARGS:a"
SecRule ARGS "@rx evil" "id:51,phase:2,pass"
SecRule ARGS "@rx evil" "id:52,phase:2,pass"
SecRule ARGS "@rx evil" "id:53,phase:2,pass"
`);
  assert.deepEqual(fired(e, req("/?a=evil&skip=1")), [50, 51, 53]);
  assert.deepEqual(fired(e, req("/?a=evil&b=evil&skip=1")), [50, 51, 52, 53]);
  assert.deepEqual(fired(e, req("/?a=evil")), [51, 52, 53]);
});

Deno.test("engine: prefiltered operators still see every transformed and multiMatch value", () => {
  const e = inlineEngine(`
SecRule ARGS "@rx union\\s+select" "id:60,phase:2,pass,t:none,t:urlDecodeUni,t:lowercase"
SecRule ARGS "@pm verylongphrase sh" "id:61,phase:2,pass,t:none,t:lowercase"
SecRule ARGS "@rx ^abc$" "id:62,phase:2,pass,t:none,t:removeWhitespace,multiMatch"
SecRule ARGS "!@rx zzz" "id:63,phase:2,pass,t:none"
`);
  assert.deepEqual(fired(e, req("/?q=UNION%2520%2520SELECT")), [60, 63]);
  assert.deepEqual(fired(e, req("/?q=VeryLongPhrase")), [61, 63]);
  assert.deepEqual(fired(e, req("/?q=a%20b%20c")), [62, 63]);
  assert.deepEqual(fired(e, req("/?q=zzz")), []);
});
