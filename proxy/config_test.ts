import assert from "node:assert/strict";
import fc from "fast-check";
import {
  defaultConfig,
  parseBackend,
  parseConfig,
  parseHostPort,
  resolveConfig,
} from "./config.ts";
import { ProxyError } from "./errors.ts";

Deno.test("parseConfig() accepts JSONC with comments and trailing commas and fills defaults", () => {
  const c = parseConfig(
    `{
      // block mode is the default
      "listen": "127.0.0.1:9000",
      "backend": "http://127.0.0.1:3000",
      "limits": { "maxBodyBytes": 0, },
      "rules": { "engine": "crs", "crsDir": "/opt/crs", "paranoia": 2 },
    }`,
    "proxy.jsonc",
  );
  assert.equal(c.listen, "127.0.0.1:9000");
  assert.equal(c.limits.maxBodyBytes, 0);
  assert.equal(c.limits.maxHeaderCount, defaultConfig().limits.maxHeaderCount);
  assert.equal(c.rules.paranoia, 2);
  assert.equal(c.rules.baseline, true);
  assert.equal(c.debugHeaders, false);
  assert.equal(c.mode, "block");
});

Deno.test("parseConfig() names file:line:col for syntax errors", () => {
  assert.throws(
    () => parseConfig(`{\n  "mode": "block"\n  "listen": "x"\n}`, "p.jsonc"),
    (e: unknown) =>
      e instanceof ProxyError && e.code === "CONFIG_SYNTAX" && /^p\.jsonc:3:3: /.test(e.message),
  );
});

Deno.test("parseConfig() names the key and position of invalid values and unknown keys", () => {
  const cases: [string, RegExp][] = [
    [`{\n  "mode": "blok"\n}`, /^p:2:3: mode must be one of "block", "monitor"/],
    [
      `{\n  "limits": {\n    "maxHeaderCount": -1\n  }\n}`,
      /^p:3:5: limits\.maxHeaderCount must be between/,
    ],
    [`{\n  "limts": {}\n}`, /^p:2:3: unknown key "limts"/],
    [
      `{ "access": { "deny": ["10.0.0.0/8", "not-an-ip"] } }`,
      /^p:1:38: access\.deny\[1\]: "not-an-ip" is not an IP/,
    ],
    [`{ "backend": "ftp://x" }`, /backend must be http/],
    [`{ "backend": "http://x:1/path" }`, /without path/],
    [`{ "listen": "8080" }`, /listen must be "host:port"/],
    [`{ "rules": { "engine": "crs" } }`, /rules\.crsDir is required/],
    [`{ "tracing": { "otlp": { "batchSize": 5 } } }`, /tracing\.otlp\.url is required/],
    [`{ "tracing": { "sampleRate": 1.5 } }`, /tracing\.sampleRate must be between 0 and 1/],
    [`[1]`, /must be an object/],
  ];
  for (const [text, re] of cases) {
    assert.throws(
      () => parseConfig(text, "p"),
      (e: unknown) => e instanceof ProxyError && e.code === "CONFIG_INVALID" && re.test(e.message),
      text,
    );
  }
});

Deno.test("parseConfig() never throws anything but ProxyError (property)", () => {
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.json()), (text) => {
      try {
        parseConfig(text, "f");
      } catch (e) {
        if (!(e instanceof ProxyError)) throw e;
      }
    }),
    { numRuns: 300 },
  );
});

Deno.test("resolveConfig() does not mutate its input", () => {
  const input = { limits: { maxBodyBytes: 5 } };
  const a = resolveConfig(input);
  a.limits.maxHeaderCount = 1;
  assert.deepEqual(input, { limits: { maxBodyBytes: 5 } });
  assert.equal(resolveConfig({}).limits.maxHeaderCount, 100);
});

Deno.test("parseHostPort() and parseBackend() parse strictly", () => {
  assert.deepEqual(parseHostPort("127.0.0.1:80"), { hostname: "127.0.0.1", port: 80 });
  assert.deepEqual(parseHostPort("[::1]:0"), { hostname: "::1", port: 0 });
  assert.equal(parseHostPort("127.0.0.1:70000"), undefined);
  assert.equal(parseHostPort("127.0.0.1"), undefined);
  assert.deepEqual(parseBackend("http://127.0.0.1:3000"), {
    tls: false,
    hostname: "127.0.0.1",
    port: 3000,
    authority: "127.0.0.1:3000",
  });
  assert.equal((parseBackend("https://example.com") as { port: number }).port, 443);
  assert.equal(typeof parseBackend("http://u:p@x/"), "string");
});
