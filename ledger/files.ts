/**
 * Verifying ledger files by path: the streaming verifier over files read in large chunks,
 * optionally with workers finding, hashing and scanning lines ahead of it.
 *
 * @module
 */
import { verifyLedger, type VerifyOptions, type VerifyReport } from "./verify.ts";
import { CHUNK_BYTES, fileChunks } from "./_io.ts";
import { verifyFilesInParallel } from "./_parallel.ts";

/** Options of {@link verifyLedgerFiles}. */
export interface VerifyFilesOptions extends VerifyOptions {
  /**
   * Workers that find, hash and scan lines while the verifier checks the lines before them
   * (default 0: none). Used when the files hold at least 64 MiB together; the report is the same
   * either way, and if a worker cannot start or fails, the files are verified without workers.
   */
  workers?: number;
  /**
   * The workers' permissions: `"inherit"` (default) or `"none"`, which needs the
   * `--unstable-worker-options` flag (without it Deno exits). The workers read and write
   * nothing either way: they compute over the bytes they are sent.
   */
  workerPermissions?: "inherit" | "none";
}

/** Total size below which workers are not started. */
const PARALLEL_MIN_BYTES = 64 << 20;

/** How many times a file a writer changed while it was being read is read again. */
const LIVE_ATTEMPTS = 5;

/** A file's size and modification and change times, or null when it cannot be read. */
async function stamp(path: string): Promise<string | null> {
  try {
    const info = await Deno.stat(path);
    return `${info.size}:${info.mtime?.getTime()}:${info.ctime?.getTime()}`;
  } catch {
    return null;
  }
}

/**
 * Whether a writer may have the ledger open: its lock file exists. Not asked when reading it is
 * not already permitted (no permission prompt); a lock file a writer that did not close left
 * behind counts too, which only costs one more read.
 */
async function writerOpen(path: string): Promise<boolean> {
  const lock = `${path}.lock`;
  if (Deno.permissions.querySync({ name: "read", path: lock }).state !== "granted") return false;
  try {
    await Deno.stat(lock);
    return true;
  } catch {
    return false;
  }
}

/**
 * Verifies ledger files (a rotated ledger's files, oldest first), streaming each file.
 *
 * @param paths the files, in order
 * @param options anchored head, checkpoint keys, workers
 * @returns the report
 * @throws {Deno.errors.NotFound} or another file-system error when a file cannot be read
 */
export async function verifyLedgerFiles(
  paths: readonly string[],
  options: VerifyFilesOptions = {},
): Promise<VerifyReport> {
  // A writer may append while the files are read. In fsync mode it writes each entry over
  // zeros it preallocated, so a reader can see a page before the entry reaches it and the next
  // page after: the read is then of no single state of the file. A problem found in a file that
  // changed during the read is checked again with a fresh read (up to 5 reads in all; once
  // more when the file did not seem to change but a writer has it open, as a change within the
  // clock's granularity would not show); a damaged file is damaged every time.
  for (let attempt = 1;; attempt++) {
    const before = await Promise.all(paths.map(stamp));
    const report = await verifyOnce(paths, options);
    if (report.ok || attempt === LIVE_ATTEMPTS) return report;
    const file = report.problem!.file;
    const changed = (await Promise.all(paths.map(stamp))).some((s, i) => s !== before[i]);
    if (!changed && (attempt > 1 || !(await writerOpen(file)))) return report;
    await new Promise((r) => setTimeout(r, 10 * attempt));
  }
}

async function verifyOnce(
  paths: readonly string[],
  options: VerifyFilesOptions,
): Promise<VerifyReport> {
  const { workers = 0, workerPermissions = "inherit", ...verify } = options;
  if (workers > 0) {
    const report = await verifyFilesInParallel(paths, verify, {
      workers,
      permissions: workerPermissions,
      chunkBytes: CHUNK_BYTES,
      minBytes: PARALLEL_MIN_BYTES,
    });
    if (report) return report;
  }
  // The verifier finishes each chunk before it reads the next, so one buffer serves them all.
  return await verifyLedger(
    paths.map((name) => ({ name, data: fileChunks(name, undefined, true) })),
    verify,
  );
}
