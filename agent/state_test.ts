import assert from "node:assert/strict";
import { AgentError } from "./error.ts";
import { openUsedApprovals } from "./state.ts";
import { readLedgerHistory } from "./_ledger_history.ts";

function ledgerLine(seq: number, type: string, data: unknown, ts = new Date()): string {
  return JSON.stringify({
    v: 1,
    seq,
    ts: ts.toISOString(),
    type,
    actor: "agent:web-1",
    data,
    prev: "0".repeat(64),
  });
}

async function hostDirs() {
  const dir = await Deno.makeTempDir({ prefix: "iv-state-" });
  await Deno.mkdir(`${dir}/state`);
  await Deno.mkdir(`${dir}/ledger`);
  return {
    dir,
    state: `${dir}/state`,
    ledger: `${dir}/ledger/audit.jsonl`,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

Deno.test("openUsedApprovals() refuses a missing used_approvals.json when the ledger records used approvals", async () => {
  await using h = await hostDirs();
  const exp = Math.floor(Date.now() / 1000) + 600;
  await Deno.writeTextFile(
    h.ledger,
    [
      ledgerLine(0, "agent.start", { version: "1.0.0" }),
      ledgerLine(1, "agent.action.execute", { approval_id: "apv_1", approval_exp: exp }),
    ].join("\n") + "\n",
  );
  await assert.rejects(
    openUsedApprovals(h.state, { ledgerFile: h.ledger }),
    (e: unknown) =>
      e instanceof AgentError && e.code === "STATE_ERROR" &&
      /used_approvals\.json is missing.*apv_1.*seq 1/s.test(e.message),
  );
});

Deno.test("openUsedApprovals() keeps the approvals the ledger records even when the file is an older copy", async () => {
  await using h = await hostDirs();
  const exp = Math.floor(Date.now() / 1000) + 600;
  await Deno.writeTextFile(`${h.state}/used_approvals.json`, JSON.stringify({ apv_old: exp }));
  await Deno.writeTextFile(
    h.ledger,
    [
      ledgerLine(0, "agent.action.execute", { approval_id: "apv_old", approval_exp: exp }),
      ledgerLine(1, "agent.action.execute", { approval_id: "apv_new", approval_exp: exp }),
      // Refused after its signature verified: used as well.
      ledgerLine(2, "agent.approval.refused", {
        approval_id: "apv_refused",
        code: "not_a_target",
        signature_verified: true,
      }),
      // Forged (never verified) and replays are not marked used by their refusal.
      ledgerLine(3, "agent.approval.refused", {
        approval_id: "apv_forged",
        code: "forged",
        signature_verified: false,
      }),
    ].join("\n") + "\n",
  );
  const used = await openUsedApprovals(h.state, { ledgerFile: h.ledger });
  assert.equal(used.has("apv_old"), true);
  assert.equal(used.has("apv_new"), true);
  assert.equal(used.has("apv_refused"), true);
  assert.equal(used.has("apv_forged"), false);
});

Deno.test("openUsedApprovals() starts empty on a first run (no state file, no ledger)", async () => {
  await using h = await hostDirs();
  const used = await openUsedApprovals(h.state, { ledgerFile: h.ledger });
  assert.equal(used.has("apv_1"), false);
  await used.add("apv_1", Math.floor(Date.now() / 1000) + 60);
  assert.equal(used.has("apv_1"), true);
});

Deno.test("readLedgerHistory() reads a ledger ending in preallocated zeros or in an append a crash left in pieces", async () => {
  await using h = await hostDirs();
  const exp = Math.floor(Date.now() / 1000) + 600;
  const used = ledgerLine(0, "agent.action.execute", { approval_id: "apv_1", approval_exp: exp });
  const lost = ledgerLine(1, "agent.action.execute", { approval_id: "apv_2", approval_exp: exp });
  const zeros = "\0".repeat(1000);
  const cases = [
    `${used}\n${zeros}`, // an open (or crashed) writer's zeros
    `${used}\n${lost.slice(0, 40)}${zeros}`, // torn, then zeros
    `${used}\n${"\0".repeat(30)}${lost.slice(30)}\n${zeros}`, // its first sector missing
  ];
  for (const text of cases) {
    await Deno.writeTextFile(h.ledger, text);
    const history = await readLedgerHistory(h.ledger);
    assert.deepEqual([...history.usedApprovals.keys()], ["apv_1"], JSON.stringify(text.slice(-60)));
  }
  // A NUL in a line before the last is damage.
  await Deno.writeTextFile(h.ledger, `${used.replace("apv_1", "apv\0")}\n${lost}\n`);
  await assert.rejects(
    () => readLedgerHistory(h.ledger),
    (e) => e instanceof AgentError && /damaged at line 1/.test(e.message),
  );
});
