import assert from "node:assert/strict";
import { main } from "./main.ts";

Deno.test("main() prints help with exit 0 and refuses unknown flags and arguments with exit 2", async () => {
  assert.equal(await main(["--help"]), 0);
  assert.equal(await main(["-h"]), 0);
  assert.equal(await main(["--approve"]), 2);
  assert.equal(await main(["serve"]), 2);
});
