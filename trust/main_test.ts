import assert from "node:assert/strict";
import { readPrivateKeyFile, readPublicKeyFile } from "./io.ts";
import { main } from "./main.ts";

async function quietly(fn: () => Promise<number>): Promise<number> {
  const log = console.log, error = console.error;
  console.log = console.error = () => {};
  try {
    return await fn();
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test("keys generate writes a usable key pair and refuses to overwrite it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.equal(await quietly(() => main(["generate", "--out", `${dir}/k`])), 0);
    const pair = await readPrivateKeyFile(`${dir}/k`);
    assert.equal((await readPublicKeyFile(`${dir}/k.pub`)).kid, pair.kid);
    const before = await Deno.readTextFile(`${dir}/k`);
    assert.equal(await quietly(() => main(["generate", "--out", `${dir}/k`])), 2);
    assert.equal(await Deno.readTextFile(`${dir}/k`), before);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("keys: usage errors exit 2", async () => {
  for (
    const args of [[], ["frob"], ["generate"], ["public"], ["public", "a", "b"], [
      "generate",
      "--out",
    ]]
  ) {
    assert.equal(await quietly(() => main(args)), 2, args.join(" "));
  }
});
