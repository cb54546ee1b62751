import assert from "node:assert/strict";
import { generateKeyPair } from "./ed25519.ts";
import { TrustError, type TrustErrorCode } from "./error.ts";
import { readPrivateKeyFile, readPublicKeyFile, writeKeyFiles } from "./io.ts";
import { formatPrivateKeyFile, formatPublicKeyFile, parseKeyFile } from "./key_file.ts";

function isCode(code: TrustErrorCode, mention?: string) {
  return (e: unknown) => {
    assert.ok(e instanceof TrustError, String(e));
    assert.equal(e.code, code, e.message);
    if (mention) assert.ok(e.message.includes(mention), e.message);
    return true;
  };
}

Deno.test("writeKeyFiles() writes a 0600 private file and a public file that read back", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const pair = generateKeyPair();
    await writeKeyFiles(`${dir}/host`, pair);
    assert.equal((await Deno.stat(`${dir}/host`)).mode! & 0o777, 0o600);
    const read = await readPrivateKeyFile(`${dir}/host`);
    assert.deepEqual(read.publicKey, pair.publicKey);
    assert.deepEqual(read.privateKey, pair.privateKey);
    assert.equal(read.kid, pair.kid);
    const pub = await readPublicKeyFile(`${dir}/host.pub`);
    assert.equal(pub.kid, pair.kid);
    assert.deepEqual(await readPublicKeyFile(`${dir}/host`), {
      kid: pair.kid,
      publicKey: pair.publicKey,
    });
    assert.match(pair.kid, /^[0-9a-f]{16}$/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeKeyFiles() refuses to overwrite and leaves nothing half-written", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/k.pub`, "keep me");
    await assert.rejects(
      writeKeyFiles(`${dir}/k`, generateKeyPair()),
      isCode("BAD_KEY_FILE", "already exists"),
    );
    assert.equal(await Deno.readTextFile(`${dir}/k.pub`), "keep me");
    await assert.rejects(Deno.stat(`${dir}/k`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readPrivateKeyFile() refuses a group- or world-readable file, naming the fix", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeKeyFiles(`${dir}/k`, generateKeyPair());
    for (const mode of [0o644, 0o640, 0o604, 0o660]) {
      await Deno.chmod(`${dir}/k`, mode);
      await assert.rejects(
        readPrivateKeyFile(`${dir}/k`),
        isCode("INSECURE_KEY_FILE", `chmod 600 ${dir}/k`),
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readPrivateKeyFile() refuses a public key file and a missing file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeKeyFiles(`${dir}/k`, generateKeyPair());
    await assert.rejects(
      readPrivateKeyFile(`${dir}/k.pub`),
      isCode("BAD_KEY_FILE", "only a public key"),
    );
    await assert.rejects(readPrivateKeyFile(`${dir}/nope`), isCode("BAD_KEY_FILE", "no such file"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parseKeyFile() names the file and the problem for every kind of damage", () => {
  const pair = generateKeyPair();
  const good = formatPrivateKeyFile(pair);
  const json = JSON.parse(good);
  const cases: [string, string][] = [
    [good.slice(0, good.length / 2), "not JSON (truncated?)"],
    ["", "empty"],
    ["[1,2]", "expected a JSON object"],
    [JSON.stringify({ ...json, kty: "rsa" }), `"kty" is "rsa"`],
    [JSON.stringify({ ...json, kty: undefined }), `"kty" is undefined`],
    [JSON.stringify({ ...json, kid: "0000000000000000" }), `"kid"`],
    [JSON.stringify({ ...json, public: json.public.slice(0, 20) }), `"public" is 15 bytes`],
    [JSON.stringify({ ...json, private: json.private.slice(0, 20) }), `"private" is 15 bytes`],
    [JSON.stringify({ ...json, private: "***" }), `"private" is not base64url`],
    [JSON.stringify({ ...json, extra: 1 }), `unknown field "extra"`],
    [
      JSON.stringify({
        ...json,
        private: formatPrivateKeyFile(generateKeyPair()).match(/"private": "(.*)"/)![1],
      }),
      "does not belong",
    ],
  ];
  for (const [text, mention] of cases) {
    assert.throws(
      () => parseKeyFile(text, "keys/host.json"),
      isCode("BAD_KEY_FILE", mention),
      mention,
    );
    assert.throws(
      () => parseKeyFile(text, "keys/host.json"),
      isCode("BAD_KEY_FILE", "keys/host.json"),
    );
  }
  const pub = parseKeyFile(formatPublicKeyFile(pair), "p");
  assert.equal(pub.kind, "public");
});

Deno.test("readPrivateKeyFile() refuses a symbolic link to a key file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeKeyFiles(`${dir}/k`, generateKeyPair());
    await Deno.symlink(`${dir}/k`, `${dir}/link`);
    await assert.rejects(
      readPrivateKeyFile(`${dir}/link`),
      isCode("BAD_KEY_FILE", "symbolic link"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
