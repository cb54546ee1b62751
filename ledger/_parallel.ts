/**
 * The verifier's parallel reader: reads a file in chunks and has workers find, hash and scan
 * each chunk's lines while the verifier checks the chunks before them. The verifier's checks
 * (order, chain, tree, anchor, tamper classification) stay sequential and single-sourced; the
 * workers compute only pure functions of the bytes (see `_analyze.ts`).
 *
 * Memory is bounded: at most `depth` chunks are read ahead.
 *
 * @module
 */
import { analyzeChunk, attachAnalysis, type ChunkAnalysis, firstLineStart } from "./_analyze.ts";
// In the module graph so that compiled executables hold the worker's code.
import "./_verify_worker.ts";
import type { AnalyzeReply, AnalyzeRequest, ReadyMessage } from "./_verify_worker.ts";
import { verifyLedger, type VerifyOptions, type VerifyReport } from "./verify.ts";

/** A worker failed or could not start: the caller verifies without workers instead. */
export class WorkerFailure extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "WorkerFailure";
  }
}

/** Permissions of the workers: `"none"` needs `--unstable-worker-options`. */
export type WorkerPermissions = "inherit" | "none";

interface Waiting {
  worker: number;
  resolve: (r: { buffer: ArrayBuffer; analysis: ChunkAnalysis }) => void;
  reject: (e: unknown) => void;
}

/** Chunks a worker may hold at once: one at work, one waiting, so it never idles. */
const PER_WORKER = 2;

/** A few workers analysing chunks, each holding at most {@link PER_WORKER} at a time. */
export class AnalysisPool {
  #workers: Worker[] = [];
  /** Chunks each worker holds; Infinity until it said it is ready (it is loading meanwhile). */
  #held: number[] = [];
  /** Called when a worker becomes ready. */
  onReady: (() => void) | null = null;
  #allReady = Promise.withResolvers<void>();
  #waiting = new Map<number, Waiting>();
  #id = 0;
  #failed: WorkerFailure | null = null;

  /**
   * @param count number of workers (at least 1)
   * @param permissions `"none"` to start them without any permission
   * @param url the worker module (tests pass another)
   * @throws {WorkerFailure} when a worker cannot be created
   */
  constructor(
    count: number,
    permissions: WorkerPermissions,
    url: string = new URL("./_verify_worker.ts", import.meta.url).href,
  ) {
    try {
      for (let i = 0; i < count; i++) {
        const options = {
          type: "module",
          name: "infraveil-ledger-verify",
          ...(permissions === "none" ? { deno: { permissions: "none" } } : {}),
        } as WorkerOptions;
        const w = new Worker(url, options);
        const index = i;
        w.onmessage = (e: MessageEvent<AnalyzeReply | ReadyMessage>) => {
          if ("ready" in e.data) {
            this.#held[index] = 0;
            this.onReady?.();
            if (this.#held.every((h) => h !== Infinity)) this.#allReady.resolve();
          } else {
            this.#reply(e.data);
          }
        };
        w.onerror = (e: ErrorEvent) => {
          e.preventDefault();
          this.#fail(new WorkerFailure(`ledger verify worker failed: ${e.message}`));
        };
        w.onmessageerror = () => this.#fail(new WorkerFailure("unreadable worker message"));
        this.#workers.push(w);
        this.#held.push(Infinity);
      }
    } catch (e) {
      this.close();
      throw new WorkerFailure(`cannot start a ledger verify worker: ${e}`, { cause: e });
    }
  }

  #reply(r: AnalyzeReply): void {
    const w = this.#waiting.get(r.id);
    if (!w) return;
    this.#waiting.delete(r.id);
    this.#held[w.worker]--;
    if (r.analysis) w.resolve({ buffer: r.buffer, analysis: r.analysis });
    else w.reject(new WorkerFailure(`ledger verify worker: ${r.error ?? "no analysis"}`));
  }

  /**
   * Resolves when every worker is ready; rejects when one failed.
   *
   * @returns the promise
   */
  ready(): Promise<void> {
    return this.#allReady.promise;
  }

  #fail(e: WorkerFailure): void {
    this.#failed ??= e;
    this.#allReady.promise.catch(() => {});
    this.#allReady.reject(e);
    for (const w of this.#waiting.values()) w.reject(e);
    this.#waiting.clear();
  }

  /**
   * Has the least busy worker analyse a chunk, if one is ready and has room; the buffer is
   * transferred there and back.
   *
   * @param buffer the chunk's buffer
   * @param length bytes of the chunk in it
   * @param midLine whether the chunk begins inside a line
   * @returns the buffer and the analysis, or null when every worker is full or still loading
   */
  tryAnalyze(
    buffer: ArrayBuffer,
    length: number,
    midLine: boolean,
  ): Promise<{ buffer: ArrayBuffer; analysis: ChunkAnalysis }> | null {
    if (this.#failed) return Promise.reject(this.#failed);
    let worker = -1;
    for (let i = 0; i < this.#workers.length; i++) {
      if (this.#held[i] < PER_WORKER && (worker < 0 || this.#held[i] < this.#held[worker])) {
        worker = i;
      }
    }
    if (worker < 0) return null;
    const id = this.#id++;
    this.#held[worker]++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { worker, resolve, reject });
      const request: AnalyzeRequest = { id, buffer, length, midLine };
      this.#workers[worker].postMessage(request, [buffer]);
    });
  }

  /** Number of workers. */
  get size(): number {
    return this.#workers.length;
  }

  /** Stops the workers. */
  close(): void {
    for (const w of this.#workers) w.terminate();
    this.#workers = [];
    this.#fail(new WorkerFailure("closed"));
  }
}

/** A chunk read ahead: with a worker, analysed on this thread, or waiting for either. */
interface ReadChunk {
  buffer: ArrayBuffer;
  length: number;
  midLine: boolean;
  /** The worker's analysis, if a worker took it. */
  job: Promise<{ buffer: ArrayBuffer; analysis: ChunkAnalysis }> | null;
  /** Whether the job has settled. */
  settled: boolean;
  /** The analysis made on this thread while waiting for a worker, if any. */
  local: ChunkAnalysis | null;
}

/**
 * Reads a file in chunks, in order, handing each to a worker with room for it. While the
 * consumer waits for a worker, this thread analyses a later chunk no worker has taken; a chunk
 * nobody took by the time the consumer needs it is yielded without an analysis (the verifier
 * then analyses it itself). So a machine whose cores are busy costs little more than no workers.
 * The consumer must be done with a chunk before it asks for the next (its buffer is reused).
 *
 * @param path the file
 * @param pool the workers
 * @param chunkBytes bytes per chunk
 * @param depth chunks read ahead at most
 * @returns the chunks, each with its analysis attached when a worker made one
 */
export async function* analyzedFileChunks(
  path: string,
  pool: AnalysisPool,
  chunkBytes: number,
  depth: number,
): AsyncGenerator<Uint8Array> {
  const file = await Deno.open(path, { read: true });
  const free: ArrayBuffer[] = [];
  let allocated = 0;
  const ready: ReadChunk[] = []; // read and not yet yielded, in file order
  let ended = false; // the last chunk was read (or reading failed)
  let readError: unknown = null;
  let stopped = false;
  // Wakes the consumer (a chunk was read) and the reader (a buffer was freed).
  const wake: { chunk: (() => void) | null; buffer: (() => void) | null } = {
    chunk: null,
    buffer: null,
  };
  const signal = (which: "chunk" | "buffer"): void => {
    const f = wake[which];
    wake[which] = null;
    f?.();
  };
  // Gives waiting chunks to workers with room, except the next one the consumer takes: that
  // one this thread analyses sooner than a worker would answer (a worker's first chunks run
  // cold).
  const dispatch = (): void => {
    for (let i = 1; i < ready.length; i++) {
      const c = ready[i];
      if (c.job || c.local) continue;
      const job = pool.tryAnalyze(c.buffer, c.length, c.midLine);
      if (!job) return;
      c.job = job;
      const settle = () => {
        c.settled = true;
        signal("chunk");
        dispatch(); // a worker has room again
      };
      job.then(settle, settle); // failures reach the consumer through c.job
    }
  };
  const read = async (): Promise<void> => {
    let midLine = false;
    try {
      while (!stopped) {
        while (free.length === 0 && allocated >= depth && !stopped) {
          await new Promise<void>((r) => wake.buffer = r);
        }
        if (stopped) return;
        let buffer = free.pop();
        if (!buffer) {
          buffer = new ArrayBuffer(chunkBytes);
          allocated++;
        }
        const view = new Uint8Array(buffer);
        let filled = 0;
        while (filled < chunkBytes) {
          const n = await file.read(view.subarray(filled));
          if (n === null) break;
          filled += n;
        }
        if (filled === 0) break;
        ready.push({ buffer, length: filled, midLine, job: null, settled: false, local: null });
        midLine = view[filled - 1] !== 10;
        dispatch();
        signal("chunk");
        if (filled < chunkBytes) break;
      }
    } catch (e) {
      readError = e;
    } finally {
      ended = true;
      signal("chunk");
    }
  };
  pool.onReady = dispatch;
  const reader = read();
  try {
    for (;;) {
      while (ready.length === 0 && !ended) await new Promise<void>((r) => wake.chunk = r);
      if (ready.length === 0) {
        if (readError) throw readError;
        return;
      }
      const c = ready[0];
      // Waiting for a worker: analyse a chunk no worker has taken meanwhile.
      while (c.job && !c.settled) {
        const idle = ready.find((r) => !r.job && !r.local);
        if (idle) {
          const bytes = new Uint8Array(idle.buffer, 0, idle.length);
          idle.local = analyzeChunk(bytes, firstLineStart(bytes, idle.midLine), true);
        } else {
          await new Promise<void>((r) => wake.chunk = r);
        }
      }
      let buffer = c.buffer;
      let analysis: ChunkAnalysis | null = c.local;
      if (c.job) ({ buffer, analysis } = await c.job);
      ready.shift();
      dispatch();
      const chunk = new Uint8Array(buffer, 0, c.length);
      if (analysis) attachAnalysis(chunk, analysis);
      yield chunk;
      free.push(buffer);
      signal("buffer");
    }
  } finally {
    pool.onReady = null;
    stopped = true;
    signal("buffer");
    await reader;
    file.close();
  }
}

/** How {@link verifyFilesInParallel} splits the work. */
export interface ParallelPlan {
  /** Number of workers. */
  workers: number;
  /** Their permissions. */
  permissions: WorkerPermissions;
  /** Bytes per chunk. */
  chunkBytes: number;
  /** Below this many bytes in all, starting workers costs more than it saves: returns null. */
  minBytes: number;
}

/**
 * Verifies files with workers analysing chunks ahead of the verifier.
 *
 * @param paths the files, in order
 * @param options the verifier's options
 * @param plan workers and chunking
 * @returns the report, or null when the files are too small for workers to pay off or a worker
 *   failed (the caller then verifies without workers; the report would be the same)
 * @throws {Deno.errors.NotFound} or another file-system error when a file cannot be read
 */
export async function verifyFilesInParallel(
  paths: readonly string[],
  options: VerifyOptions,
  plan: ParallelPlan,
): Promise<VerifyReport | null> {
  let total = 0;
  for (const p of paths) {
    try {
      total += (await Deno.stat(p)).size;
    } catch {
      return null; // the sequential verifier reports it
    }
  }
  if (plan.workers < 1 || total < plan.minBytes) return null;
  let pool: AnalysisPool | null = null;
  try {
    pool = new AnalysisPool(plan.workers, plan.permissions);
    return await verifyFilesWithPool(paths, options, pool, plan.chunkBytes);
  } catch (e) {
    if (e instanceof WorkerFailure) return null;
    throw e;
  } finally {
    pool?.close();
  }
}

/**
 * Verifies files with a pool's workers analysing chunks ahead of the verifier.
 *
 * @param paths the files, in order
 * @param options the verifier's options
 * @param pool the workers
 * @param chunkBytes bytes per chunk
 * @returns the report
 * @throws {WorkerFailure} when a worker failed
 */
export async function verifyFilesWithPool(
  paths: readonly string[],
  options: VerifyOptions,
  pool: AnalysisPool,
  chunkBytes: number,
): Promise<VerifyReport> {
  return await verifyLedger(
    paths.map((name) => ({
      name,
      data: analyzedFileChunks(name, pool, chunkBytes, 2 * pool.size + 2),
    })),
    options,
  );
}
