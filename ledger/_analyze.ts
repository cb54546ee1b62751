/**
 * The per-chunk work of the verifier that depends on nothing but the chunk's bytes: where its
 * complete lines are, their leaf hashes and (in a worker) their strict scan. The verifier's
 * checks of order, chain, tree and anchor stay in one sequential place; this only precomputes
 * pure functions of the bytes, so a worker's results are exactly what the verifier would compute.
 *
 * @module
 */
import { scanEntryLine, type ScannedLine } from "./entry.ts";
import { linesAndLeafHashes } from "./_hash.ts";

/** Scan flag of a line: valid entry. */
export const SCAN_OK = 0;
/** Scan flag of a line: valid rotation entry. */
export const SCAN_ROTATE = 1;
/** Scan flag of a line: not valid (the verifier scans it again for the message). */
export const SCAN_BAD = 2;
/**
 * Added to {@link SCAN_OK} or {@link SCAN_ROTATE}: the line's prev is the hex of the leaf hash
 * of the line before it in the chunk (both valid entries).
 */
export const SCAN_CHAINED = 4;

const HEX = new TextEncoder().encode("0123456789abcdef");

/** What is known of a chunk's complete lines. */
export interface ChunkAnalysis {
  /** Offset of the first complete line (after the rest of a line begun in an earlier chunk). */
  pos: number;
  /** Number of complete lines from `pos` on. */
  count: number;
  /** Start and end (the newline's offset) of each, 2 per line. */
  bounds: Uint32Array;
  /** Leaf hashes, 32 bytes per line. */
  hashes: Uint8Array;
  /** Per line, when scanned: `seq`, offset of the prev digits in the line, {@link SCAN_OK} etc. */
  scan: { seqs: Float64Array; prevAt: Uint32Array; flags: Uint8Array } | null;
}

/**
 * Where the first complete line of a chunk starts.
 *
 * @param chunk the chunk
 * @param midLine whether the chunk begins inside a line (the previous chunk of the file did not
 *   end with a newline)
 * @returns the offset after the first newline, or 0 when not `midLine`
 */
export function firstLineStart(chunk: Uint8Array, midLine: boolean): number {
  if (!midLine) return 0;
  const nl = chunk.indexOf(10);
  return nl < 0 ? chunk.length : nl + 1;
}

/**
 * Finds, hashes and optionally scans the complete lines of a chunk from `pos` on.
 *
 * @param chunk the chunk
 * @param pos where its first complete line starts (see {@link firstLineStart})
 * @param scan whether to scan each line too
 * @returns the analysis
 */
export function analyzeChunk(chunk: Uint8Array, pos: number, scan: boolean): ChunkAnalysis {
  const { count, bounds: b, hashes } = linesAndLeafHashes(chunk, pos);
  let scanned: ChunkAnalysis["scan"] = null;
  if (scan) {
    const seqs = new Float64Array(count);
    const prevAt = new Uint32Array(count);
    const flags = new Uint8Array(count);
    const s: ScannedLine = { error: "", seq: 0, prevOffset: 0, rotate: false };
    for (let i = 0; i < count; i++) {
      const start = b[2 * i];
      scanEntryLine(chunk, start, b[2 * i + 1], s);
      if (s.error) {
        flags[i] = SCAN_BAD;
      } else {
        flags[i] = s.rotate ? SCAN_ROTATE : SCAN_OK;
        seqs[i] = s.seq;
        prevAt[i] = s.prevOffset - start;
      }
    }
    // The hash chain inside the chunk, so that the verifier need not read the prev digits of
    // lines whose predecessor it has just taken.
    for (let i = 1; i < count; i++) {
      if (flags[i] === SCAN_BAD || flags[i - 1] === SCAN_BAD) continue;
      const p = b[2 * i] + prevAt[i];
      const h = 32 * (i - 1);
      let chained = true;
      for (let k = 0; k < 32; k++) {
        const byte = hashes[h + k];
        if (chunk[p + 2 * k] !== HEX[byte >> 4] || chunk[p + 2 * k + 1] !== HEX[byte & 15]) {
          chained = false;
          break;
        }
      }
      if (chained) flags[i] |= SCAN_CHAINED;
    }
    scanned = { seqs, prevAt, flags };
  }
  return { pos, count, bounds: b, hashes, scan: scanned };
}

/**
 * Analyses computed elsewhere (by a worker) for chunks about to be verified; the verifier uses
 * one only when it describes the chunk as the verifier reads it (same first line).
 */
const given = new WeakMap<Uint8Array, ChunkAnalysis>();

/**
 * Attaches a precomputed analysis to a chunk.
 *
 * @param chunk the chunk
 * @param analysis its analysis
 */
export function attachAnalysis(chunk: Uint8Array, analysis: ChunkAnalysis): void {
  given.set(chunk, analysis);
}

/**
 * The analysis attached to a chunk, if it is consistent with it.
 *
 * @param chunk the chunk
 * @param pos where the verifier finds its first complete line
 * @returns the analysis, or null to compute it
 */
export function attachedAnalysis(chunk: Uint8Array, pos: number): ChunkAnalysis | null {
  const a = given.get(chunk);
  if (!a) return null;
  given.delete(chunk);
  const n = a.count;
  if (
    a.pos !== pos || a.bounds.length < 2 * n || a.hashes.length !== 32 * n || !a.scan ||
    a.scan.flags.length !== n || a.scan.seqs.length !== n || a.scan.prevAt.length !== n ||
    (n > 0 && (a.bounds[0] !== pos || a.bounds[2 * n - 1] >= chunk.length ||
      chunk[a.bounds[2 * n - 1]] !== 10))
  ) return null;
  used++;
  return a;
}

let used = 0;

/**
 * How many attached analyses the verifier has used so far (for tests).
 *
 * @returns the count
 */
export function analysesUsed(): number {
  return used;
}
