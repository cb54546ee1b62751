/**
 * The whole test suite (`deno task test`): runs `deno test` over the workspace, then prints
 * `N passed, N failed, N skipped` counted from the JUnit report, as the last line.
 *
 * Extra arguments are passed to `deno test` (e.g. a path or `--filter`).
 *
 * @module
 */
const OUT = new URL("../.test-results/", import.meta.url).pathname;
await Deno.mkdir(OUT, { recursive: true });
const junit = `${OUT}junit.xml`;
await Deno.remove(junit).catch(() => {});

const child = new Deno.Command(Deno.execPath(), {
  args: [
    "test",
    "-A",
    "--unstable-worker-options",
    "--unstable-net",
    "--parallel",
    "--no-check=remote",
    `--junit-path=${junit}`,
    ...Deno.args,
  ],
  stdin: "null",
}).spawn();
const { code } = await child.status;

let passed = 0, failed = 0, skipped = 0;
try {
  const xml = await Deno.readTextFile(junit);
  for (const m of xml.matchAll(/<testcase\b[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g)) {
    const body = m[2] ?? "";
    if (body.includes("<failure") || body.includes("<error")) failed++;
    else if (body.includes("<skipped")) skipped++;
    else passed++;
  }
} catch {
  // No report: the run failed before any test (e.g. a type error); count that as a failure.
}
// A non-zero exit with no failing case means a module failed to load or a test leaked.
if (code !== 0 && failed === 0) failed = 1;
const summary = `${passed} passed, ${failed} failed, ${skipped} skipped`;
await Deno.writeTextFile(`${OUT}summary.txt`, summary + "\n");
console.log(summary);
Deno.exit(code !== 0 || failed > 0 ? 1 : 0);
