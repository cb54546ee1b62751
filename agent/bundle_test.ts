import assert from "node:assert/strict";
import fc from "fast-check";
import { canonicalJson, utf8 } from "@infraveil/trust";
import { agentFiles, craftBundle, T0, testKey, testTenant } from "./_testing.ts";
import {
  createBundle,
  encodeBundle,
  MANIFEST_FORMAT,
  parseBundle,
  parseManifest,
} from "./bundle.ts";
import { AgentError } from "./error.ts";

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof AgentError) return e.code;
    throw e;
  }
  return "ACCEPTED";
}

Deno.test("parseBundle() splits the sections at the documented offsets", async () => {
  const bytes = await craftBundle({ files: agentFiles() });
  const p = parseBundle(bytes);
  const m = p.manifest.length;
  assert.equal(new TextDecoder().decode(bytes.subarray(0, 8)), "IVBUNDLE");
  assert.equal(p.releaseKid, testKey(1).kid);
  assert.equal(p.signature.byteOffset - bytes.byteOffset, 26 + m);
  assert.equal(p.iv.byteOffset - bytes.byteOffset, 122 + m);
  assert.equal(p.encrypted.length, 12 + p.payload.length);
  assert.deepEqual(encodeBundle(p), bytes);
});

Deno.test("parseBundle() refuses wrong magic, version, lengths and truncation", async () => {
  const bytes = await craftBundle({ files: agentFiles() });
  assert.equal(code(() => parseBundle(bytes.subarray(0, bytes.length - 1))), "BAD_FORMAT");
  assert.equal(code(() => parseBundle(new Uint8Array([...bytes, 0]))), "BAD_FORMAT");
  const v2 = bytes.slice();
  v2[9] = 2;
  assert.equal(code(() => parseBundle(v2)), "BAD_FORMAT");
  assert.equal(code(() => parseBundle(new Uint8Array(0))), "BAD_FORMAT");
});

Deno.test("parseBundle() throws only AgentError on arbitrary bytes", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (tail) => {
      const input = new Uint8Array([...utf8("IVBUNDLE"), 0, 1, ...tail]);
      const c = code(() => parseBundle(input));
      return c === "BAD_FORMAT" || c === "ACCEPTED";
    }),
    { numRuns: 2000 },
  );
});

const good = {
  format: MANIFEST_FORMAT,
  version: "1.0.0",
  created: "2026-01-01T00:00:00Z",
  expires: "2026-02-01T00:00:00Z",
  entry: "main.ts",
  files: [{ path: "main.ts", sha256: "a".repeat(64), size: 1 }],
  ciphertext_sha256: "b".repeat(64),
};

Deno.test("parseManifest() accepts the canonical form and refuses every deviation", () => {
  assert.equal(parseManifest(utf8(canonicalJson(good))).version, "1.0.0");
  const bad: [string, Uint8Array][] = [
    ["not canonical", utf8(JSON.stringify(good, null, 1))],
    [
      "duplicate key",
      utf8(
        canonicalJson(good).replace(
          '{"ciphertext_sha256"',
          '{"version":"9.9.9","ciphertext_sha256"',
        ),
      ),
    ],
    ["unknown field", utf8(canonicalJson({ ...good, extra: 1 }))],
    [
      "missing field",
      utf8(canonicalJson(Object.fromEntries(Object.entries(good).filter(([k]) => k !== "entry")))),
    ],
    ["bad version", utf8(canonicalJson({ ...good, version: "1.0" }))],
    ["expires before created", utf8(canonicalJson({ ...good, expires: good.created }))],
    ["entry not listed", utf8(canonicalJson({ ...good, entry: "x.ts" }))],
    ["bad path", utf8(canonicalJson({ ...good, files: [{ ...good.files[0], path: "../x" }] }))],
    ["upper-case hex", utf8(canonicalJson({ ...good, ciphertext_sha256: "B".repeat(64) }))],
    [
      "unsorted",
      utf8(canonicalJson({ ...good, files: [{ ...good.files[0], path: "z" }, good.files[0]] })),
    ],
    ["not JSON", utf8("{")],
    ["not UTF-8", new Uint8Array([0xff])],
  ];
  for (const [name, bytes] of bad) {
    assert.equal(code(() => parseManifest(bytes)), "BAD_MANIFEST", name);
  }
});

Deno.test("createBundle() refuses a bad version, an absent entry and a past expiry", async () => {
  const opts = {
    entry: "main.ts",
    version: "1.0.0",
    expires: T0 + 1000 * 3600,
    releaseKey: testKey(1),
    tenantKey: testTenant(10),
    now: () => T0,
  };
  const files = agentFiles();
  await createBundle(files, opts);
  for (
    const o of [{ ...opts, version: "1.0.0+b" }, { ...opts, entry: "x.ts" }, {
      ...opts,
      expires: T0,
    }]
  ) {
    await assert.rejects(
      createBundle(files, o),
      (e) => e instanceof AgentError && e.code === "BAD_INPUT",
    );
  }
});

Deno.test("createBundle() uses a fresh IV for every bundle", async () => {
  const opts = {
    entry: "main.ts",
    version: "1.0.0",
    expires: T0 + 1000 * 3600,
    releaseKey: testKey(1),
    tenantKey: testTenant(10),
    now: () => T0,
  };
  const a = parseBundle(await createBundle(agentFiles(), opts));
  const b = parseBundle(await createBundle(agentFiles(), opts));
  assert.notDeepEqual(a.iv, b.iv);
});
