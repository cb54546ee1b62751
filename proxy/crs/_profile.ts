/**
 * Profiling aid for the CRS engine (a development tool; not part of the library).
 *
 *   deno run -A proxy/crs/_profile.ts run [wrk|form|json|search|all] [iterations]
 *     evaluates the bench requests of proxy/crs/eval_bench.ts in a loop and prints the median
 *     per-request time; add `--cpu-prof --cpu-prof-dir=DIR` to the deno flags for a profile.
 *   deno run -A proxy/crs/_profile.ts summary FILE.cpuprofile [top]
 *     prints self time by function (and by file) from a V8 .cpuprofile.
 *
 * @module
 */
import { loadCrs } from "./crs.ts";
import { denoFiles } from "./_io.ts";
import { BENCH_REQUESTS } from "./eval_bench.ts";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function summary(file: string, top: number): void {
  const p = JSON.parse(Deno.readTextFileSync(file)) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  const fn = new Map<string, number>();
  const files = new Map<string, number>();
  let total = 0;
  for (const [id, t] of self) {
    const n = byId.get(id)!;
    const f = n.callFrame;
    const short = f.url.replace(/^.*\//, "");
    const key = `${f.functionName || "(anonymous)"} ${short}:${f.lineNumber + 1}`;
    fn.set(key, (fn.get(key) ?? 0) + t);
    files.set(short || f.functionName, (files.get(short || f.functionName) ?? 0) + t);
    total += t;
  }
  const show = (m: Map<string, number>, n: number): void => {
    for (const [k, t] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n)) {
      console.log(
        `${(t / 1000).toFixed(1).padStart(9)} ms ${
          (100 * t / total).toFixed(1).padStart(5)
        }%  ${k}`,
      );
    }
  };
  console.log(`total ${(total / 1000).toFixed(0)} ms\n-- self time by function`);
  show(fn, top);
  console.log("-- self time by file");
  show(files, 15);
  // inclusive time: a sample counts once for every distinct function on its stack
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const incl = new Map<string, number>();
  for (const [id, t] of self) {
    const seen = new Set<string>();
    for (let x: number | undefined = id; x !== undefined; x = parent.get(x)) {
      const f = byId.get(x)!.callFrame;
      const key = `${f.functionName || "(anonymous)"} ${f.url.replace(/^.*\//, "")}:${
        f.lineNumber + 1
      }`;
      if (seen.has(key)) continue;
      seen.add(key);
      incl.set(key, (incl.get(key) ?? 0) + t);
    }
  }
  console.log("-- inclusive time by function");
  show(incl, top);
}

/** Milliseconds of this thread's CPU time, or wall time when that is not available. */
function threadClock(): () => number {
  try {
    Deno.readTextFileSync("/proc/thread-self/schedstat");
  } catch {
    return performance.now;
  }
  return () => Number(Deno.readTextFileSync("/proc/thread-self/schedstat").split(" ")[0]) / 1e6;
}

function run(which: string, iterations: number): void {
  const root = new URL("../../../shared/crs/", import.meta.url).pathname;
  const crs = loadCrs({
    setupFile: `${root}crs-setup.conf.example`,
    rulesDir: `${root}rules`,
    paranoia: 1,
    mode: "block",
    files: denoFiles,
  });
  const names = which === "all" ? Object.keys(BENCH_REQUESTS) : [which];
  for (const name of names) {
    const req = BENCH_REQUESTS[name];
    if (!req) throw new Error(`unknown request ${name}`);
    // Batches of 500: the median batch and the fastest one. When the kernel offers it, the time
    // is this thread's own CPU time (/proc/thread-self/schedstat, ns), which other processes on
    // the machine do not inflate; otherwise wall time.
    const clock = threadClock();
    const times: number[] = [];
    for (let i = 0; i < 200; i++) crs.evaluate(req);
    for (let i = 0; i < iterations; i += 500) {
      const t0 = clock();
      for (let k = 0; k < 500; k++) crs.evaluate(req);
      times.push((clock() - t0) * 1000 / 500);
    }
    times.sort((a, b) => a - b);
    console.log(
      `${name.padEnd(8)} median ${times[times.length >> 1].toFixed(1)} µs  min ${
        times[0].toFixed(1)
      } µs  (${iterations} runs, batches of 500, ${
        clock === performance.now ? "wall" : "thread CPU"
      })`,
    );
  }
}

if (import.meta.main) {
  const [cmd, a, b] = Deno.args;
  if (cmd === "summary" && a) summary(a, Number(b ?? 40));
  else if (cmd === "run") run(a ?? "all", Number(b ?? 2000));
  else {
    console.error("usage: _profile.ts run [wrk|form|json|search|all] [n] | summary FILE [top]");
    Deno.exit(2);
  }
}
