import assert from "node:assert/strict";
import type { RuleRequest, RuleResponse } from "../rule_engine.ts";
import type { TxResult } from "./engine.ts";
import { CrsError } from "./_errors.ts";
import { denoFiles } from "./_io.ts";
import { inlineEngine, req, sharedCrs } from "./_testutil.ts";
import { loadCrs } from "./crs.ts";
import { albedoResponse, sniffContentType, stageRequest } from "./ftw.ts";
import { loadTests } from "./main.ts";

const enc = new TextEncoder();

function response(body: string, type = "text/html", status = 200): RuleResponse {
  return {
    status,
    protocol: "HTTP/1.1",
    headers: [["Content-Type", type], ["Content-Length", String(body.length)]],
    body: enc.encode(body),
  };
}

const LEAK_RULES = `
SecRule ARGS:debug "@streq 1" "id:1,phase:1,pass,nolog,setvar:tx.debug=1"
SecRule RESPONSE_STATUS "@rx ^5" "id:3,phase:3,pass,log,setvar:tx.out=+1"
SecRule RESPONSE_HEADERS:Content-Type "@contains x-leaky" "id:4,phase:3,pass,log"
SecRule RESPONSE_BODY "@contains ORA-00933" "id:5,phase:4,deny,status:403,log,msg:'SQL error leaked'"
SecRule TX:debug "@eq 1" "id:6,phase:4,pass,log,chain"
  SecRule RESPONSE_BODY "@contains stack trace" ""
`;

const ids = (r: { matched: { rule: { id: number } }[] }) => r.matched.map((m) => m.rule.id);

Deno.test("response phases: status, headers and body rules run after the request, with its TX", () => {
  const e = inlineEngine(LEAK_RULES);
  const plain = e.inspect(req("/"));
  assert.deepEqual(ids(e.inspectResponse(plain, response("<p>hello</p>"))), []);

  const leaked = e.inspect(req("/"));
  const out = e.inspectResponse(
    leaked,
    response("ERROR: ORA-00933: SQL command", "text/html", 500),
  );
  assert.deepEqual(ids(out), [3, 5]);
  assert.equal(out.interrupted?.status, 403);
  assert.equal(out.tx.get("out"), "1");

  // TX set in phase 1 is seen in phase 4; without it the chain does not fire.
  const debug = e.inspect(req("/?debug=1"));
  assert.deepEqual(ids(e.inspectResponse(debug, response("a stack trace here"))), [6]);
  const noDebug = e.inspect(req("/"));
  assert.deepEqual(ids(e.inspectResponse(noDebug, response("a stack trace here"))), []);

  const header = e.inspect(req("/"));
  assert.deepEqual(ids(e.inspectResponse(header, response("x", "application/x-leaky"))), [4]);
});

Deno.test("response phases: a transaction takes one response; foreign results evaluate nothing", () => {
  const e = inlineEngine(LEAK_RULES);
  const t = e.inspect(req("/"));
  assert.deepEqual(ids(e.inspectResponse(t, response("ORA-00933"))), [5]);
  // A second response for the same transaction would count its scores twice.
  assert.deepEqual(ids(e.inspectResponse(t, response("ORA-00933"))), []);
  const forged = { matched: [], tx: new Map<string, string>() };
  assert.deepEqual(ids(e.inspectResponse(forged, response("ORA-00933"))), []);
  // Another engine's transaction, even with the same rules, is not this engine's to continue.
  const other = inlineEngine(LEAK_RULES);
  const theirs = other.inspect(req("/"));
  assert.deepEqual(ids(e.inspectResponse(theirs, response("ORA-00933"))), []);
  assert.deepEqual(ids(other.inspectResponse(theirs, response("ORA-00933"))), [5]);
});

Deno.test("response phases: SecResponseBodyAccess, SecResponseBodyMimeType and SecResponseBodyLimit", () => {
  const defaults = inlineEngine(LEAK_RULES);
  assert.deepEqual(defaults.responseBody, {
    mediaTypes: ["text/plain", "text/html", "text/xml"],
    maxBytes: 512 * 1024,
  });
  const off = inlineEngine(`SecResponseBodyAccess Off\n${LEAK_RULES}`);
  assert.equal(off.responseBody, undefined);
  // Without body access the header rules still run.
  const t = off.inspect(req("/"));
  assert.deepEqual(ids(off.inspectResponse(t, { ...response("x", "x-leaky"), body: undefined })), [
    4,
  ]);

  const json = inlineEngine(
    `SecResponseBodyMimeType application/json\nSecResponseBodyMimeType text/csv\n${LEAK_RULES}`,
  );
  assert.deepEqual(json.responseBody?.mediaTypes, ["application/json", "text/csv"]);
  const cleared = inlineEngine(`SecResponseBodyMimeTypesClear\n${LEAK_RULES}`);
  assert.deepEqual(cleared.responseBody?.mediaTypes, []);

  // Only the first SecResponseBodyLimit bytes are inspected.
  const small = inlineEngine(`SecResponseBodyLimit 16\n${LEAK_RULES}`);
  assert.equal(small.responseBody?.maxBytes, 16);
  const early = small.inspect(req("/"));
  assert.deepEqual(ids(small.inspectResponse(early, response("ORA-00933 ....................."))), [
    5,
  ]);
  const late = small.inspect(req("/"));
  assert.deepEqual(ids(small.inspectResponse(late, response("..................ORA-00933"))), []);

  for (
    const [text, want] of [
      ["SecResponseBodyLimit 0", /test\.conf:1: SecResponseBodyLimit takes a positive number/],
      ["SecResponseBodyLimit lots", /SecResponseBodyLimit takes a positive number.*"lots"/],
      ["SecResponseBodyAccess Maybe", /test\.conf:1: SecResponseBodyAccess takes On or Off/],
      [
        `SecAction "id:9,phase:1,pass,nolog,ctl:responseBodyAccess=Of"`,
        /test\.conf:1: ctl:responseBodyAccess takes On or Off, got "Of"/,
      ],
    ] as const
  ) {
    assert.throws(() => inlineEngine(text), (err: unknown) => {
      assert.ok(err instanceof CrsError);
      assert.match(err.message, want);
      return true;
    });
  }
});

Deno.test("response phases: every verdict carries the response check (a monitoring proxy forwards blocked requests)", () => {
  const rules = `SecRule ARGS:x "@streq bad" "id:1,phase:1,deny,status:403,log"\n${LEAK_RULES}`;
  const block = inlineEngine(rules, { mode: "block" });
  const allowed = block.evaluate(req("/"));
  assert.equal(allowed.action, "allow");
  const out = allowed.response!(response("ORA-00933"));
  assert.equal(out.action, "block");
  assert.equal(out.status, 403);
  assert.deepEqual(out.matches.map((m) => m.ruleId), ["5"]);
  const denied = block.evaluate(req("/?x=bad"));
  assert.equal(denied.action, "block");
  assert.deepEqual(denied.response!(response("ORA-00933")).matches.map((m) => m.ruleId), ["5"]);

  const monitor = inlineEngine(rules, { mode: "monitor" }).evaluate(req("/"));
  const seen = monitor.response!(response("ORA-00933"));
  assert.equal(seen.action, "allow");
  assert.deepEqual(seen.matches.map((m) => m.ruleId), ["5"]);

  const requestsOnly = inlineEngine(rules, { mode: "block", responses: false });
  assert.equal(requestsOnly.responseBody, undefined);
  assert.equal(requestsOnly.evaluate(req("/")).response, undefined);
  const noResponseRules = inlineEngine(`SecRule ARGS "@contains x" "id:1,phase:1,pass,log"`);
  assert.equal(noResponseRules.evaluate(req("/")).response, undefined);
});

Deno.test("albedoResponse() answers /reflect as its JSON asks and every other request with 200", () => {
  const reflect = (spec: unknown) =>
    albedoResponse(req("/reflect", { method: "POST", bodyText: JSON.stringify(spec) }));
  const r = reflect({ status: 503, headers: { "X-A": "1" }, body: "<html><p>down</p>" });
  assert.equal(r.status, 503);
  assert.deepEqual(r.headers, [
    ["X-A", "1"],
    ["Content-Type", "text/html; charset=utf-8"],
    ["Content-Length", "17"],
  ]);
  assert.equal(new TextDecoder().decode(r.body), "<html><p>down</p>");
  const encoded = reflect({ encodedBody: btoa("<?xml version='1.0'?><a/>") });
  assert.equal(encoded.headers[0][1], "text/xml; charset=utf-8");
  const typed = reflect({ headers: { "content-type": "application/json" }, body: "{}" });
  assert.deepEqual(typed.headers[0], ["content-type", "application/json"]);
  assert.equal(reflect({ status: 42 }).status, 200);
  assert.equal(albedoResponse(req("/reflect", { method: "POST", bodyText: "{" })).status, 400);
  assert.equal(albedoResponse(req("/anything?x=1")).body?.length, 0);
  assert.equal(albedoResponse(req("/reflect")).status, 200); // GET: no specification

  assert.equal(sniffContentType(enc.encode("  <!DOCTYPE HTML>")), "text/html; charset=utf-8");
  assert.equal(sniffContentType(enc.encode("<bold>")), "text/plain; charset=utf-8");
  assert.equal(sniffContentType(enc.encode("<?php echo 1 ?>")), "text/plain; charset=utf-8");
  assert.equal(sniffContentType(new Uint8Array([0x89, 0x50, 0x00])), "application/octet-stream");
});

const crs = sharedCrs();

Deno.test({
  name: "response phases: the literal prefilter changes no decision on the CRS response tests",
  ignore: !crs,
  fn() {
    const load = (prefilter: boolean) =>
      loadCrs({
        setupFile: crs!.setup,
        rulesDir: crs!.rules,
        paranoia: 4,
        mode: "monitor",
        prefilter,
        files: denoFiles,
      });
    const fast = load(true);
    const slow = load(false);
    const cases: RuleRequest[] = [];
    for (const t of loadTests(crs!.tests)) {
      if (!t.file.startsWith("RESPONSE-")) continue;
      for (const s of t.stages) {
        const r = stageRequest(s.input);
        if (r) cases.push(r);
      }
    }
    assert.ok(cases.length >= 60, `${cases.length} response test requests`);
    let fired = 0;
    for (const r of cases) {
      const res = albedoResponse(r);
      const run = (e: typeof fast) => {
        const m = e.inspectResponse(e.inspect(r), res, true).matched;
        return m.map((x) => [x.rule.id, x.varName, x.value, x.log]);
      };
      const a = run(fast);
      assert.deepEqual(a, run(slow), r.target);
      if (a.some(([id]) => Number(id) >= 950000 && Number(id) < 959000)) fired++;
    }
    // The comparison means something only if the leakage rules fire on many of them.
    assert.ok(fired >= 40, `${fired} requests fired a leakage rule`);
  },
});

Deno.test("response phases: a plain allow ends the transaction's inspection, allow:request does not", () => {
  const rules = (allow: string) =>
    `SecRule REMOTE_ADDR "@ipMatch 192.0.2.7" "id:2,phase:1,${allow},nolog"\n${LEAK_RULES}`;
  const trusted = req("/", { remoteAddr: "192.0.2.7" });
  const run = (allow: string, mode: "block" | "monitor", r = trusted) => {
    const e = inlineEngine(rules(allow), { mode });
    return e.evaluate(r).response!(response("ORA-00933", "text/html", 500)).matches.map((m) =>
      m.ruleId
    );
  };
  assert.deepEqual(run("allow", "block"), []);
  assert.deepEqual(run("allow", "block", req("/")), ["3", "5"]); // someone else
  assert.deepEqual(run("allow:request", "block"), ["3", "5"]);
  assert.deepEqual(run("allow:phase", "block"), ["3", "5"]);
  // Monitoring executes no disruptive action, allow included (ModSecurity's DetectionOnly).
  assert.deepEqual(run("allow", "monitor"), ["3", "5"]);
});

Deno.test("response phases: ctl:responseBodyAccess=Off hides one transaction's body, ctl:requestBodyAccess=Off the request's", () => {
  const e = inlineEngine(`
SecRule REQUEST_FILENAME "@beginsWith /download/" "id:2,phase:1,pass,nolog,ctl:responseBodyAccess=Off"
SecRule REQUEST_FILENAME "@beginsWith /upload/" "id:7,phase:1,pass,nolog,ctl:requestBodyAccess=Off"
SecRule ARGS_POST:q "@streq evil" "id:8,phase:2,pass,log"
${LEAK_RULES}`);
  const res = response("ORA-00933", "x-leaky");
  assert.deepEqual(ids(e.inspectResponse(e.inspect(req("/download/a")), res)), [4]);
  assert.deepEqual(ids(e.inspectResponse(e.inspect(req("/page")), res)), [4, 5]);
  const form = {
    bodyText: "q=evil",
    headers: [["Content-Type", "application/x-www-form-urlencoded"]] as [string, string][],
  };
  assert.deepEqual(ids(e.inspect(req("/upload/a", form))), [7]); // 8 never saw the body
  assert.deepEqual(ids(e.inspect(req("/form", form))), [8]);
});

Deno.test("response phases: request variables read after the request phases are the ones they saw", () => {
  // The request phases end by dropping the request's variables and caches (Tx.release); a
  // response rule that reads one gets them built again from what the request phases parsed:
  // the same headers, arguments and body, with the body processor a phase 1 ctl chose.
  const e = inlineEngine(`
SecRule REQUEST_HEADERS:Content-Type "@contains text/plain" "id:1,phase:1,pass,nolog,ctl:requestBodyProcessor=JSON,ctl:forceRequestBodyVariable=On"
SecRule ARGS_POST:json.user "@streq mallory" "id:2,phase:2,pass,nolog,setvar:tx.seen=1"
SecRule REQUEST_HEADERS:User-Agent "@streq probe" "id:10,phase:3,pass,log"
SecRule ARGS_GET:q "@streq x" "id:11,phase:3,pass,log"
SecRule ARGS_POST:json.user "@streq mallory" "id:12,phase:4,pass,log,chain"
  SecRule RESPONSE_BODY "@contains secret" ""
SecRule REQUEST_BODY "@contains mallory" "id:13,phase:4,pass,log"
SecRule REQUEST_METHOD "@streq POST" "id:14,phase:5,pass,log,msg:'%{REQUEST_URI} %{TX.seen}'"
`);
  const headers: [string, string][] = [
    ["Host", "localhost"],
    ["User-Agent", "probe"],
    ["Content-Type", "text/plain"], // JSON only because rule 1 says so; REQUEST_BODY by force
  ];
  const request = req("/search?q=x", { headers, bodyText: `{"user":"mallory"}` });
  const t = e.inspect(request);
  assert.deepEqual(ids(t), [1, 2], "the JSON body was parsed in phase 2");
  // The caller's request may change once inspect() returns; the transaction kept its own.
  headers[1][1] = "changed";
  headers.push(["X-Extra", "1"]);
  request.body!.set(enc.encode(`{"user":"eve____"}`));
  const out = e.inspectResponse(t, response("the secret is out"), true);
  assert.deepEqual(ids(out), [10, 11, 12, 13, 14]);
  assert.equal(out.matched.at(-1)?.msg, "/search?q=x 1");
});

Deno.test("response phases: a transaction that ended in phase 1 has no body variables after it either", () => {
  const deny = inlineEngine(
    `
SecRule REQUEST_HEADERS:User-Agent "@streq probe" "id:1,phase:1,deny,status:403,log"
SecRule REQUEST_BODY "@contains mallory" "id:2,phase:4,pass,log"
SecRule &ARGS_POST "@eq 0" "id:3,phase:4,pass,log"
SecRule REQUEST_BODY_LENGTH "@eq 0" "id:4,phase:4,pass,log"
SecRule ARGS_GET:a "@streq 1" "id:5,phase:4,pass,log"
`,
    { mode: "block" },
  );
  const form: [string, string][] = [
    ["User-Agent", "probe"],
    ["Content-Type", "application/x-www-form-urlencoded"],
  ];
  const denied = deny.inspect(req("/?a=1", { headers: form, bodyText: "user=mallory" }));
  assert.deepEqual(ids(denied), [1]);
  // The proxy answers 403 without forwarding, but a caller may still ask: nothing of the body.
  assert.deepEqual(ids(deny.inspectResponse(denied, response("ok"))), [3, 4, 5]);
  // In monitor mode the deny does not stop the request phases: the body was parsed.
  const monitor = inlineEngine(
    `
SecRule REQUEST_HEADERS:User-Agent "@streq probe" "id:1,phase:1,deny,status:403,log"
SecRule REQUEST_BODY "@contains mallory" "id:2,phase:4,pass,log"
`,
    { mode: "monitor" },
  );
  const seen = monitor.inspect(req("/", { headers: form, bodyText: "user=mallory" }));
  assert.deepEqual(ids(monitor.inspectResponse(seen, response("ok"))), [2]);
});

Deno.test("JSON bodies: nesting beyond SecRequestBodyJsonDepthLimit is a body error, on any stack", () => {
  const rules = `
SecRule REQBODY_ERROR "@eq 1" "id:1,phase:2,pass,log,msg:'%{REQBODY_ERROR_MSG}'"
SecRule &ARGS_POST "@gt 0" "id:2,phase:2,pass,log"
SecRule REQBODY_ERROR "@eq 1" "id:3,phase:4,pass,log"
SecRule &ARGS_POST "@gt 0" "id:4,phase:4,pass,log"
`;
  const json: [string, string][] = [["Content-Type", "application/json"]];
  const nested = (n: number) => "[".repeat(n) + "1" + "]".repeat(n);
  const e = inlineEngine(rules);
  // The default is ModSecurity's recommended 512 levels.
  const ok = e.inspect(req("/", { headers: json, bodyText: nested(512) }));
  assert.deepEqual(ids(ok), [2]);
  assert.deepEqual(ids(e.inspectResponse(ok, response("x"))), [4]);
  const deep = e.inspect(req("/", { headers: json, bodyText: nested(513) }));
  assert.deepEqual(ids(deep), [1]);
  assert.match(deep.matched[0].msg, /nested deeper than 512 levels/);
  assert.deepEqual(ids(e.inspectResponse(deep, response("x"))), [3]);
  // Far deeper, from a deep stack and a shallow one: the same outcome, not a stack overflow.
  const body = nested(20_000);
  const onStack = (depth: number): TxResult =>
    depth === 0 ? e.inspect(req("/", { headers: json, bodyText: body })) : onStack(depth - 1);
  for (const r of [onStack(0), onStack(2_000)]) {
    assert.deepEqual(ids(r), [1]);
    assert.match(r.matched[0].msg, /nested deeper than 512 levels/);
    assert.deepEqual(ids(e.inspectResponse(r, response("x"))), [3]);
  }
  // The directive sets the limit, and a bad value is refused at load with file:line.
  const three = inlineEngine(`SecRequestBodyJsonDepthLimit 3\n${rules}`);
  assert.deepEqual(ids(three.inspect(req("/", { headers: json, bodyText: nested(3) }))), [2]);
  assert.deepEqual(ids(three.inspect(req("/", { headers: json, bodyText: nested(4) }))), [1]);
  assert.throws(
    () => inlineEngine("SecRequestBodyJsonDepthLimit deep"),
    /test\.conf:1: SecRequestBodyJsonDepthLimit takes a positive number of levels, got "deep"/,
  );
});
