/**
 * Golden tests of the `infraveil` CLI. Each folder in `tests/golden/` is one case:
 * `args` (one argument per line; `$GOLDEN` expands to the case's folder), optional `stdin`,
 * `code` (the expected exit code), and `stdout` / `stderr` (expected output exactly; omit a
 * file to not check that stream). Set `UPDATE_GOLDEN=1` to rewrite the expectations.
 */
import assert from "node:assert/strict";
import { projectPath } from "./_harness.ts";

const ROOT = projectPath("");
const GOLDEN = projectPath("tests/golden/");
const update = Deno.env.get("UPDATE_GOLDEN") === "1";

function read(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

const cases = [...Deno.readDirSync(GOLDEN)].filter((e) => e.isDirectory).map((e) => e.name).sort();

for (const name of cases) {
  const dir = `${GOLDEN}${name}`;
  Deno.test(`infraveil CLI golden: ${name}`, async () => {
    const args = read(`${dir}/args`)!.split("\n").filter((l) => l !== "")
      .map((a) => a.replaceAll("$GOLDEN", `tests/golden/${name}`));
    const stdin = read(`${dir}/stdin`);
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-P=cli", "--quiet", "main.ts", ...args],
      cwd: ROOT,
      env: { NO_COLOR: "1" },
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
    const got = {
      code: String(out.code),
      stdout: dec.decode(out.stdout),
      stderr: dec.decode(out.stderr),
    };
    for (const stream of ["code", "stdout", "stderr"] as const) {
      const want = read(`${dir}/${stream}`);
      const actual = stream === "code" ? got.code + "\n" : got[stream];
      if (update && (want !== undefined || stream === "code")) {
        Deno.writeTextFileSync(`${dir}/${stream}`, actual);
      } else if (want !== undefined) {
        assert.equal(actual, want, `${name}: ${stream} differs`);
      }
    }
  });
}
