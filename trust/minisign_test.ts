import assert from "node:assert/strict";
import { findCommand, ignoreWithout } from "../tests/_harness.ts";
import { generateKeyPair } from "./ed25519.ts";
import { TrustError } from "./error.ts";
import {
  parseMinisignPublicKey,
  signMinisign,
  toMinisignPublicKey,
  verifyMinisign,
} from "./minisign.ts";

const key = generateKeyPair();
const data = new TextEncoder().encode("release artifact bytes\n");

Deno.test("verifyMinisign() accepts our signature and rejects modified files and comments", () => {
  const sig = signMinisign(data, key, { fileName: "a.tgz", now: () => 1_700_000_000_000 });
  const pk = parseMinisignPublicKey(toMinisignPublicKey(key));
  const ok = verifyMinisign(data, sig, pk);
  assert.equal(ok.trustedComment, "timestamp:1700000000\tfile:a.tgz\thashed");
  assert.equal(ok.prehashed, true);
  const flipped = data.slice();
  flipped[0] ^= 1;
  assert.throws(
    () => verifyMinisign(flipped, sig, pk),
    (e) => e instanceof TrustError && e.code === "BAD_SIGNATURE",
  );
  const editedComment = sig.replace("file:a.tgz", "file:b.tgz");
  assert.throws(
    () => verifyMinisign(data, editedComment, pk),
    (e) => e instanceof TrustError && e.code === "BAD_SIGNATURE",
  );
  const otherKey = parseMinisignPublicKey(toMinisignPublicKey(generateKeyPair()));
  assert.throws(
    () => verifyMinisign(data, sig, otherKey),
    (e) => e instanceof TrustError && e.code === "UNKNOWN_KEY",
  );
  assert.throws(
    () => verifyMinisign(data, sig.split("\n").slice(0, 3).join("\n"), pk),
    (e) => e instanceof TrustError && e.code === "MALFORMED",
  );
});

Deno.test("parseMinisignPublicKey() rejects what is not a minisign Ed25519 key", () => {
  for (const bad of ["", "RWQ", "a\nb\nc", btoa("Xx" + "a".repeat(40))]) {
    assert.throws(
      () => parseMinisignPublicKey(bad),
      (e) => e instanceof TrustError && e.code === "MALFORMED",
    );
  }
});

async function run(
  cmd: string,
  args: string[],
  cwd: string,
): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command(cmd, {
    args,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

Deno.test({
  name: "minisign -V verifies our signatures, and refuses a modified file",
  ignore: ignoreWithout("minisign"),
  async fn() {
    const minisign = findCommand("minisign")!;
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeFile(`${dir}/artifact`, data);
      await Deno.writeTextFile(
        `${dir}/artifact.minisig`,
        signMinisign(data, key, { fileName: "artifact" }),
      );
      const ok = await run(minisign, ["-Vm", "artifact", "-P", toMinisignPublicKey(key)], dir);
      assert.equal(ok.code, 0, ok.out);
      assert.match(ok.out, /Signature and comment signature verified/);
      await Deno.writeTextFile(`${dir}/artifact`, "tampered");
      const bad = await run(minisign, ["-Vm", "artifact", "-P", toMinisignPublicKey(key)], dir);
      assert.notEqual(bad.code, 0, bad.out);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "verifyMinisign() verifies signatures made by minisign -S (prehashed and legacy)",
  ignore: ignoreWithout("minisign"),
  async fn() {
    const minisign = findCommand("minisign")!;
    const dir = await Deno.makeTempDir();
    try {
      const gen = await run(minisign, ["-G", "-W", "-p", "k.pub", "-s", "k.key"], dir);
      assert.equal(gen.code, 0, gen.out);
      await Deno.writeFile(`${dir}/f`, data);
      const pk = parseMinisignPublicKey(await Deno.readTextFile(`${dir}/k.pub`));
      const signed = await run(
        minisign,
        ["-S", "-s", "k.key", "-m", "f", "-t", "built by ci"],
        dir,
      );
      assert.equal(signed.code, 0, signed.out);
      const out = verifyMinisign(data, await Deno.readTextFile(`${dir}/f.minisig`), pk);
      assert.equal(out.trustedComment, "built by ci");
      assert.equal(out.prehashed, true);
      const other = new TextEncoder().encode("other");
      assert.throws(
        () => verifyMinisign(other, Deno.readTextFileSync(`${dir}/f.minisig`), pk),
        TrustError,
      );
      // Legacy (non-prehashed) signatures, if this minisign can still make them.
      const legacy = await run(
        minisign,
        ["-S", "-l", "-s", "k.key", "-m", "f", "-x", "f.legacy"],
        dir,
      );
      if (legacy.code === 0) {
        const l = verifyMinisign(data, await Deno.readTextFile(`${dir}/f.legacy`), pk);
        assert.equal(l.prehashed, false);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
