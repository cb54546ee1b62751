/**
 * Summarises a V8 `.cpuprofile` (from `deno run --cpu-prof`) by self time: the functions and
 * the files that spent the most, with their share of the samples.
 *
 * Usage: deno run -A --cpu-prof --cpu-prof-dir=prof scripts/control_bench.ts --quick
 *        deno run -A scripts/control_profile.ts prof/CPU.*.cpuprofile [--top N]
 *
 * @module
 */
import { parseArgs } from "node:util";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

const { values, positionals } = parseArgs({
  args: Deno.args,
  options: { top: { type: "string", default: "25" } },
  allowPositionals: true,
  strict: true,
});
if (positionals.length !== 1) {
  console.error("usage: control_profile.ts FILE.cpuprofile [--top N]");
  Deno.exit(2);
}
const profile = JSON.parse(await Deno.readTextFile(positionals[0])) as {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
};
const self = new Map<number, number>();
profile.samples.forEach((id, i) =>
  self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
);
const where = (url: string): string =>
  url === "" ? "(native)" : url.replace(/^.*registry\.npmjs\.org\/([^/]+(\/[^/]+)?)\/.*$/, "npm:$1")
    .replace(/^file:\/\/.*?\/(control|trust|ledger|policy|scripts)\//, "$1/");
const byFunction = new Map<string, number>();
const byFile = new Map<string, number>();
let total = 0;
for (const n of profile.nodes) {
  const t = self.get(n.id) ?? 0;
  const { functionName, url, lineNumber } = n.callFrame;
  const file = where(url);
  const fn = `${functionName || "(anonymous)"} ${file}${url ? `:${lineNumber + 1}` : ""}`;
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + t);
  const key = file === "(native)" ? `(native) ${functionName}` : file;
  byFile.set(key, (byFile.get(key) ?? 0) + t);
  total += t;
}
const top = Number(values.top);
for (const [title, m] of [["by function", byFunction], ["by file", byFile]] as const) {
  console.log(`self time ${title} (total ${(total / 1000).toFixed(0)} ms)`);
  for (const [k, t] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(
      `${(t / 1000).toFixed(1).padStart(9)} ms ${(100 * t / total).toFixed(1).padStart(5)}%  ${k}`,
    );
  }
}
