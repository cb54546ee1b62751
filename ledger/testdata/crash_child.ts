// Appends to a ledger in a loop and prints "SEQ LEAFHASH" for each acknowledged append, until
// killed. Used by crash_test.ts. Args: LEDGER_PATH MODE(fsync|group)
import { openLedger } from "../mod.ts";

const [path, mode] = Deno.args;
const ledger = await openLedger(path, {
  mode: mode === "group" ? "group" : "fsync",
  actor: "crash-test",
  onQuarantine: (q) => console.error(`quarantined ${q.length} bytes at ${q.offset}`),
});
const encoder = new TextEncoder();
let i = 0;
for (;;) {
  const batch = mode === "group" ? 16 : 1;
  const pending = [];
  for (let k = 0; k < batch; k++) {
    pending.push(ledger.append({ type: "crash.test", data: { i: i++, pad: "x".repeat(i % 97) } }));
  }
  const done = await Promise.all(pending);
  Deno.stdout.writeSync(encoder.encode(done.map((r) => `${r.seq} ${r.leafHash}\n`).join("")));
}
