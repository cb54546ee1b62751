import assert from "node:assert/strict";
import { differential } from "./_random.ts";

// The long run (≥ 1M cases) is scripts/policy_fuzz_long.ts.
Deno.test("evaluate() agrees with the reference evaluator on 100,000 random cases", () => {
  const r = differential(20260601, 100_000);
  assert.equal(r.cases, 100_000);
  assert.ok(r.policies >= 1000, `only ${r.policies} policies`);
  assert.deepEqual(r.divergences, []);
});
