/**
 * The long differential run: the compiled evaluator against the reference evaluator on
 * ≥ 1,000,000 random policies × actions (default 1,000,000; pass a count and a seed to change).
 * Exits 1 on the first divergences, printing them.
 *
 * Usage: deno run -A scripts/policy_fuzz_long.ts [CASES] [SEED]
 *
 * @module
 */
import { differential } from "../policy/_random.ts";

const cases = Number(Deno.args[0] ?? 1_000_000);
const seed = Number(Deno.args[1] ?? Date.now() % 1_000_000_007);
const chunk = 100_000;
const t0 = performance.now();
let done = 0;
let policies = 0;
for (let i = 0; done < cases; i++) {
  const n = Math.min(chunk, cases - done);
  const r = differential(seed + i * 1_000_003, n);
  done += r.cases;
  policies += r.policies;
  if (r.divergences.length > 0) {
    console.error(JSON.stringify(r.divergences, null, 2));
    console.error(
      `policy fuzz: ${r.divergences.length} divergence(s) after ${done} cases (seed ${seed})`,
    );
    Deno.exit(1);
  }
  console.log(
    `${done} cases, ${policies} policies, 0 divergences (${
      ((performance.now() - t0) / 1000).toFixed(1)
    } s)`,
  );
}
console.log(
  `policy fuzz: ${done} cases over ${policies} random policies, seed ${seed}: no divergence`,
);
