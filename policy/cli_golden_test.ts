/**
 * Golden tests of the `infraveil policy` CLI: each folder in testdata/golden/ is a case with
 * `args` (a JSON array), optional `stdin`, and the expected `exit`, `stdout` and `stderr`. The
 * CLI runs as a subprocess with read permission only, from inside the case folder. Run with
 * UPDATE_GOLDEN=1 to rewrite the expectations (then review the diff).
 */
import assert from "node:assert/strict";

const ROOT = new URL("./testdata/golden/", import.meta.url);
const MAIN = new URL("./main.ts", import.meta.url).pathname;
const UPDATE = Deno.env.get("UPDATE_GOLDEN") === "1";
const DENO_DIR = Deno.env.get("DENO_DIR");

const cases = [...Deno.readDirSync(ROOT)].filter((e) => e.isDirectory).map((e) => e.name).sort();

async function read(url: URL): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(url);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

async function run(name: string) {
  const dir = new URL(`${name}/`, ROOT);
  const args = JSON.parse((await read(new URL("args", dir)))!) as string[];
  const stdin = await read(new URL("stdin", dir));
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--quiet", MAIN, ...args],
    cwd: dir.pathname,
    env: { NO_COLOR: "1", HOME: Deno.env.get("HOME") ?? "/", ...(DENO_DIR ? { DENO_DIR } : {}) },
    clearEnv: true,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { dir, exit: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("policy CLI golden cases", async (t) => {
  assert.ok(cases.length >= 20, `only ${cases.length} golden cases`);
  // Two at a time: the machine is small.
  const results = new Map<string, Awaited<ReturnType<typeof run>>>();
  for (let i = 0; i < cases.length; i += 2) {
    const batch = cases.slice(i, i + 2);
    const rs = await Promise.all(batch.map(run));
    batch.forEach((c, j) => results.set(c, rs[j]));
  }
  for (const name of cases) {
    await t.step(name, async () => {
      const r = results.get(name)!;
      if (UPDATE) {
        await Deno.writeTextFile(new URL("exit", r.dir), `${r.exit}\n`);
        await Deno.writeTextFile(new URL("stdout", r.dir), r.stdout);
        await Deno.writeTextFile(new URL("stderr", r.dir), r.stderr);
        return;
      }
      assert.equal(r.stdout, await read(new URL("stdout", r.dir)) ?? "", "stdout");
      assert.equal(r.stderr, await read(new URL("stderr", r.dir)) ?? "", "stderr");
      assert.equal(r.exit, Number((await read(new URL("exit", r.dir)))?.trim()), "exit code");
    });
  }
});
