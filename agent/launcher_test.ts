import assert from "node:assert/strict";
import { packArchive } from "./_archive.ts";
import { agentFiles, craftBundle, DAY, T0, testKey, testTenant } from "./_testing.ts";
import { encodeBundle, encryptPayload, parseBundle, SEGMENT_BYTES } from "./bundle.ts";
import { AgentError, type AgentErrorCode } from "./error.ts";
import {
  DECRYPT_FAILED_MESSAGE,
  launch,
  type LaunchDeps,
  LAUNCHER_EXIT_CODES,
  type LaunchOptions,
  type RefusalRecord,
  verifyBundle,
  type VerifyBundleOptions,
} from "./launcher.ts";

const release = testKey(1);
const tenant = testTenant(10);
const now = () => T0 + DAY;
const base: VerifyBundleOptions = { trustedKeys: [release], tenantKey: tenant, now };

async function refusal(
  bytes: Uint8Array,
  options: Partial<VerifyBundleOptions> = {},
): Promise<AgentError> {
  try {
    await verifyBundle(bytes, { ...base, ...options });
  } catch (e) {
    if (e instanceof AgentError) return e;
    throw e;
  }
  assert.fail("bundle was accepted");
}

Deno.test("verifyBundle() accepts a valid bundle and returns its verified files", async () => {
  const bytes = await craftBundle({ files: agentFiles() });
  const out = await verifyBundle(bytes, base);
  assert.equal(out.manifest.version, "1.0.0");
  assert.equal(out.releaseKid, release.kid);
  assert.equal(out.tenantKid, tenant.kid);
  assert.deepEqual([...out.files.keys()].sort(), ["lib.ts", "main.ts"]);
  assert.deepEqual(out.files.get("lib.ts"), agentFiles()[1].data);
});

Deno.test("verifyBundle() refuses every single-bit flip with the reason of its region", async () => {
  const bytes = await craftBundle({ files: agentFiles() });
  const p = parseBundle(bytes);
  const m = p.manifest.length;
  const ivAt = 18 + m + 8 + 64 + 32;
  const tagAt = bytes.length - 16;
  const regions: [string, number, number, AgentErrorCode][] = [
    ["magic", 0, 8, "BAD_FORMAT"],
    ["format version", 8, 10, "BAD_FORMAT"],
    ["lengths", 10, 18, "BAD_FORMAT"],
    ["manifest", 18, 18 + m, "BAD_SIGNATURE"],
    ["release key id", 18 + m, 26 + m, "UNKNOWN_KEY"],
    ["signature", 26 + m, 90 + m, "BAD_SIGNATURE"],
    ["MAC", 90 + m, 122 + m, "BAD_MAC"],
    ["IV", ivAt, ivAt + 12, "DECRYPT_FAILED"],
    ["ciphertext", ivAt + 12, tagAt, "DECRYPT_FAILED"],
    ["tag", tagAt, bytes.length, "DECRYPT_FAILED"],
  ];
  assert.equal(regions.at(-1)![2], bytes.length);
  const wrong: string[] = [];
  let flips = 0;
  const started = performance.now();
  for (const [name, from, to, expected] of regions) {
    for (let byte = from; byte < to; byte++) {
      for (let bit = 0; bit < 8; bit++) {
        const flipped = bytes.slice();
        flipped[byte] ^= 1 << bit;
        flips++;
        let code: string;
        try {
          await verifyBundle(flipped, base);
          code = "ACCEPTED";
        } catch (e) {
          if (!(e instanceof AgentError)) throw e;
          code = e.code;
          if (code === "DECRYPT_FAILED") assert.equal(e.message, DECRYPT_FAILED_MESSAGE);
        }
        if (code !== expected) wrong.push(`${name} byte ${byte} bit ${bit}: ${code}`);
      }
    }
  }
  const ms = performance.now() - started;
  assert.equal(flips, bytes.length * 8);
  assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} flips gave the wrong reason`);
  console.log(`  ${flips} flips of a ${bytes.length}-byte bundle in ${ms.toFixed(0)} ms`);
});

Deno.test("verifyBundle() refuses a wrong tenant key with the exact decrypt message", async () => {
  const bytes = await craftBundle({ files: agentFiles() });
  const e = await refusal(bytes, { tenantKey: testTenant(20) });
  assert.equal(e.code, "DECRYPT_FAILED");
  assert.equal(e.message, "cannot decrypt bundle: wrong tenant key or modified ciphertext");
});

Deno.test("verifyBundle() refuses a manifest MACed by another tenant's key", async () => {
  const bytes = await craftBundle({ files: agentFiles(), macTenant: testTenant(30) });
  assert.equal((await refusal(bytes)).code, "BAD_MAC");
});

Deno.test("verifyBundle() refuses an unknown and a revoked release key", async () => {
  const other = testKey(2);
  const bytes = await craftBundle({ files: agentFiles(), releaseKey: other });
  const unknown = await refusal(bytes);
  assert.equal(unknown.code, "UNKNOWN_KEY");
  assert.match(unknown.message, new RegExp(other.kid));
  const mine = await craftBundle({ files: agentFiles() });
  assert.equal((await refusal(mine, { revokedKids: [release.kid] })).code, "REVOKED_KEY");
  // Revoked wins even when the key is not listed as trusted.
  assert.equal((await refusal(bytes, { revokedKids: [other.kid] })).code, "REVOKED_KEY");
});

Deno.test("verifyBundle() accepts any trusted key during a rotation", async () => {
  const next = testKey(3);
  const bytes = await craftBundle({ files: agentFiles(), releaseKey: next });
  const out = await verifyBundle(bytes, { ...base, trustedKeys: [release, next] });
  assert.equal(out.releaseKid, next.kid);
});

Deno.test("verifyBundle() refuses a file swapped after signing", async () => {
  const files = agentFiles();
  const swapped = [files[0], { path: "lib.ts", data: new TextEncoder().encode("evil") }];
  const e = await refusal(await craftBundle({ files: swapped, listed: files }));
  assert.equal(e.code, "FILE_MISMATCH");
  assert.match(e.message, /lib\.ts/);
});

Deno.test("verifyBundle() refuses a file added and a file missing", async () => {
  const files = agentFiles();
  const added = [...files, { path: "extra.ts", data: new Uint8Array([1]) }];
  const e1 = await refusal(await craftBundle({ files: added, listed: files }));
  assert.equal(e1.code, "FILE_UNEXPECTED");
  assert.match(e1.message, /extra\.ts/);
  const e2 = await refusal(await craftBundle({ files: [files[0]], listed: files }));
  assert.equal(e2.code, "FILE_MISSING");
  assert.match(e2.message, /lib\.ts/);
});

Deno.test("verifyBundle() refuses a re-encrypted payload under an old manifest", async () => {
  // Same files, fresh IV: decryption, signature and every file digest pass; only the
  // ciphertext digest binds the payload to the signed manifest.
  const files = agentFiles();
  const original = parseBundle(await craftBundle({ files }));
  const iv = new Uint8Array(12).fill(9);
  const payload = await encryptPayload(tenant.bundleKey, iv, packArchive(files));
  const mixed = encodeBundle({ ...original, iv, payload });
  assert.equal((await refusal(mixed)).code, "CIPHERTEXT_MISMATCH");
});

Deno.test("verifyBundle() decrypts a multi-segment payload, copying or in place", async () => {
  const big = new Uint8Array(2 * SEGMENT_BYTES + 12345).map((_, i) => i * 7);
  const files = [...agentFiles(), { path: "big.bin", data: big }];
  const bytes = await craftBundle({ files });
  const copy = await verifyBundle(bytes, base);
  assert.deepEqual(copy.files.get("big.bin"), big);
  const inPlace = await verifyBundle(bytes.slice(), { ...base, inPlace: true });
  assert.deepEqual(inPlace.files.get("big.bin"), big);
  // The copying mode leaves its input intact.
  assert.equal((await verifyBundle(bytes, base)).manifest.version, "1.0.0");
  // An archive of exactly one segment: the only segment is full and final.
  const exact = [{ path: "main.ts", data: new Uint8Array(SEGMENT_BYTES - 21) }];
  const one = parseBundle(await craftBundle({ files: exact }));
  assert.equal(one.payload.length, SEGMENT_BYTES + 16);
  assert.equal(
    (await verifyBundle(encodeBundle(one), base)).files.get("main.ts")?.length,
    SEGMENT_BYTES - 21,
  );
});

Deno.test("verifyBundle() refuses reordered, dropped and modified payload segments", async () => {
  const big = new Uint8Array(2 * SEGMENT_BYTES + 100).fill(3);
  const bytes = await craftBundle({ files: [...agentFiles(), { path: "big.bin", data: big }] });
  const p = parseBundle(bytes);
  const stride = SEGMENT_BYTES + 16;
  const seg = (i: number) => p.payload.slice(i * stride, (i + 1) * stride);

  const swapped = p.payload.slice();
  swapped.set(seg(1), 0);
  swapped.set(seg(0), stride);
  const e1 = await refusal(encodeBundle({ ...p, payload: swapped }));
  assert.equal(e1.code, "DECRYPT_FAILED");

  // Dropping the last segment (and fixing the header) leaves a last segment not marked final.
  const truncated = encodeBundle({ ...p, payload: p.payload.slice(0, 2 * stride) });
  assert.equal((await refusal(truncated)).code, "DECRYPT_FAILED");

  const flipped = bytes.slice();
  flipped[p.iv.byteOffset - bytes.byteOffset + 12 + stride + 1000] ^= 4;
  assert.equal((await refusal(flipped)).code, "DECRYPT_FAILED");
});

Deno.test("verifyBundle() refuses a validly signed older version (rollback)", async () => {
  const older = await craftBundle({ files: agentFiles(), version: "1.2.0" });
  const e = await refusal(older, { lastVersion: "1.3.0" });
  assert.equal(e.code, "ROLLBACK");
  assert.match(e.message, /1\.2\.0 is older than 1\.3\.0/);
  const rc = await craftBundle({ files: agentFiles(), version: "1.3.0-rc.1" });
  assert.equal((await refusal(rc, { lastVersion: "1.3.0" })).code, "ROLLBACK");
  const same = await craftBundle({ files: agentFiles(), version: "1.3.0" });
  await verifyBundle(same, { ...base, lastVersion: "1.3.0" });
  await verifyBundle(same, { ...base, lastVersion: "1.3.0-rc.1" });
});

Deno.test("verifyBundle() refuses an expired manifest, at and after the instant", async () => {
  const bytes = await craftBundle({ files: agentFiles(), expires: T0 + DAY });
  assert.equal((await refusal(bytes, { now: () => T0 + DAY })).code, "EXPIRED");
  assert.equal((await refusal(bytes, { now: () => T0 + 2 * DAY })).code, "EXPIRED");
  await verifyBundle(bytes, { ...base, now: () => T0 + DAY - 1 });
});

Deno.test("verifyBundle() checks decryption before the signature", async () => {
  // Unknown key and wrong tenant key together: the decryption failure is reported.
  const bytes = await craftBundle({ files: agentFiles(), releaseKey: testKey(2) });
  assert.equal((await refusal(bytes, { tenantKey: testTenant(20) })).code, "DECRYPT_FAILED");
});

Deno.test("verifyBundle() refuses a signed manifest whose entry is not a file", async () => {
  const e = await refusal(await craftBundle({ files: agentFiles(), entry: "nope.ts" }));
  assert.equal(e.code, "BAD_MANIFEST");
});

// --- launch(): the steps around the checks ---

class MemoryState {
  version: string | null;
  writes: string[] = [];
  constructor(version: string | null = null) {
    this.version = version;
  }
  read = (): Promise<string | null> => Promise.resolve(this.version);
  write = (version: string): Promise<void> => {
    this.writes.push(version);
    this.version = version;
    return Promise.resolve();
  };
}

function setup(bytes: Uint8Array, state = new MemoryState()) {
  const records: RefusalRecord[] = [];
  const options: LaunchOptions = {
    trustedKeys: [release],
    tenantKey: tenant,
    now,
    mode: "run",
    bundleName: "agent.bundle",
    stateDir: "/var/lib/infraveil",
    args: ["--flag"],
  };
  const deps: LaunchDeps = {
    readBundle: () => Promise.resolve(bytes),
    state,
    recordRefusal: (r) => {
      records.push(r);
      return Promise.resolve();
    },
  };
  return { options, deps, records, state };
}

Deno.test("launch() runs an entry that imports a sibling, passing the verified bundle", async () => {
  const marker = `sibling-${crypto.randomUUID()}`;
  const { options, deps, state, records } = setup(
    await craftBundle({
      files: agentFiles(marker),
      version: "2.0.0",
    }),
  );
  const outcome = await launch(options, deps);
  assert.equal(outcome.exitCode, 0, outcome.message);
  // deno-lint-ignore no-explicit-any
  const launched = (globalThis as any).__launched;
  assert.equal(launched.tag, marker);
  assert.equal(launched.ctx.bundle.manifest.version, "2.0.0");
  assert.equal(launched.ctx.bundle.releaseKid, release.kid);
  assert.equal(launched.ctx.bundle.files.get("lib.ts").length, agentFiles(marker)[1].data.length);
  assert.equal(launched.ctx.stateDir, "/var/lib/infraveil");
  assert.deepEqual(launched.ctx.args, ["--flag"]);
  assert.deepEqual(state.writes, ["2.0.0"]);
  assert.deepEqual(records, []);
});

Deno.test("launch() in verify mode neither records the version nor imports anything", async () => {
  const { options, deps, state } = setup(await craftBundle({ files: agentFiles() }));
  let imported = false;
  const outcome = await launch({ ...options, mode: "verify" }, {
    ...deps,
    importEntry: () => {
      imported = true;
      return Promise.resolve({});
    },
  });
  assert.equal(outcome.exitCode, 0);
  assert.match(outcome.message, /verified: version 1\.0\.0/);
  assert.equal(imported, false);
  assert.deepEqual(state.writes, []);
});

Deno.test("launch() refuses without importing, records the refusal, exits with its code", async () => {
  const cases: [string, Promise<Uint8Array>, AgentErrorCode][] = [
    [
      "wrong tenant",
      craftBundle({ files: agentFiles(), tenantKey: testTenant(40) }),
      "DECRYPT_FAILED",
    ],
    ["unknown key", craftBundle({ files: agentFiles(), releaseKey: testKey(5) }), "UNKNOWN_KEY"],
    ["rollback", craftBundle({ files: agentFiles(), version: "0.9.0" }), "ROLLBACK"],
    ["expired", craftBundle({ files: agentFiles(), expires: T0 + 1000 }), "EXPIRED"],
    ["garbage", Promise.resolve(new Uint8Array(40)), "BAD_FORMAT"],
  ];
  const codes = new Set<number>();
  for (const [name, bytes, code] of cases) {
    const { options, deps, records, state } = setup(await bytes, new MemoryState("1.0.0"));
    let imported = false;
    const outcome = await launch(options, {
      ...deps,
      importEntry: () => {
        imported = true;
        return Promise.resolve({});
      },
    });
    assert.equal(outcome.error?.code, code, name);
    assert.equal(outcome.exitCode, LAUNCHER_EXIT_CODES[code], name);
    assert.equal(imported, false, name);
    assert.deepEqual(state.writes, [], name);
    assert.equal(records.length, 1, name);
    assert.equal(records[0].type, "agent.launch.refused");
    assert.equal(records[0].data.code, code);
    assert.equal(records[0].data.bundle, "agent.bundle");
    codes.add(outcome.exitCode);
  }
  assert.equal(codes.size, cases.length, "each failure has its own exit code");
});

Deno.test("launch() exit codes are distinct for every launcher refusal", () => {
  const launcherCodes: AgentErrorCode[] = [
    "BUNDLE_UNREADABLE",
    "BAD_FORMAT",
    "DECRYPT_FAILED",
    "UNKNOWN_KEY",
    "REVOKED_KEY",
    "BAD_SIGNATURE",
    "BAD_MAC",
    "BAD_MANIFEST",
    "BAD_ARCHIVE",
    "FILE_MISMATCH",
    "FILE_MISSING",
    "FILE_UNEXPECTED",
    "CIPHERTEXT_MISMATCH",
    "ROLLBACK",
    "EXPIRED",
    "STATE_ERROR",
    "LOAD_FAILED",
    "ENTRY_FAILED",
  ];
  const exits = launcherCodes.map((c) => LAUNCHER_EXIT_CODES[c]);
  assert.equal(new Set(exits).size, exits.length);
  for (const e of exits) assert.ok(e >= 10 && e <= 27);
});

Deno.test("launch() reports an unreadable bundle, a broken state and a failing recorder", async () => {
  const { options, deps } = setup(new Uint8Array());
  const unreadable = await launch(options, {
    ...deps,
    readBundle: () => Promise.reject(new Error("no such file")),
  });
  assert.equal(unreadable.error?.code, "BUNDLE_UNREADABLE");
  assert.equal(unreadable.exitCode, 10);

  const bytes = await craftBundle({ files: agentFiles() });
  const broken = await launch(options, {
    ...deps,
    readBundle: () => Promise.resolve(bytes),
    state: { read: () => Promise.reject(new Error("EIO")), write: () => Promise.resolve() },
  });
  assert.equal(broken.error?.code, "STATE_ERROR");

  const unwritable = await launch(options, {
    ...deps,
    readBundle: () => Promise.resolve(bytes),
    state: { read: () => Promise.resolve(null), write: () => Promise.reject(new Error("EROFS")) },
    importEntry: () => assert.fail("imported although the version was not recorded"),
  });
  assert.equal(unwritable.error?.code, "STATE_ERROR");

  const failingRecorder = await launch(options, {
    ...deps,
    readBundle: () => Promise.resolve(new Uint8Array(3)),
    recordRefusal: () => Promise.reject(new Error("ledger is read-only")),
  });
  assert.equal(failingRecorder.error?.code, "BAD_FORMAT");
  assert.equal(failingRecorder.exitCode, LAUNCHER_EXIT_CODES.BAD_FORMAT);
  assert.match(String(failingRecorder.recordError), /read-only/);
});

Deno.test("launch() refuses an entry without start() and reports an entry that throws", async () => {
  const enc = new TextEncoder();
  const noStart = await craftBundle({
    files: [{ path: "main.ts", data: enc.encode("export const x = 1;") }],
  });
  const a = setup(noStart);
  const outcome = await launch(a.options, a.deps);
  assert.equal(outcome.error?.code, "LOAD_FAILED");
  assert.match(outcome.message, /start\(context\)/);

  const throws = await craftBundle({
    files: [{
      path: "main.ts",
      data: enc.encode("export function start(): never { throw new Error('boom'); }"),
    }],
  });
  const b = setup(throws);
  const failed = await launch(b.options, b.deps);
  assert.equal(failed.error?.code, "ENTRY_FAILED");
  assert.equal(failed.exitCode, 27);
  assert.match(failed.message, /boom/);
  assert.equal(b.records.length, 0, "a failing entry is not a refusal of the bundle");
});

Deno.test("launch() returns the entry's exit code", async () => {
  const bytes = await craftBundle({
    files: [{
      path: "main.ts",
      data: new TextEncoder().encode("export async function start() { return 42; }"),
    }],
  });
  const { options, deps } = setup(bytes);
  assert.equal((await launch(options, deps)).exitCode, 42);
});

Deno.test("launch() refuses a bundle importing code from outside itself, before running it", async () => {
  const bytes = await craftBundle({
    files: [{
      path: "main.ts",
      data: new TextEncoder().encode(
        `import "npm:left-pad";\nglobalThis.__outside = true;\nexport function start() {}`,
      ),
    }],
  });
  const { options, deps, state } = setup(bytes);
  const outcome = await launch(options, deps);
  assert.equal(outcome.error?.code, "LOAD_FAILED");
  assert.match(outcome.message, /npm:left-pad/);
  // deno-lint-ignore no-explicit-any
  assert.equal((globalThis as any).__outside, undefined);
  assert.deepEqual(state.writes, []);
});
