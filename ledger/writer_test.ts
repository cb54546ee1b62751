import assert from "node:assert/strict";
import { decodeBase64, generateKeyPair } from "@infraveil/trust";
import { parseAnchor } from "./anchor.ts";
import { verifyCheckpoint } from "./checkpoint.ts";
import { type JsonValue, ROTATE_TYPE } from "./entry.ts";
import { LedgerError } from "./error.ts";
import { verifyLedgerFiles } from "./files.ts";
import { type AppendInput, LedgerState } from "./state.ts";
import { openLedger, type QuarantineInfo } from "./writer.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const fixedNow = () => Date.parse("2026-01-01T00:00:00.000Z");

Deno.test("openLedger() appends durably in both modes and the file verifies", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/audit.jsonl`;
    let ledger = await openLedger(path, { mode: "fsync", actor: "agent:t", now: fixedNow });
    const a = await ledger.append({ type: "boot", data: { version: "1.0" } });
    assert.equal(a.seq, 0);
    assert.ok(a.line.includes('"actor":"agent:t"'));
    assert.ok(a.line.includes('"ts":"2026-01-01T00:00:00.000Z"'));
    await ledger.close();
    ledger = await openLedger(path, { mode: "group" });
    const results = await Promise.all(
      Array.from({ length: 500 }, (_, i) => ledger.append({ type: "proxy.request", data: { i } })),
    );
    assert.deepEqual(results.map((r) => r.seq), Array.from({ length: 500 }, (_, i) => i + 1));
    const head = ledger.anchor();
    await ledger.close();
    const report = await verifyLedgerFiles([path], { head: parseAnchor(head) });
    assert.ok(report.ok, JSON.stringify(report.problem));
    assert.equal(report.size, 501);
  });
});

Deno.test("append() rejects invalid input without using a seq, and refuses the rotation type", async () => {
  await withDir(async (dir) => {
    const ledger = await openLedger(`${dir}/a.jsonl`);
    await assert.rejects(() => ledger.append({ type: "bad type", data: 1 }), /field type/);
    await assert.rejects(
      () => ledger.append({ type: "x", data: { n: NaN } as never }),
      /field data/,
    );
    await assert.rejects(() => ledger.append({ type: ROTATE_TYPE, data: {} }), /reserved/);
    assert.equal((await ledger.append({ type: "ok" })).seq, 0);
    await ledger.close();
    await assert.rejects(
      () => ledger.append({ type: "late" }),
      (e) => e instanceof LedgerError && e.code === "CLOSED",
    );
  });
});

Deno.test("openLedger() refuses a second writer in the same process with a clear error", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/a.jsonl`;
    const first = await openLedger(path);
    await assert.rejects(
      () => openLedger(path),
      (e) =>
        e instanceof LedgerError && e.code === "LOCKED" &&
        /this process already has a writer/.test(e.message),
    );
    await first.append({ type: "still.works" });
    await first.close();
    const again = await openLedger(path);
    assert.equal(again.head().size, 1);
    await again.close();
  });
});

Deno.test("openLedger() refuses a writer while another process holds the ledger, then takes it", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/a.jsonl`;
    const script = `import { openLedger } from ${
      JSON.stringify(new URL("./mod.ts", import.meta.url).href)
    };
      const l = await openLedger(${JSON.stringify(path)});
      console.log("ready");
      await Deno.stdin.readable.getReader().read();
      await l.close();`;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["eval", "--quiet", script],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    assert.equal((await reader.read()).value?.trim(), "ready");
    await assert.rejects(
      () => openLedger(path),
      (e) =>
        e instanceof LedgerError && e.code === "LOCKED" &&
        /another writer \(pid \d+/.test(e.message),
    );
    await child.stdin.close();
    await reader.cancel();
    assert.equal((await child.status).code, 0);
    const ledger = await openLedger(path);
    await ledger.close();
  });
});

Deno.test("openLedger() takes over a lock file left by a crashed writer, even one naming this pid", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/a.jsonl`;
    await Deno.writeTextFile(`${path}.lock`, JSON.stringify({ pid: Deno.pid, since: "then" }));
    const ledger = await openLedger(path);
    await ledger.append({ type: "after.crash" });
    await ledger.close();
    await assert.rejects(() => Deno.stat(`${path}.lock`), Deno.errors.NotFound);
  });
});

Deno.test("openLedger() moves a torn final line to the quarantine file and reports it", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/a.jsonl`;
    let ledger = await openLedger(path);
    await ledger.append({ type: "one" });
    await ledger.append({ type: "two" });
    const head = ledger.anchor();
    await ledger.close();
    const torn = '{"actor":"x","data":{"half":';
    await Deno.writeTextFile(path, torn, { append: true });
    const seen: QuarantineInfo[] = [];
    ledger = await openLedger(path, { onQuarantine: (q) => seen.push(q) });
    assert.equal(seen.length, 1);
    assert.deepEqual(ledger.recovered, seen[0]);
    assert.equal(seen[0].length, torn.length);
    assert.equal(ledger.anchor(), head);
    assert.equal((await ledger.append({ type: "three" })).seq, 2);
    await ledger.close();
    const record = JSON.parse((await Deno.readTextFile(`${path}.quarantine`)).trim());
    assert.equal(new TextDecoder().decode(decodeBase64(record.base64)), torn);
    assert.equal(record.seq, 2);
    assert.ok((await verifyLedgerFiles([path])).ok);
  });
});

Deno.test("append() in fsync mode writes into preallocated zeros; close() cuts them off; a reopened fsync writer reuses them, a group one cuts them", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/a.jsonl`;
    const crashed = `${dir}/crashed.jsonl`;
    for (const mode of ["fsync", "group"] as const) {
      const ledger = await openLedger(path, { mode: "fsync" });
      for (let i = 0; i < 3; i++) await ledger.append({ type: "one", data: { mode, i } });
      // While open: the lines, then zeros; the file verifies as it is.
      const open = await Deno.readFile(path);
      const end = open.lastIndexOf(10) + 1;
      assert.ok(open.length >= end + 128 * 1024, `only ${open.length - end} bytes preallocated`);
      assert.ok(open.subarray(end).every((b) => b === 0));
      let report = await verifyLedgerFiles([path]);
      assert.ok(report.ok, JSON.stringify(report.problem));
      assert.equal(report.files[0].padding, open.length - end);
      assert.equal(report.anchor, ledger.anchor());
      // A copy taken now is the file a crash would leave.
      await Deno.writeFile(crashed, open);
      await ledger.close();
      const closed = await Deno.readFile(path);
      assert.equal(closed.length, end, "close() leaves no zeros");
      assert.deepEqual(closed, open.subarray(0, end));
      report = await verifyLedgerFiles([path]);
      assert.equal(report.files[0].padding, undefined);
      await Deno.remove(path);
      await Deno.remove(`${path}.quarantine`).catch(() => {});
      // Reopened after the "crash": appends go at the end of the entries, into the zeros.
      const again = await openLedger(crashed, { mode });
      assert.equal(again.recovered, null);
      assert.equal((await again.append({ type: "two" })).seq, 3);
      const reopened = await Deno.readFile(crashed);
      if (mode === "fsync") assert.equal(reopened.length, open.length, "the zeros are reused");
      else {
        // Group commit appends at the end of the file, never into zeros.
        assert.equal(reopened.at(-1), 10, "no zeros under group commit");
        const lines = Array.from({ length: 3000 }, (_, i) => again.append({ type: "x", data: i }));
        await Promise.all(lines);
        assert.equal((await Deno.readFile(crashed)).at(-1), 10);
      }
      const head = again.anchor();
      await again.close();
      const after = await Deno.readTextFile(crashed);
      const size = mode === "group" ? 3004 : 4;
      assert.equal(after.split("\n").length, size + 1);
      assert.ok(after.startsWith(new TextDecoder().decode(closed)));
      report = await verifyLedgerFiles([crashed], { head: parseAnchor(head) });
      assert.ok(report.ok && report.size === size, JSON.stringify(report.problem));
      await Deno.remove(crashed);
    }
  });
});

Deno.test("openLedger() quarantines a torn line written into preallocated zeros, and only its bytes", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/a.jsonl`;
    const ledger = await openLedger(path);
    await ledger.append({ type: "one" });
    const head = ledger.anchor();
    const open = await Deno.readFile(path);
    await ledger.close();
    const end = open.lastIndexOf(10) + 1;
    const torn = new TextEncoder().encode('{"actor":"x","data":{"half":');
    open.set(torn, end);
    await Deno.writeFile(path, open);
    const report = await verifyLedgerFiles([path]);
    assert.equal(report.problem?.class, "torn");
    assert.equal(report.problem?.offset, end);
    assert.equal(report.files[0].padding, open.length - end - torn.length);
    const again = await openLedger(path);
    assert.deepEqual(again.recovered, {
      ledger: path,
      quarantine: `${path}.quarantine`,
      offset: end,
      length: torn.length,
    });
    assert.equal(again.anchor(), head);
    assert.equal((await again.append({ type: "two" })).seq, 1);
    await again.close();
    const record = JSON.parse((await Deno.readTextFile(`${path}.quarantine`)).trim());
    assert.deepEqual(decodeBase64(record.base64), torn);
    assert.ok((await verifyLedgerFiles([path])).ok);
  });
});

Deno.test("openLedger() quarantines an fsync append of which a crash kept only some sectors, and nothing more", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/a.jsonl`;
    const ledger = await openLedger(path, { mode: "fsync" });
    for (let i = 0; i < 12; i++) {
      await ledger.append({ type: "one", data: { i, pad: "x".repeat(i * 40) } });
    }
    const head = ledger.anchor();
    const before = await Deno.readFile(path); // entries, then synced zeros
    await ledger.append({ type: "lost", data: { pad: "y".repeat(1500) } });
    const after = await Deno.readFile(path);
    await ledger.close();
    const start = before.lastIndexOf(10) + 1;
    const end = after.lastIndexOf(10) + 1;
    // The 512-byte sectors the last append wrote, and what a crash during its fdatasync may
    // leave: some of them written, the others still zeros.
    const sectors: [number, number][] = [];
    for (let s = start - (start % 512); s < end; s += 512) {
      sectors.push([Math.max(s, start), Math.min(s + 512, end)]);
    }
    assert.ok(sectors.length >= 4, `the entry spans ${sectors.length} sectors`);
    const n = sectors.length;
    const kept: [string, number[]][] = [
      ["its last sector only", [n - 1]],
      ["its middle sectors only", [1, 2]],
      ["all but a middle sector", sectors.map((_, i) => i).filter((i) => i !== 1)],
      ["its first and last", [0, n - 1]],
    ];
    for (const [what, which] of kept) {
      const crashed = before.slice();
      for (const i of which) crashed.set(after.subarray(...sectors[i]), sectors[i][0]);
      await Deno.writeFile(path, crashed);
      await Deno.remove(`${path}.quarantine`).catch(() => {});
      const again = await openLedger(path);
      assert.equal(again.anchor(), head, what);
      assert.equal(again.recovered?.offset, start, what);
      const record = JSON.parse((await Deno.readTextFile(`${path}.quarantine`)).trim());
      const saved = decodeBase64(record.base64);
      assert.deepEqual(saved, crashed.subarray(start, start + saved.length), what);
      assert.ok(saved.at(-1) !== 0, what);
      assert.equal((await again.append({ type: "next" })).seq, 12, what);
      await again.close();
      assert.ok((await verifyLedgerFiles([path])).ok, what);
    }
    // Damage that cannot be one unacknowledged append is refused, and the file left as it is.
    const synced = after.slice(0, start);
    const lastStart = synced.lastIndexOf(10, synced.length - 2) + 1;
    const refused: [string, (b: Uint8Array) => unknown][] = [
      ["a NUL inside an earlier entry", (b) => b[lastStart - 20] = 0],
      ["a NUL off a sector boundary in the last entry", (b) => b[lastStart + 30] = 0],
      ["newlines of entries turned to NULs", (b) => {
        for (let i = lastStart - 400; i < b.length - 1; i++) if (b[i] === 10) b[i] = 0;
      }],
      ["a sector of earlier entries lost", (b) => {
        const s = lastStart - (lastStart % 512) - 512;
        b.fill(0, s, s + 512);
      }],
      ["a line with no NUL that is not an entry", (b) => b[lastStart] = 0x5b],
      // Torn (no final newline), but more than one append: two entries run together.
      ["two entries run together, without a final newline", (b) => {
        return new Uint8Array([...b.subarray(0, lastStart - 1), ...b.subarray(lastStart, -1)]);
      }],
      ["a torn line that shows another seq", (b) => {
        return new Uint8Array([...b, ...b.subarray(lastStart, b.length - 10)]);
      }],
    ];
    for (const [what, damage] of refused) {
      const copy = synced.slice();
      const out = damage(copy);
      const bytes = out instanceof Uint8Array ? out : copy;
      await Deno.writeFile(path, bytes);
      await assert.rejects(
        () => openLedger(path),
        (e) => e instanceof LedgerError && e.code === "CORRUPT",
        what,
      );
      assert.deepEqual(await Deno.readFile(path), bytes, `${what}: file unchanged`);
    }
  });
});

Deno.test("openLedger() refuses a damaged rotation line instead of starting again at seq 0", async () => {
  await withDir(async (dir) => {
    const ledger = await openLedger(`${dir}/a.jsonl`);
    for (let i = 0; i < 3; i++) await ledger.append({ type: "one" });
    await ledger.rotate(`${dir}/b.jsonl`);
    await ledger.close();
    const b = await Deno.readFile(`${dir}/b.jsonl`);
    for (const at of [0, 512 % b.length]) {
      const damaged = b.slice();
      damaged.fill(0, 0, Math.min(at || 300, b.length - 1));
      await Deno.writeFile(`${dir}/b.jsonl`, damaged);
      await assert.rejects(
        () => openLedger(`${dir}/b.jsonl`),
        (e) => e instanceof LedgerError && e.code === "CORRUPT",
      );
    }
  });
});

Deno.test("openLedger() refuses to append to a tampered ledger and releases the lock", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/a.jsonl`;
    const ledger = await openLedger(path);
    for (let i = 0; i < 3; i++) await ledger.append({ type: "e", data: i });
    await ledger.close();
    const text = await Deno.readTextFile(path);
    await Deno.writeTextFile(path, text.replace('"data":0', '"data":9'));
    await assert.rejects(
      () => openLedger(path),
      (e) =>
        e instanceof LedgerError && e.code === "CORRUPT" &&
        /line 1 \(seq 0\) is edited/.test(e.message),
    );
    await assert.rejects(() => Deno.stat(`${path}.lock`), Deno.errors.NotFound);
  });
});

Deno.test("checkpoint() signs the durable head; rotate() chains files through it", async () => {
  await withDir(async (dir) => {
    const key = generateKeyPair();
    const origin = "infraveil/ledger/test";
    const first = `${dir}/audit-1.jsonl`;
    const second = `${dir}/audit-2.jsonl`;
    const ledger = await openLedger(first);
    for (let i = 0; i < 5; i++) await ledger.append({ type: "e", data: i });
    const note = ledger.checkpoint(key, origin);
    const cp = verifyCheckpoint(note, [{ name: origin, publicKey: key.publicKey }]);
    assert.equal(cp.size, 5);
    await ledger.rotate(second, { key, origin });
    assert.equal(ledger.path, second);
    assert.equal((await ledger.append({ type: "e", data: 5 })).seq, 6);
    const head = ledger.anchor();
    await ledger.close();
    await assert.rejects(() => Deno.stat(`${first}.lock`), Deno.errors.NotFound);
    await assert.rejects(() => Deno.stat(`${second}.tmp`), Deno.errors.NotFound);
    const both = await verifyLedgerFiles([first, second], { head: parseAnchor(head) });
    assert.ok(both.ok, JSON.stringify(both.problem));
    // The second file alone verifies from its reference, authenticated by the signed checkpoint.
    const alone = await verifyLedgerFiles([second], { checkpointKeys: [key.publicKey] });
    assert.ok(alone.ok, JSON.stringify(alone.problem));
    assert.deepEqual(alone.base, {
      size: 5,
      root: both.files.length && alone.base!.root,
      checkpointVerified: true,
    });
    const wrongKey = await verifyLedgerFiles([second], {
      checkpointKeys: [generateKeyPair().publicKey],
    });
    assert.equal(wrongKey.problem?.class, "bad-anchor");
    // Reopening the rotated file continues it.
    const reopened = await openLedger(second);
    assert.equal(reopened.anchor(), head);
    await reopened.close();
  });
});

Deno.test("append() in both modes matches the in-memory state's heads, across waves, big lines and rotation", async () => {
  await withDir(async (dir) => {
    for (const mode of ["fsync", "group"] as const) {
      const first = `${dir}/${mode}-1.jsonl`;
      const ledger = await openLedger(first, { mode, actor: "agent:t", now: fixedNow });
      let state = LedgerState.empty();
      const expect = (input: AppendInput) => {
        const out = state.append(input, { now: fixedNow, actor: "agent:t" });
        state = out.state;
        return out.line;
      };
      // Waves issued while the previous one is being written; lines that outgrow the write
      // buffer (64 KiB), then small ones again in the reused buffers.
      let inFlight: Promise<unknown> = Promise.resolve();
      for (let wave = 0; wave < 6; wave++) {
        const inputs: AppendInput[] = Array.from({ length: 50 + wave * 37 }, (_, i) => ({
          type: "proxy.request",
          data: wave === 2 && i % 10 === 0
            ? { big: "x".repeat(70_000 + i) } as JsonValue
            : { wave, i },
        }));
        const lines = inputs.map(expect);
        const results = Promise.all(inputs.map((input) => ledger.append(input)));
        await inFlight;
        inFlight = results.then((rs) => assert.deepEqual(rs.map((r) => r.line), lines));
      }
      await inFlight;
      assert.equal(ledger.anchor(), state.anchor(), mode);
      assert.deepEqual(ledger.state().toJSON(), state.toJSON(), mode);
      for (let i = 0; i < 3; i++) {
        await ledger.append({ type: "e", data: i });
        expect({ type: "e", data: i });
        assert.equal(ledger.head().size, state.size);
        assert.equal(ledger.anchor(), state.anchor(), `${mode} after ${i}`);
      }
      const second = `${dir}/${mode}-2.jsonl`;
      await ledger.rotate(second);
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) => ledger.append({ type: "after", data: i })),
      );
      assert.equal(results[39].seq, state.size + 40);
      const head = ledger.anchor();
      await ledger.close();
      const report = await verifyLedgerFiles([first, second], { head: parseAnchor(head) });
      assert.ok(report.ok, JSON.stringify(report.problem));
      assert.equal(report.size, state.size + 41);
    }
  });
});
