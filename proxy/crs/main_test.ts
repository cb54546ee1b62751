import assert from "node:assert/strict";
import { main } from "./main.ts";

Deno.test("crs main(): usage errors exit 2, --help exits 0", async () => {
  const err = console.error;
  const log = console.log;
  const out: string[] = [];
  console.error = (...a: unknown[]) => out.push(a.join(" "));
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  try {
    assert.equal(await main(["--bogus"]), 2);
    assert.equal(await main([]), 2);
    assert.equal(await main(["--tests", "x", "--paranoia", "9"]), 2);
    assert.equal(await main(["--tests", "/nonexistent-dir"]), 2);
    assert.equal(await main(["--albedo", "no-port"]), 2);
    assert.equal(await main(["--albedo", "127.0.0.1:99999"]), 2);
    assert.equal(await main(["--help"]), 0);
    assert.match(out.join("\n"), /Usage: crs --tests DIR/);
  } finally {
    console.error = err;
    console.log = log;
  }
});
