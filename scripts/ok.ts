/**
 * Everything a change must pass (`deno task ok`): formatting, lint, type check, the examples in
 * documentation comments, `deno publish --dry-run` for every member, then the whole test suite
 * (`deno task test`). Stops at the first failing step, naming it.
 *
 * @module
 */
const ROOT = new URL("../", import.meta.url).pathname;
const MEMBERS = ["trust", "policy", "ledger", "proxy", "agent", "control", "mcp"];

async function step(name: string, args: string[]): Promise<void> {
  console.log(`\n== ${name}: deno ${args.join(" ")}`);
  const { code } = await new Deno.Command(Deno.execPath(), { args, cwd: ROOT, stdin: "null" })
    .spawn().status;
  if (code !== 0) {
    console.error(`\nok: step "${name}" failed (exit ${code})`);
    Deno.exit(1);
  }
}

/** Non-test TypeScript modules of the members, whose JSDoc examples are run. */
async function docModules(): Promise<string[]> {
  const out: string[] = [];
  for (const m of MEMBERS) {
    for await (const e of Deno.readDir(`${ROOT}${m}`)) {
      if (e.isFile && e.name.endsWith(".ts") && !/_(test|bench)\.ts$/.test(e.name)) {
        out.push(`${m}/${e.name}`);
      }
    }
  }
  return out.sort();
}

if (Deno.version.deno !== "2.9.6") {
  console.error(
    `ok: Deno ${Deno.version.deno} found; this project is pinned to 2.9.6 (npx -y deno@2.9.6 task ok)`,
  );
  Deno.exit(1);
}
await step("format", ["fmt", "--check"]);
await step("lint", ["lint"]);
await step("type check", ["check", "."]);
await step("documentation examples", [
  "test",
  "--doc",
  "-A",
  "--permit-no-files",
  ...await docModules(),
]);
await step("publish dry run", ["publish", "--dry-run", "--allow-dirty"]);
await step("tests", ["task", "test"]);
