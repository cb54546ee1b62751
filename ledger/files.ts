/**
 * Verifying ledger files by path: the streaming verifier over files read in large chunks.
 *
 * @module
 */
import { verifyLedger, type VerifyOptions, type VerifyReport } from "./verify.ts";
import { fileChunks } from "./_io.ts";

/**
 * Verifies ledger files (a rotated ledger's files, oldest first), streaming each file.
 *
 * @param paths the files, in order
 * @param options anchored head, checkpoint keys
 * @returns the report
 * @throws {Deno.errors.NotFound} or another file-system error when a file cannot be read
 */
export function verifyLedgerFiles(
  paths: readonly string[],
  options: VerifyOptions = {},
): Promise<VerifyReport> {
  // The verifier finishes each chunk before it reads the next, so one buffer serves them all.
  return verifyLedger(
    paths.map((name) => ({ name, data: fileChunks(name, undefined, true) })),
    options,
  );
}
