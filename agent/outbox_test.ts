import assert from "node:assert/strict";
import { AgentError } from "./error.ts";
import { backoffDelay, openOutbox } from "./outbox.ts";

Deno.test("openOutbox() keeps items across reopen and delivers them in order", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const a = await openOutbox(dir, { maxBatches: 10 });
    await a.enqueue("result", { approval_id: "a1" });
    await a.enqueue("traces", [1]);
    await a.enqueue("result", { approval_id: "a2" });
    const b = await openOutbox(dir, { maxBatches: 10 });
    assert.deepEqual(b.pending().map((i) => i.kind), ["result", "traces", "result"]);
    const sent: unknown[] = [];
    let fail = true;
    const r1 = await b.drain((i) => {
      if (i.kind === "traces" && fail) throw new AgentError("CONTROL_UNAVAILABLE", "down");
      sent.push(i.body);
      return Promise.resolve();
    });
    assert.deepEqual(r1, { sent: 1, rejected: 0, blocked: true });
    fail = false;
    await b.enqueue("findings", [2]);
    const r2 = await b.drain((i) => (sent.push(i.body), Promise.resolve()));
    assert.deepEqual(r2, { sent: 3, rejected: 0, blocked: false });
    assert.deepEqual(sent, [{ approval_id: "a1" }, [1], { approval_id: "a2" }, [2]]);
    assert.equal((await openOutbox(dir, { maxBatches: 10 })).pending().length, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openOutbox() drops the oldest batches when full, never results", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const o = await openOutbox(dir, { maxBatches: 2 });
    await o.enqueue("traces", ["t1"]);
    await o.enqueue("result", { approval_id: "r" });
    await o.enqueue("findings", ["f1"]);
    await o.enqueue("traces", ["t2"]);
    assert.deepEqual(o.pending().map((i) => i.body), [{ approval_id: "r" }, ["f1"], ["t2"]]);
    assert.equal(o.dropped(), 1);
    const rejected: string[] = [];
    const r = await o.drain(
      (i) =>
        i.kind === "findings"
          ? Promise.reject(new AgentError("CONTROL_REJECTED", "bad"))
          : Promise.resolve(),
      (i) => (rejected.push(i.kind), Promise.resolve()),
    );
    assert.deepEqual(r, { sent: 2, rejected: 1, blocked: false });
    assert.deepEqual(rejected, ["findings"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("backoffDelay() doubles up to the cap", () => {
  const b = { initialMs: 100, maxMs: 1000 };
  assert.deepEqual([0, 1, 2, 3, 4, 50].map((n) => backoffDelay(n, b)), [
    100,
    200,
    400,
    800,
    1000,
    1000,
  ]);
});
