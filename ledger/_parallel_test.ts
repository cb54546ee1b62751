import assert from "node:assert/strict";
import { parseAnchor } from "./anchor.ts";
import { verifyLedgerFiles } from "./files.ts";
import type { VerifyOptions, VerifyReport } from "./verify.ts";
import {
  AnalysisPool,
  analyzedFileChunks,
  verifyFilesInParallel,
  verifyFilesWithPool,
  WorkerFailure,
} from "./_parallel.ts";
import { analysesUsed, attachedAnalysis, firstLineStart } from "./_analyze.ts";
import { buildLedger, type Item, sources } from "./_testing.ts";
import { type Case, check, endCases, mutations, positions } from "./_testing_mutations.ts";

// The workers start without any permission: they compute over the bytes they are sent.
const OPTS = { sanitizeResources: false, sanitizeOps: false };

/** Writes the items as ledger files in a fresh directory; returns their paths. */
async function writeFiles(dir: string, items: readonly Item[], tail = "\n"): Promise<string[]> {
  const paths: string[] = [];
  for (const s of sources(items, tail)) {
    const path = `${dir}/${s.name}`;
    await Deno.writeFile(path, s.data as Uint8Array);
    paths.push(path);
  }
  if (paths.length === 0) {
    await Deno.writeFile(`${dir}/audit-1.jsonl`, new Uint8Array(0));
    paths.push(`${dir}/audit-1.jsonl`);
  }
  return paths;
}

/** The report with file names relative to `dir` (they differ between runs). */
function relative(r: VerifyReport, dir: string): VerifyReport {
  const name = (n: string) => n.replace(`${dir}/`, "");
  return {
    ...r,
    files: r.files.map((f) => ({ ...f, name: name(f.name) })),
    ...(r.problem ? { problem: { ...r.problem, file: name(r.problem.file) } } : {}),
  };
}

/** Verifies with and without workers at several chunk sizes; all reports must be equal. */
async function both(
  pool: AnalysisPool,
  items: readonly Item[],
  options: VerifyOptions,
  chunkSizes: readonly number[],
  tail = "\n",
): Promise<VerifyReport> {
  const dir = await Deno.makeTempDir({ prefix: "ledger-par-" });
  try {
    const paths = await writeFiles(dir, items, tail);
    const want = relative(await verifyLedgerFiles(paths, options), dir);
    for (const chunkBytes of chunkSizes) {
      const got = relative(await verifyFilesWithPool(paths, options, pool, chunkBytes), dir);
      assert.deepEqual(got, want, `chunks of ${chunkBytes} bytes`);
    }
    return want;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * A failed worker either surfaces as WorkerFailure (the caller then verifies without workers)
 * or was not needed: never a different report.
 */
async function exactOrWorkerFailure(
  run: Promise<VerifyReport>,
  want: VerifyReport,
): Promise<void> {
  try {
    assert.deepEqual(await run, want);
  } catch (e) {
    if (!(e instanceof WorkerFailure)) throw e;
  }
}

/** Items with file names made relative, as `check` expects. */
function checkRelative(c: Case, report: VerifyReport): void {
  check(c, report);
}

// Lines here are 200–240 bytes: chunks smaller than a line, near one, and several lines long.
const CHUNKS = [97, 256, 1021, 4096, 1 << 20];

Deno.test({
  name: "verifyFilesWithPool() gives the sequential report for intact ledgers of any size",
  ...OPTS,
  fn: async () => {
    const pool = new AnalysisPool(2, "none");
    await pool.ready();
    try {
      for (const n of [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 65, 200]) {
        const { items, anchors } = buildLedger(n);
        const report = await both(pool, items, {}, CHUNKS);
        assert.ok(report.ok, `${n}: ${JSON.stringify(report.problem)}`);
        assert.equal(report.anchor, anchors[n]);
        // Anchored heads at, before and after chunk boundaries and at powers of two.
        for (const s of new Set([0, 1, n >> 1, n - 1, n].filter((s) => s >= 0 && s <= n))) {
          const r = await both(pool, items, { head: parseAnchor(anchors[s]) }, [97, 1021]);
          assert.ok(r.ok && r.head?.matched, `${n} vs anchor ${s}`);
        }
      }
      // Every alignment of chunk boundaries against line boundaries.
      const { items } = buildLedger(12);
      const sizes = Array.from({ length: 60 }, (_, i) => 180 + 7 * i);
      const r = await both(pool, items, {}, sizes);
      assert.ok(r.ok);
    } finally {
      pool.close();
    }
  },
});

Deno.test({
  name: "verifyFilesWithPool() gives the sequential report for rotated sets and their anchors",
  ...OPTS,
  fn: async () => {
    const pool = new AnalysisPool(2, "none");
    await pool.ready();
    try {
      const { items, anchors } = buildLedger(70, [16, 17, 40]);
      for (const s of [0, 15, 16, 17, 18, 39, 40, 41, 70]) {
        const r = await both(pool, items, { head: parseAnchor(anchors[s]) }, CHUNKS);
        assert.ok(r.ok && r.files.length === 4, `anchor ${s}`);
      }
      // The later files alone build on the first file's reference.
      const later = items.filter((it) => it.file !== "audit-1.jsonl");
      const r = await both(pool, later, { head: parseAnchor(anchors[70]) }, CHUNKS);
      assert.ok(r.ok && r.base?.size === 16, JSON.stringify(r.problem));
    } finally {
      pool.close();
    }
  },
});

Deno.test({
  name:
    "verifyFilesWithPool() names the class, line and seq of every mutation, as the sequential verifier does",
  ...OPTS,
  fn: async () => {
    const pool = new AnalysisPool(2, "none");
    await pool.ready();
    try {
      for (const [n, rotateAt] of [[9, []], [40, [13, 27]]] as [number, number[]][]) {
        const { items, anchors } = buildLedger(n, rotateAt);
        for (const p of positions(n, rotateAt)) {
          for (const c of mutations(items, anchors, p)) {
            const opts = c.head ? { head: parseAnchor(c.head) } : {};
            checkRelative(c, await both(pool, c.items, opts, [97, 1021]));
          }
        }
        for (const c of endCases(items, anchors)) {
          checkRelative(c, await both(pool, c.items, { head: parseAnchor(c.head!) }, [97, 1021]));
        }
        const last = items[items.length - 1];
        const torn: Case = {
          name: "torn",
          items: [...items.slice(0, -1), { ...last, text: last.text.slice(0, -7) }],
          head: anchors[n],
          expect: { class: "torn", index: items.length - 1, seq: items.length - 1 },
        };
        checkRelative(
          torn,
          await both(pool, torn.items, { head: parseAnchor(anchors[n]) }, CHUNKS, ""),
        );
      }
    } finally {
      pool.close();
    }
  },
});

Deno.test({
  name:
    "verifyFilesWithPool() reports a line longer than the limit as the sequential verifier does",
  ...OPTS,
  fn: async () => {
    const pool = new AnalysisPool(1, "none");
    await pool.ready();
    try {
      const { items } = buildLedger(3);
      const long = { file: items[0].file, text: "x".repeat((1 << 20) + 5) };
      const r = await both(pool, [...items, long, items[0]], {}, [4096, 1 << 20]);
      assert.equal(r.problem?.class, "malformed");
      assert.equal(r.problem?.line, 4);
    } finally {
      pool.close();
    }
  },
});

Deno.test({
  name: "verifyFilesWithPool() never gives a different report when a worker cannot load or throws",
  ...OPTS,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "ledger-par-" });
    try {
      const paths = await writeFiles(dir, buildLedger(3).items);
      const want = await verifyLedgerFiles(paths);
      // A worker that never loads: it never becomes ready, this thread does the work (or the
      // failure arrives first): never a different report.
      const missing = new AnalysisPool(
        1,
        "none",
        new URL("./testdata/absent.js", import.meta.url).href,
      );
      try {
        await assert.rejects(() => missing.ready(), WorkerFailure);
        await exactOrWorkerFailure(verifyFilesWithPool(paths, {}, missing, 64), want);
      } finally {
        missing.close();
      }
      // A worker that fails on its first chunk.
      const code =
        "self.onmessage = () => { throw new Error('boom'); }; self.postMessage({ ready: true });";
      const throwing = new AnalysisPool(
        1,
        "none",
        `data:application/javascript,${encodeURIComponent(code)}`,
      );
      try {
        await throwing.ready();
        await exactOrWorkerFailure(verifyFilesWithPool(paths, {}, throwing, 64), want);
      } finally {
        throwing.close();
      }
      // The real worker, once ready, gives the same report.
      const pool = new AnalysisPool(1, "none");
      try {
        await pool.ready();
        assert.deepEqual(await verifyFilesWithPool(paths, {}, pool, 64), want);
      } finally {
        pool.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "verifyFilesWithPool() with a closed pool verifies on this thread or fails with WorkerFailure",
  ...OPTS,
  fn: async () => {
    const pool = new AnalysisPool(1, "none");
    pool.close();
    const dir = await Deno.makeTempDir({ prefix: "ledger-par-" });
    try {
      const paths = await writeFiles(dir, buildLedger(20).items);
      const want = await verifyLedgerFiles(paths);
      for (const chunkBytes of [64, 1024, 1 << 20]) {
        await exactOrWorkerFailure(verifyFilesWithPool(paths, {}, pool, chunkBytes), want);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "verifyFilesInParallel() leaves small or unreadable inputs to the sequential verifier",
  ...OPTS,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "ledger-par-" });
    try {
      const paths = await writeFiles(dir, buildLedger(3).items);
      const plan = {
        workers: 1,
        permissions: "none" as const,
        chunkBytes: 1024,
        minBytes: 1 << 20,
      };
      assert.equal(await verifyFilesInParallel(paths, {}, plan), null);
      assert.equal(
        await verifyFilesInParallel([`${dir}/absent`], {}, { ...plan, minBytes: 0 }),
        null,
      );
      const r = await verifyFilesInParallel(paths, {}, { ...plan, minBytes: 0 });
      assert.ok(r?.ok && r.size === 3);
      // Through the public entry point: the same report with and without workers.
      assert.deepEqual(
        await verifyLedgerFiles(paths, { workers: 2 }),
        await verifyLedgerFiles(paths),
      );
      await assert.rejects(
        () => verifyLedgerFiles([`${dir}/absent`], { workers: 2 }),
        Deno.errors.NotFound,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "analyzedFileChunks() hands chunks to the workers while the consumer is busy",
  ...OPTS,
  fn: async () => {
    const pool = new AnalysisPool(2, "none");
    const dir = await Deno.makeTempDir({ prefix: "ledger-par-" });
    try {
      await pool.ready();
      const [path] = await writeFiles(dir, buildLedger(60).items);
      const before = analysesUsed();
      let chunks = 0;
      let analysed = 0;
      let midLine = false;
      for await (const chunk of analyzedFileChunks(path, pool, 1000, 6)) {
        chunks++;
        // A slow consumer: the reader and the workers run ahead meanwhile.
        await new Promise((r) => setTimeout(r, 20));
        if (attachedAnalysis(chunk, firstLineStart(chunk, midLine))) analysed++;
        midLine = chunk[chunk.length - 1] !== 10;
      }
      assert.ok(chunks > 10);
      // The next chunk after one the consumer takes is its own; the later ones go to workers.
      assert.ok(analysed >= chunks / 2, `${analysed} of ${chunks} analysed by workers`);
      assert.equal(analysesUsed() - before, analysed);
    } finally {
      pool.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
