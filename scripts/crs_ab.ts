/**
 * Before/after timing of CRS engine changes: evaluates the bench requests of
 * proxy/crs/eval_bench.ts (PL1, block mode) with a saved copy of the engine and with the current
 * one in the same process, alternating batches, and prints the median per-request thread CPU
 * time of each. The machine is shared, so the two engines take turns rather than running one
 * after the other.
 *
 *   cp -r proxy/crs /tmp/crs_before      # before the change
 *   sed -i 's#"@noble/hashes/legacy.js"#"npm:@noble/hashes@2.4.0/legacy.js"#' \
 *     /tmp/crs_before/_transforms.ts       # (a copy outside the workspace has no import map)
 *   cp proxy/rule_engine.ts /tmp/          # (its type-only import)
 *   deno run -A scripts/crs_ab.ts /tmp/crs_before [rounds] [batch] [wrk,form,json,search]
 *
 * /proc/thread-self/schedstat advances in scheduler ticks (4 ms here): keep a batch well above
 * that (the default of 1,500 requests is about 150–350 ms).
 *
 * @module
 */
import { loadCrs } from "@infraveil/proxy/crs";
import type { RuleVerdict } from "@infraveil/proxy/rule_engine";
import { BENCH_REQUESTS } from "../proxy/crs/eval_bench.ts";
import { denoFiles } from "../proxy/crs/_io.ts";

const root = new URL("../../shared/crs/", import.meta.url).pathname;

function clock(): number {
  return Number(Deno.readTextFileSync("/proc/thread-self/schedstat").split(" ")[0]) / 1e6;
}

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[xs.length >> 1];
}

if (import.meta.main) {
  const [dir, r = "15", b = "1500", which] = Deno.args;
  if (!dir) {
    console.error("usage: crs_ab.ts OLD_CRS_DIR [rounds] [batch] [wrk,form,json,search]");
    Deno.exit(2);
  }
  const old = await import(`file://${Deno.realPathSync(dir)}/crs.ts`) as {
    loadCrs: typeof loadCrs;
  };
  const options = {
    setupFile: `${root}crs-setup.conf.example`,
    rulesDir: `${root}rules`,
    paranoia: 1,
    mode: "block" as const,
    files: denoFiles,
  };
  const engines: Record<string, { evaluate(req: unknown): RuleVerdict }> = {
    before: old.loadCrs(options),
    after: loadCrs(options),
  };
  const rounds = Number(r);
  const batch = Number(b);
  for (const name of which ? which.split(",") : Object.keys(BENCH_REQUESTS)) {
    const req = BENCH_REQUESTS[name];
    if (!req) throw new Error(`unknown request ${name}`);
    const times: Record<string, number[]> = { before: [], after: [] };
    for (const k of ["before", "after"]) for (let i = 0; i < 300; i++) engines[k].evaluate(req);
    for (let i = 0; i < rounds; i++) {
      for (const k of i % 2 ? ["before", "after"] : ["after", "before"]) {
        const t0 = clock();
        for (let j = 0; j < batch; j++) engines[k].evaluate(req);
        times[k].push((clock() - t0) * 1000 / batch);
      }
    }
    const x = median(times.before);
    const y = median(times.after);
    console.log(
      `${name.padEnd(7)} before ${x.toFixed(1).padStart(6)} µs  after ${
        y.toFixed(1).padStart(6)
      } µs  ×${(x / y).toFixed(2)}`,
    );
  }
}
