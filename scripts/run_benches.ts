/**
 * All benchmarks (`deno task bench`): `deno bench` over the members' `*_bench.ts` files, then
 * every benchmark script in `scripts/` (`*_bench.ts`, `*_bench.sh`), each of which measures its
 * peer in the same run and prints the ratio. Arguments filter scripts by name, e.g.
 * `deno task bench ledger`.
 *
 * @module
 */
const ROOT = new URL("../", import.meta.url).pathname;
const MEMBERS = ["trust", "policy", "ledger", "proxy", "agent", "control", "mcp"];
const filters = Deno.args;
const wanted = (name: string) => filters.length === 0 || filters.some((f) => name.includes(f));

async function run(cmd: string, args: string[]): Promise<boolean> {
  console.log(`\n== ${cmd === Deno.execPath() ? "deno" : cmd} ${args.join(" ")}`);
  const { code } = await new Deno.Command(cmd, { args, cwd: ROOT, stdin: "null" }).spawn().status;
  return code === 0;
}

let failed = 0;
const benchDirs = MEMBERS.filter((m) => wanted(m));
if (benchDirs.length > 0) {
  const ok = await run(Deno.execPath(), [
    "bench",
    "-A",
    "--unstable-worker-options",
    "--permit-no-files",
    ...benchDirs,
  ]);
  if (!ok) failed++;
}
const scripts = [...Deno.readDirSync(`${ROOT}scripts`)]
  .map((e) => e.name)
  .filter((n) => /_bench\.(ts|sh)$/.test(n) && wanted(n))
  .sort();
for (const name of scripts) {
  const ok = name.endsWith(".sh")
    ? await run("bash", [`scripts/${name}`])
    : await run(Deno.execPath(), ["run", "-A", "--unstable-worker-options", `scripts/${name}`]);
  if (!ok) failed++;
}
if (failed > 0) {
  console.error(`\nbench: ${failed} benchmark run(s) failed`);
  Deno.exit(1);
}
