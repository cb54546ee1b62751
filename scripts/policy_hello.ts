// A Deno hello-world: the start-up baseline for `policy check` in scripts/policy_bench.ts.
console.log("hello, world");
