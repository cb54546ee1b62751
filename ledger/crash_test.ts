import assert from "node:assert/strict";
import { verifyLedgerFiles } from "./files.ts";
import { openLedger } from "./writer.ts";
import { leafHashOfLine } from "./_testing_hash.ts";

const CHILD = new URL("./testdata/crash_child.ts", import.meta.url).pathname;

async function readUntil(
  reader: ReadableStreamDefaultReader<string>,
  acked: Map<number, string>,
  want: number,
  deadline: number,
): Promise<void> {
  let buffered = "";
  let got = 0;
  while (got < want && Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += value;
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const [seq, hash] = buffered.slice(0, nl).split(" ");
      buffered = buffered.slice(nl + 1);
      acked.set(Number(seq), hash);
      got++;
    }
  }
  // Whatever else arrived in the same read was acknowledged too.
  for (const line of buffered.split("\n")) {
    const [seq, hash] = line.split(" ");
    if (hash?.length === 64) acked.set(Number(seq), hash);
  }
}

Deno.test({
  name:
    "openLedger() keeps every acknowledged append across 20 SIGKILLs and quarantines torn lines",
  async fn() {
    const dir = await Deno.makeTempDir();
    const path = `${dir}/audit.jsonl`;
    const acked = new Map<number, string>();
    const started = Date.now();
    let injected = 0;
    try {
      for (let round = 0; round < 20; round++) {
        const child = new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "--quiet",
            `--allow-read=${dir}`,
            `--allow-write=${dir}`,
            CHILD,
            path,
            round % 2 ? "group" : "fsync",
          ],
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        const errors = new Response(child.stderr).text();
        const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
        await readUntil(reader, acked, 1 + ((round * 7) % 40), Date.now() + 5000);
        let killed = true;
        try {
          child.kill("SIGKILL");
        } catch {
          killed = false; // it exited by itself: a failure, reported below
        }
        await reader.cancel().catch(() => {});
        const status = await child.status;
        const stderr = await errors;
        assert.ok(killed && status.signal === "SIGKILL", `round ${round}: child exited: ${stderr}`);
        if (round % 3 === 1) {
          // A torn write: part of a line and no newline, as a crash mid-write leaves it, in the
          // zeros the killed writer had preallocated after its last entry.
          const bytes = await Deno.readFile(path);
          const end = bytes.lastIndexOf(10) + 1;
          assert.ok(bytes.subarray(end).every((b) => b === 0), "only zeros after the last line");
          const f = await Deno.open(path, { write: true });
          await f.seek(end, Deno.SeekMode.Start);
          await f.write(new TextEncoder().encode('{"actor":"crash-test","data":{"i":'));
          f.close();
          injected++;
        }
      }
      assert.ok(Date.now() - started < 60_000, "crash test took too long");
      // Recovery: open quarantines a torn tail; the ledger then verifies.
      const ledger = await openLedger(path, {});
      await ledger.close();
      const report = await verifyLedgerFiles([path]);
      assert.ok(report.ok, JSON.stringify(report.problem));
      assert.ok(acked.size > 20, `only ${acked.size} appends acknowledged`);
      const lines = (await Deno.readTextFile(path)).split("\n").slice(0, -1);
      for (const [seq, hash] of acked) {
        assert.ok(
          seq < lines.length,
          `acknowledged seq ${seq} missing (ledger has ${lines.length})`,
        );
        assert.equal(
          leafHashOfLine(lines[seq]),
          hash,
          `seq ${seq} differs from what was acknowledged`,
        );
      }
      const quarantine = (await Deno.readTextFile(`${path}.quarantine`)).trim().split("\n");
      assert.ok(
        quarantine.length >= injected,
        `${quarantine.length} quarantined, ${injected} torn`,
      );
      for (const q of quarantine) assert.ok(JSON.parse(q).base64.length > 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "verifyLedgerFiles() reports ok on a ledger that a writer in another process is appending to",
  async fn() {
    const dir = await Deno.makeTempDir();
    const path = `${dir}/live.jsonl`;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", `--allow-read=${dir}`, `--allow-write=${dir}`, CHILD, path, "fsync"],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const counts: Record<string, number> = {};
    try {
      // Past the first 1 MiB read, so reads end inside the region being written.
      const deadline = Date.now() + 20_000;
      while (((await Deno.stat(path).catch(() => null))?.size ?? 0) < 1_200_000) {
        assert.ok(Date.now() < deadline, "the writer did not get going");
        await new Promise((r) => setTimeout(r, 50));
      }
      const stop = Date.now() + 2_500;
      while (Date.now() < stop) {
        const r = await verifyLedgerFiles([path]);
        const k = r.ok ? "ok" : `${r.problem!.class}: ${r.problem!.message}`;
        counts[k] = (counts[k] ?? 0) + 1;
      }
    } finally {
      child.kill("SIGKILL");
      await child.status;
      await Deno.remove(dir, { recursive: true });
    }
    assert.ok(counts.ok > 0 && Object.keys(counts).length === 1, JSON.stringify(counts));
  },
});
