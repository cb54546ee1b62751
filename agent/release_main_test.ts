import assert from "node:assert/strict";
import {
  canonicalBytes,
  encodeBase64,
  formatPrivateKeyFile,
  formatPublicKeyFile,
  signDsse,
  toMinisignPublicKey,
  verifyMinisign,
} from "@infraveil/trust";
import { capture, commandAvailable } from "./_testing_cli.ts";
import { T0, testKey } from "./_testing.ts";
import { releaseMain, verifySignatureMain } from "./release_main.ts";
import { parseTenantKeyFile } from "./tenant_key.ts";
import { verifyBundle } from "./launcher.ts";

const key = testKey(1);
const other = testKey(2);
const now = () => T0;

async function workspace() {
  const dir = await Deno.makeTempDir({ prefix: "iv-release-" });
  await Deno.writeTextFile(`${dir}/release.key`, formatPrivateKeyFile(key), { mode: 0o600 });
  await Deno.chmod(`${dir}/release.key`, 0o600);
  await Deno.writeTextFile(`${dir}/release.pub`, formatPublicKeyFile(key));
  await Deno.writeTextFile(`${dir}/other.pub`, formatPublicKeyFile(other));
  await Deno.writeTextFile(`${dir}/app.tar.gz`, "release contents v1\n");
  await Deno.writeTextFile(`${dir}/other.tar.gz`, "another artifact\n");
  const sign = (file: string) =>
    capture(() =>
      releaseMain(
        [
          "sign",
          "--file",
          `${dir}/${file}`,
          "--key",
          `${dir}/release.key`,
          "--source-revision",
          "a".repeat(40),
          "--source-uri",
          "git+https://example.org/app.git",
        ],
        { now },
      )
    );
  return { dir, sign, [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }) };
}

const verify = (...args: string[]) => capture(() => verifySignatureMain(args));

Deno.test("release sign writes a DSSE attestation and a .minisig that verify", async () => {
  await using w = await workspace();
  const signed = await w.sign("app.tar.gz");
  assert.equal(signed.code, 0, signed.stderr);
  const file = `${w.dir}/app.tar.gz`;
  const envelope = JSON.parse(await Deno.readTextFile(`${file}.attestation.json`));
  assert.equal(envelope.payloadType, "application/vnd.in-toto+json");
  assert.equal(envelope.signatures[0].keyid, key.kid);
  const statement = JSON.parse(atob(envelope.payload));
  assert.equal(statement._type, "https://in-toto.io/Statement/v1");
  assert.equal(statement.subject[0].name, "app.tar.gz");
  assert.equal(statement.predicateType, "https://slsa.dev/provenance/v1");
  assert.equal(statement.predicate.runDetails.builder.id, "urn:infraveil:builder:cli");
  assert.equal(statement.predicate.runDetails.metadata.finishedOn, "2026-01-01T00:00:00.000Z");
  assert.deepEqual(statement.predicate.buildDefinition.resolvedDependencies, [
    { uri: "git+https://example.org/app.git", digest: { gitCommit: "a".repeat(40) } },
  ]);
  const minisig = await Deno.readTextFile(`${file}.minisig`);
  verifyMinisign(await Deno.readFile(file), minisig, key);
  assert.match(
    signed.stdout,
    new RegExp(`minisign -Vm .* -P ${toMinisignPublicKey(key).replace(/[+/]/g, "\\$&")}`),
  );
});

Deno.test("verify signature accepts a key file, a raw base64 key and a minisign key", async () => {
  await using w = await workspace();
  await w.sign("app.tar.gz");
  const file = `${w.dir}/app.tar.gz`;
  for (
    const pubkey of [`${w.dir}/release.pub`, encodeBase64(key.publicKey), toMinisignPublicKey(key)]
  ) {
    const r = await verify(
      "--file",
      file,
      "--attestation",
      `${file}.attestation.json`,
      "--pubkey",
      pubkey,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /subject: +app\.tar\.gz/);
    assert.match(r.stdout, /sha256: +[0-9a-f]{64}/);
    assert.match(r.stdout, new RegExp(`signer: +kid ${key.kid}`));
    assert.match(
      r.stdout,
      /predicate: https:\/\/slsa\.dev\/provenance\/v1; builder urn:infraveil:builder:cli/,
    );
    assert.match(r.stdout, /source git\+https:\/\/example\.org\/app\.git @ a{40}/);
  }
});

Deno.test("verify signature fails (1) with the reason for each kind of tampering", async () => {
  await using w = await workspace();
  await w.sign("app.tar.gz");
  await w.sign("other.tar.gz");
  const file = `${w.dir}/app.tar.gz`;
  const att = `${file}.attestation.json`;
  const pub = `${w.dir}/release.pub`;
  const envelope = JSON.parse(await Deno.readTextFile(att));
  const write = async (name: string, value: unknown) => {
    await Deno.writeTextFile(
      `${w.dir}/${name}`,
      typeof value === "string" ? value : JSON.stringify(value),
    );
    return `${w.dir}/${name}`;
  };
  const statement = JSON.parse(atob(envelope.payload));
  statement.subject[0].digest.sha256 = "0".repeat(64);
  const sig = atob(envelope.signatures[0].sig);
  const flippedSig = encodeBase64(
    Uint8Array.from(sig, (c, i) => c.charCodeAt(0) ^ (i === 5 ? 1 : 0)),
  );
  await Deno.writeTextFile(`${w.dir}/tampered.tar.gz`, "release contents v2\n");
  await Deno.copyFile(att, `${w.dir}/tampered.tar.gz.attestation.json`);
  const wrongType = signDsse("text/plain", canonicalBytes(JSON.parse(atob(envelope.payload))), key);

  const cases: [string, string[], RegExp][] = [
    ["tampered file", [
      "--file",
      `${w.dir}/tampered.tar.gz`,
      "--attestation",
      att,
      "--pubkey",
      pub,
      "--name",
      "app.tar.gz",
    ], /digest mismatch/],
    ["tampered payload", [
      "--file",
      file,
      "--attestation",
      await write("p.json", { ...envelope, payload: btoa(JSON.stringify(statement)) }),
      "--pubkey",
      pub,
    ], /bad signature/],
    ["tampered signature", [
      "--file",
      file,
      "--attestation",
      await write("s.json", {
        ...envelope,
        signatures: [{ ...envelope.signatures[0], sig: flippedSig }],
      }),
      "--pubkey",
      pub,
    ], /bad signature/],
    [
      "wrong key",
      ["--file", file, "--attestation", att, "--pubkey", `${w.dir}/other.pub`],
      /unknown key/,
    ],
    ["another artifact's attestation", [
      "--file",
      file,
      "--attestation",
      `${w.dir}/other.tar.gz.attestation.json`,
      "--pubkey",
      pub,
    ], /subject mismatch/],
    ["wrong payload type", [
      "--file",
      file,
      "--attestation",
      await write("t.json", wrongType),
      "--pubkey",
      pub,
    ], /wrong payload type/],
    [
      "revoked key",
      ["--file", file, "--attestation", att, "--pubkey", pub, "--revoked", key.kid],
      /revoked key/,
    ],
    ["revocation list", [
      "--file",
      file,
      "--attestation",
      att,
      "--pubkey",
      pub,
      "--revoked-file",
      await write("revoked.txt", `# rotated\n${key.kid}\n`),
    ], /revoked key/],
  ];
  for (const [name, args, reason] of cases) {
    const r = await verify(...args);
    assert.equal(r.code, 1, `${name}: ${r.stderr}`);
    assert.match(r.stderr, /^verification failed/, name);
    assert.match(r.stderr, reason, name);
    assert.equal(r.stdout, "", name);
  }
});

Deno.test("verify signature exits 2 on unreadable or malformed input", async () => {
  await using w = await workspace();
  await w.sign("app.tar.gz");
  const file = `${w.dir}/app.tar.gz`;
  const att = `${file}.attestation.json`;
  const pub = `${w.dir}/release.pub`;
  await Deno.writeTextFile(`${w.dir}/bad.json`, "{not json");
  await Deno.writeTextFile(`${w.dir}/empty.json`, "{}");
  await Deno.writeTextFile(`${w.dir}/badlist.txt`, "not-a-kid\n");
  const cases: [string, string[], RegExp][] = [
    [
      "malformed JSON",
      ["--file", file, "--attestation", `${w.dir}/bad.json`, "--pubkey", pub],
      /not JSON/,
    ],
    [
      "not an envelope",
      ["--file", file, "--attestation", `${w.dir}/empty.json`, "--pubkey", pub],
      /payloadType/,
    ],
    [
      "missing file",
      ["--file", `${w.dir}/nope`, "--attestation", att, "--pubkey", pub],
      /no such file/,
    ],
    ["missing attestation", [
      "--file",
      file,
      "--attestation",
      `${w.dir}/nope.json`,
      "--pubkey",
      pub,
    ], /no such file/],
    [
      "bad key",
      ["--file", file, "--attestation", att, "--pubkey", "not-a-key"],
      /not a base64 Ed25519 key/,
    ],
    ["bad revocation list", [
      "--file",
      file,
      "--attestation",
      att,
      "--pubkey",
      pub,
      "--revoked-file",
      `${w.dir}/badlist.txt`,
    ], /badlist\.txt:1/],
    ["missing flag", ["--file", file], /needs --file, --attestation and --pubkey/],
    ["unknown flag", ["--bogus"], /bogus/],
  ];
  for (const [name, args, pattern] of cases) {
    const r = await verify(...args);
    assert.equal(r.code, 2, `${name}: ${r.stderr}`);
    assert.match(r.stderr, pattern, name);
  }
  assert.equal((await verify("--help")).code, 0);
});

Deno.test("release tenant-keys writes a 0600 key file and refuses to overwrite it", async () => {
  await using w = await workspace();
  const path = `${w.dir}/tenant.key`;
  const r = await capture(() => releaseMain(["tenant-keys", "--out", path]));
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
  const key = parseTenantKeyFile(await Deno.readTextFile(path), path);
  assert.match(r.stdout, new RegExp(key.kid));
  const again = await capture(() => releaseMain(["tenant-keys", "--out", path]));
  assert.equal(again.code, 2);
  assert.match(again.stderr, /already exists/);
});

Deno.test("release bundle packs a directory into a bundle the launcher accepts", async () => {
  await using w = await workspace();
  await Deno.mkdir(`${w.dir}/src/lib`, { recursive: true });
  await Deno.writeTextFile(
    `${w.dir}/src/main.ts`,
    `import "./lib/x.ts"; export function start() {}`,
  );
  await Deno.writeTextFile(`${w.dir}/src/lib/x.ts`, `export {};`);
  await capture(() => releaseMain(["tenant-keys", "--out", `${w.dir}/tenant.key`]));
  const args = [
    "bundle",
    "--src",
    `${w.dir}/src`,
    "--entry",
    `${w.dir}/src/main.ts`,
    "--version",
    "1.4.0",
    "--release-key",
    `${w.dir}/release.key`,
    "--tenant-keys",
    `${w.dir}/tenant.key`,
    "--out",
    `${w.dir}/agent.bundle`,
    "--expires",
    "30d",
  ];
  const r = await capture(() => releaseMain(args, { now }));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /version 1\.4\.0, 2 files, entry main\.ts/);
  const tenantKey = parseTenantKeyFile(await Deno.readTextFile(`${w.dir}/tenant.key`), "t");
  const out = await verifyBundle(await Deno.readFile(`${w.dir}/agent.bundle`), {
    trustedKeys: [key],
    tenantKey,
    now: () => T0 + 1000,
  });
  assert.deepEqual(out.manifest.files.map((f) => f.path), ["lib/x.ts", "main.ts"]);
  assert.equal(out.manifest.expires, "2026-01-31T00:00:00Z");

  const bad = await capture(() =>
    releaseMain([...args.slice(0, 6), "1.4", ...args.slice(7)], { now })
  );
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /Version "1\.4"/);
  await Deno.symlink("/etc/passwd", `${w.dir}/src/link`);
  const link = await capture(() => releaseMain(args, { now }));
  assert.equal(link.code, 2);
  assert.match(link.stderr, /symbolic link/);
});

Deno.test("release: unknown commands and flags exit 2, --help exits 0", async () => {
  assert.equal((await capture(() => releaseMain(["frobnicate"]))).code, 2);
  assert.equal((await capture(() => releaseMain(["sign", "--nope"]))).code, 2);
  assert.equal((await capture(() => releaseMain([]))).code, 2);
  assert.equal((await capture(() => releaseMain(["--help"]))).code, 0);
  assert.equal((await capture(() => releaseMain(["bundle", "--help"]))).code, 0);
});

const minisign = await commandAvailable("minisign", ["-v"]);
const ci = Deno.env.get("CI") === "true";
if (!minisign && !ci) {
  console.log(
    "SKIPPED minisign interop: /usr/bin/minisign is not installed (apt-get install minisign)",
  );
}

Deno.test({
  name: "minisign -Vm verifies the .minisig of release sign, and refuses a modified file",
  ignore: !minisign && !ci,
  fn: async () => {
    assert.ok(minisign, "minisign is required under CI=true (apt-get install minisign)");
    await using w = await workspace();
    assert.equal((await w.sign("app.tar.gz")).code, 0);
    const file = `${w.dir}/app.tar.gz`;
    const run = (...args: string[]) =>
      new Deno.Command("minisign", { args, stdout: "piped", stderr: "piped" }).output();
    const ok = await run("-Vm", file, "-P", toMinisignPublicKey(key));
    assert.ok(ok.success, new TextDecoder().decode(ok.stderr));
    assert.match(
      new TextDecoder().decode(ok.stdout),
      /Trusted comment: timestamp:\d+\tfile:app\.tar\.gz\thashed/,
    );
    // The same key as a minisign .pub file.
    await Deno.writeTextFile(
      `${w.dir}/minisign.pub`,
      `untrusted comment: infraveil release key\n${toMinisignPublicKey(key)}\n`,
    );
    assert.ok((await run("-Vm", file, "-p", `${w.dir}/minisign.pub`)).success);
    await Deno.writeTextFile(file, "release contents v1!\n");
    assert.equal((await run("-Vm", file, "-P", toMinisignPublicKey(key))).success, false);
    assert.equal(
      (await run(
        "-Vm",
        `${w.dir}/other.tar.gz`,
        "-x",
        `${file}.minisig`,
        "-P",
        toMinisignPublicKey(other),
      )).success,
      false,
    );
  },
});
