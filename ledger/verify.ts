/**
 * The offline ledger verifier: streams an ordered set of files (or byte buffers) in constant
 * memory, checks every line's format, `seq` and `prev` chain and the RFC 6962 tree, optionally
 * against an anchored head, and names the first broken line with a tamper class.
 *
 * It never throws on ledger content: anything unreadable is a finding. It throws only for a
 * caller error (an anchor older than the first file given).
 *
 * @module
 */
import { concatBytes, decodeHex, encodeHex } from "@infraveil/trust";
import { type Anchor, formatAnchor } from "./anchor.ts";
import { parseCheckpointNote, verifiersForKey, verifyCheckpoint } from "./checkpoint.ts";
import { GENESIS_PREV, MAX_LINE_BYTES, scanEntryLine, type ScannedLine } from "./entry.ts";
import { LedgerError } from "./error.ts";
import type { LedgerStateJson } from "./state.ts";
import { CompactTree } from "./merkle.ts";
import { leafHashOf } from "./_hash.ts";
import {
  analyzeChunk,
  attachedAnalysis,
  type ChunkAnalysis,
  SCAN_BAD,
  SCAN_CHAINED,
  SCAN_ROTATE,
} from "./_analyze.ts";

/** What kind of damage the verifier found (see docs/ledger.md for the rules). */
export type TamperClass =
  | "edited"
  | "deleted"
  | "reordered"
  | "inserted"
  | "gap"
  | "truncated"
  | "rewritten"
  | "torn"
  | "malformed"
  | "bad-anchor";

/** The first problem found. */
export interface VerifyProblem {
  /** The tamper class. */
  class: TamperClass;
  /** Name of the file holding the first affected line. */
  file: string;
  /** 1-based line number in that file of the first affected line. */
  line: number;
  /** The `seq` that belongs at that position (the first affected entry). */
  seq: number;
  /** What is wrong and how it was recognised. */
  message: string;
  /** Byte offset of that line in its file. */
  offset: number;
}

/** One input of the verifier. */
export interface LedgerSource {
  /** A name for messages (usually the file path). */
  name: string;
  /**
   * The bytes: a buffer, or a stream of chunks. The verifier is done with a chunk before it
   * asks for the next, so a stream may hand out the same buffer each time.
   */
  data: Uint8Array | AsyncIterable<Uint8Array>;
}

/** Options of {@link verifyLedger}. */
export interface VerifyOptions {
  /** An anchored head: the first `size` entries must reproduce `root`. */
  head?: Anchor;
  /** Raw Ed25519 public keys to check the checkpoints held in rotation entries with. */
  checkpointKeys?: readonly Uint8Array[];
  /** How many lines to read past a break to classify it (default 256). */
  lookahead?: number;
}

/** A summary of one input. */
export interface FileSummary {
  /** The input's name. */
  name: string;
  /** Lines read (complete lines, plus a torn last line). */
  lines: number;
  /** `seq` of the first line, if it could be read. */
  firstSeq: number | null;
  /**
   * Zero bytes at the end of the file, after the last line: space a writer preallocated (it
   * has the file open, or stopped without closing it). Absent when there are none.
   */
  padding?: number;
}

/** The verifier's report. */
export interface VerifyReport {
  /** True when no problem was found. */
  ok: boolean;
  /** Entries verified (up to the first problem). */
  size: number;
  /** Hex root over them. */
  root: string;
  /** `SIZE:ROOTHEX` of the verified entries. */
  anchor: string;
  /** Per-input summary. */
  files: FileSummary[];
  /** The anchored head checked, if one was given. */
  head?: { size: number; root: string; matched: boolean };
  /**
   * When the first input starts with a rotation entry, the earlier head it builds on. It is
   * trusted only as far as an anchor covering it, or its signed checkpoint, says.
   */
  base?: { size: number; root: string; checkpointVerified: boolean | null };
  /** The first problem, when `ok` is false. */
  problem?: VerifyProblem;
  /** The state after the verified entries, to continue appending after them. */
  state: LedgerStateJson;
}

/** A line as the classifier sees it. */
interface Rec {
  file: string;
  line: number;
  offset: number;
  fileStart: boolean;
  ok: boolean;
  seq: number;
  prev: string;
  hash: string;
  rotateSize: number | null;
  rotateFile: string | null;
  /** The line's bytes and the offset of its prev digits (kept for the broken line only). */
  bytes: Uint8Array | null;
  prevAt: number;
}

function baseName(path: string): string {
  return path.split(/[\\/]/).pop()!;
}

const HEX = new TextEncoder().encode("0123456789abcdef");

function hexInto(hash: Uint8Array, out: Uint8Array): void {
  for (let i = 0; i < 32; i++) {
    out[2 * i] = HEX[hash[i] >> 4];
    out[2 * i + 1] = HEX[hash[i] & 15];
  }
}

const latin1 = new TextDecoder("latin1");
const utf8Decoder = new TextDecoder();

/** Reads the `data.previous` reference of a rotation line; null if absent or malformed. */
function rotationReference(
  buf: Uint8Array,
  start: number,
  end: number,
): { size: number; root: string; frontier: string[]; file?: string; checkpoint?: string } | null {
  try {
    const entry = JSON.parse(utf8Decoder.decode(buf.subarray(start, end)));
    const p = entry?.data?.previous;
    if (
      !p || !Number.isSafeInteger(p.size) || typeof p.root !== "string" ||
      !/^[0-9a-f]{64}$/.test(p.root) || !Array.isArray(p.frontier) ||
      !p.frontier.every((h: unknown) => typeof h === "string" && /^[0-9a-f]{64}$/.test(h)) ||
      (p.checkpoint !== undefined && typeof p.checkpoint !== "string")
    ) return null;
    return p;
  } catch {
    return null;
  }
}

class Verifier {
  readonly head?: Anchor;
  readonly keys: readonly Uint8Array[];
  readonly lookahead: number;
  tree = new CompactTree();
  /**
   * Leaf hashes of good lines not yet in `tree`: hashes `pendFrom..pendFrom+pendCount` of
   * `pendHashes`. They go in together (see {@link syncTree}); `expect` counts them already.
   */
  pendHashes: Uint8Array | null = null;
  pendFrom = 0;
  pendCount = 0;
  expect = 0;
  /** Hex of the last good line's leaf hash, and the same bytes as little-endian words. */
  prevHex = new Uint8Array(64);
  prevWords = new Uint32Array(this.prevHex.buffer);
  /** The buffer the current line is in, as a DataView for the word-wise prev comparison. */
  viewOf: Uint8Array | null = null;
  view: DataView = new DataView(new ArrayBuffer(0));
  scanned: ScannedLine = { error: "", seq: 0, prevOffset: 0, rotate: false };
  started = false;
  // The last good line, for the classifier.
  lastFile = "";
  lastLine = 0;
  lastPrev = new Uint8Array(64);
  /** Where the last line taken has its hash in a chunk's analysis (null: not from one). */
  lastKnown: Uint8Array | null = null;
  lastKnownIndex = -1;
  lastPrevWords = new Uint32Array(this.lastPrev.buffer);
  // After a break: the broken line, then up to `lookahead` more.
  broken: Rec | null = null;
  expectPrevAtBreak = "";
  prior: Rec | null = null;
  after: Rec[] = [];
  collecting = false;
  problem: VerifyProblem | null = null;
  /** The anchor did not match at the last line; held back one line in case a break explains it. */
  pendingRewrite: VerifyProblem | null = null;
  treeAtBreak: CompactTree | null = null;
  base: VerifyReport["base"];
  headChecked: VerifyReport["head"];
  files: FileSummary[] = [];

  constructor(options: VerifyOptions) {
    this.head = options.head;
    this.keys = options.checkpointKeys ?? [];
    this.lookahead = options.lookahead ?? 256;
    this.prevHex.set(new TextEncoder().encode(GENESIS_PREV));
    if (this.head && this.head.size === 0) this.checkHead();
  }

  get done(): boolean {
    return this.problem !== null;
  }

  /** Byte offset of the current line in its file. */
  offset = 0;
  lastOffset = 0;

  fail(
    cls: TamperClass,
    file: string,
    line: number,
    seq: number,
    message: string,
    offset = this.offset,
  ): void {
    if (!this.problem) this.problem = { class: cls, file, line, seq, message, offset };
  }

  /** Appends the pending leaf hashes: call before anything reads `tree`. */
  syncTree(): void {
    if (this.pendCount > 0) {
      this.tree.appendAll(this.pendHashes!, this.pendFrom, this.pendCount);
      this.pendCount = 0;
    }
    this.pendHashes = null;
  }

  checkHead(): void {
    this.syncTree();
    const head = this.head!;
    const root = this.tree.root();
    const matched = encodeHex(root) === encodeHex(head.root);
    this.headChecked = { size: head.size, root: encodeHex(head.root), matched };
  }

  holdRewrite(file: string, line: number, seq: number, message: string): void {
    this.pendingRewrite = { class: "rewritten", file, line, seq, message, offset: this.offset };
  }

  /** Reports a held-back anchor mismatch (the line after it did not break the chain). */
  releaseRewrite(): void {
    if (this.pendingRewrite && !this.collecting) {
      const p = this.pendingRewrite;
      this.pendingRewrite = null;
      this.fail(p.class, p.file, p.line, p.seq, p.message, p.offset);
    }
  }

  /** Handles one complete line; `torn` marks a final line without its newline. */
  line(
    buf: Uint8Array,
    start: number,
    end: number,
    file: FileSummary,
    torn: boolean,
    known?: Uint8Array,
    knownIndex = 0,
    scan: ChunkAnalysis["scan"] = null,
  ): void {
    const lineNo = file.lines;
    const fileStart = lineNo === 1;
    const s = this.scanned;
    const flag = scan ? scan.flags[knownIndex] : SCAN_BAD;
    if (flag === SCAN_BAD) {
      scanEntryLine(buf, start, end, s);
    } else {
      s.error = "";
      s.seq = scan!.seqs[knownIndex];
      s.prevOffset = start + scan!.prevAt[knownIndex];
      s.rotate = (flag & ~SCAN_CHAINED) === SCAN_ROTATE;
    }
    if (fileStart && !s.error) file.firstSeq = s.seq;
    if (this.collecting) {
      if (s.error || torn) {
        this.finishBreak();
        return;
      }
      const hash = known
        ? known.subarray(32 * knownIndex, 32 * knownIndex + 32)
        : leafHashOf(buf, start, end);
      this.after.push(this.record(buf, start, end, file.name, lineNo, fileStart, hash));
      if (this.after.length >= this.lookahead) this.finishBreak();
      return;
    }
    if (torn || s.error) {
      this.releaseRewrite();
      if (this.done) return;
    }
    if (torn) {
      this.fail(
        "torn",
        file.name,
        lineNo,
        this.expect,
        "the last line has no newline: a write was interrupted (the writer quarantines it on open)",
      );
      return;
    }
    if (s.error) {
      this.fail("malformed", file.name, lineNo, this.expect, `not a valid entry: ${s.error}`);
      return;
    }
    const hash = known
      ? known.subarray(32 * knownIndex, 32 * knownIndex + 32)
      : leafHashOf(buf, start, end);
    if (!this.started) {
      this.started = true;
      if (s.rotate && s.seq > 0 && this.tree.size === 0) {
        if (!this.startFromRotation(buf, start, end, file.name, lineNo)) return;
      }
    }
    // The prev digits against the last line's hash, four bytes at a time — unless the analysis
    // found them equal to the hash of the line before in the chunk, which is the last line taken.
    let prevOk = true;
    const p = s.prevOffset;
    const chained = flag !== SCAN_BAD && (flag & SCAN_CHAINED) !== 0 &&
      this.lastKnown === known && this.lastKnownIndex === knownIndex - 1;
    if (!chained) {
      if (buf !== this.viewOf) {
        this.viewOf = buf;
        this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
      }
      const view = this.view;
      const words = this.prevWords;
      for (let i = 0; i < 16; i++) {
        if (view.getUint32(p + 4 * i, true) !== words[i]) {
          prevOk = false;
          break;
        }
      }
    }
    if (s.seq !== this.expect || !prevOk) {
      this.prior = this.lastLine > 0
        ? {
          file: this.lastFile,
          line: this.lastLine,
          offset: this.lastOffset,
          fileStart: false,
          ok: true,
          seq: this.expect - 1,
          prev: latin1.decode(this.lastPrev),
          hash: latin1.decode(this.prevHex),
          rotateSize: null,
          rotateFile: null,
          bytes: null,
          prevAt: 0,
        }
        : null;
      this.expectPrevAtBreak = latin1.decode(this.prevHex);
      this.broken = this.record(buf, start, end, file.name, lineNo, fileStart, hash);
      this.broken.bytes = buf.slice(start, end);
      this.syncTree();
      this.treeAtBreak = this.tree.clone();
      this.collecting = true;
      if (this.lookahead === 0) this.finishBreak();
      return;
    }
    this.releaseRewrite();
    if (this.done) return;
    if (s.rotate) this.syncTree();
    if (s.rotate && !this.rotationMatches(buf, start, end)) {
      this.fail(
        "edited",
        file.name,
        lineNo,
        s.seq,
        `the rotation entry's reference to the previous file's final checkpoint does not match the entries before it (expected ${
          formatAnchor({ size: this.tree.size, root: this.tree.root() })
        })`,
      );
      return;
    }
    if (known && !s.rotate) {
      // Deferred: consecutive good lines of one batch go into the tree together.
      if (this.pendCount === 0 || this.pendHashes !== known) {
        this.syncTree();
        this.pendHashes = known;
        this.pendFrom = knownIndex;
      } else if (this.pendFrom + this.pendCount !== knownIndex) {
        this.syncTree();
        this.pendHashes = known;
        this.pendFrom = knownIndex;
      }
      this.pendCount++;
    } else {
      this.syncTree();
      this.tree.append(hash);
    }
    this.expect++;
    // The line's prev equals the old prevHex (checked above): swap instead of copying.
    const lastPrev = this.lastPrev;
    this.lastPrev = this.prevHex;
    this.prevHex = lastPrev;
    const lastWords = this.lastPrevWords;
    this.lastPrevWords = this.prevWords;
    this.prevWords = lastWords;
    hexInto(hash, this.prevHex);
    this.lastKnown = known ?? null;
    this.lastKnownIndex = knownIndex;
    this.lastFile = file.name;
    this.lastLine = lineNo;
    this.lastOffset = this.offset;
    if (this.head && this.expect === this.head.size) {
      this.checkHead();
      if (!this.headChecked!.matched) {
        this.holdRewrite(
          file.name,
          lineNo,
          s.seq,
          `the first ${this.head.size} entries do not reproduce the anchored root although their chain is intact: an entry at or before seq ${s.seq} was changed and every later hash recomputed`,
        );
      }
    }
  }

  record(
    buf: Uint8Array,
    start: number,
    end: number,
    file: string,
    line: number,
    fileStart: boolean,
    hash: Uint8Array,
  ): Rec {
    const s = this.scanned;
    const ref = s.rotate ? rotationReference(buf, start, end) : null;
    return {
      file,
      line,
      offset: this.offset,
      fileStart,
      ok: true,
      seq: s.seq,
      prev: latin1.decode(buf.subarray(s.prevOffset, s.prevOffset + 64)),
      hash: encodeHex(hash),
      rotateSize: ref ? ref.size : null,
      rotateFile: ref && typeof ref.file === "string" ? ref.file : null,
      bytes: null,
      prevAt: s.prevOffset - start,
    };
  }

  startFromRotation(
    buf: Uint8Array,
    start: number,
    end: number,
    file: string,
    line: number,
  ): boolean {
    const ref = rotationReference(buf, start, end);
    const s = this.scanned;
    if (!ref || ref.size !== s.seq) {
      this.fail("malformed", file, line, s.seq, "the rotation entry's reference is malformed");
      return false;
    }
    let tree: CompactTree;
    try {
      tree = new CompactTree(ref.size, ref.frontier.map((h) => decodeHex(h)));
    } catch {
      this.fail("malformed", file, line, s.seq, "the rotation entry's frontier does not fit");
      return false;
    }
    if (encodeHex(tree.root()) !== ref.root) {
      this.fail(
        "edited",
        file,
        line,
        s.seq,
        "the rotation entry's frontier does not give its root",
      );
      return false;
    }
    let checkpointVerified: boolean | null = null;
    if (ref.checkpoint !== undefined && this.keys.length > 0) {
      try {
        const cp = verifyCheckpoint(
          ref.checkpoint,
          this.keys.flatMap((k) => verifiersForKey(ref.checkpoint!, k)),
        );
        checkpointVerified = cp.size === ref.size && encodeHex(cp.root) === ref.root;
      } catch {
        checkpointVerified = false;
      }
    } else if (ref.checkpoint !== undefined) {
      try {
        parseCheckpointNote(ref.checkpoint);
      } catch {
        this.fail("malformed", file, line, s.seq, "the rotation entry's checkpoint is malformed");
        return false;
      }
    }
    if (this.head && this.head.size < ref.size) {
      throw new LedgerError(
        "BAD_ANCHOR",
        `The anchor's size ${this.head.size} is before the first entry given (seq ${ref.size} in ${file}); pass the earlier ledger files too`,
      );
    }
    this.tree = tree;
    this.expect = ref.size;
    this.prevHex.set(buf.subarray(s.prevOffset, s.prevOffset + 64));
    this.base = { size: ref.size, root: ref.root, checkpointVerified };
    if (this.head && this.head.size === ref.size) {
      this.checkHead();
      if (!this.headChecked!.matched) {
        this.fail(
          "rewritten",
          file,
          line,
          s.seq,
          "the base this file builds on does not match the anchor",
        );
        return false;
      }
    }
    if (checkpointVerified === false) {
      this.fail(
        "bad-anchor",
        file,
        line,
        s.seq,
        "the checkpoint in the rotation entry does not verify with the given key or does not match its reference",
      );
      return false;
    }
    return true;
  }

  rotationMatches(buf: Uint8Array, start: number, end: number): boolean {
    this.syncTree();
    const ref = rotationReference(buf, start, end);
    if (!ref || ref.size !== this.tree.size) return false;
    if (ref.root !== encodeHex(this.tree.root())) return false;
    const frontier = this.tree.frontier.map(encodeHex);
    if (ref.frontier.length !== frontier.length) return false;
    if (!ref.frontier.every((h, i) => h === frontier[i])) return false;
    if (ref.checkpoint !== undefined) {
      try {
        const cp = this.keys.length > 0
          ? verifyCheckpoint(
            ref.checkpoint,
            this.keys.flatMap((k) => verifiersForKey(ref.checkpoint!, k)),
          )
          : parseCheckpointNote(ref.checkpoint);
        if (cp.size !== ref.size || encodeHex(cp.root) !== ref.root) return false;
      } catch {
        return false;
      }
    }
    return true;
  }

  /** Classifies the break from the broken line, the last good line and the lines after. */
  finishBreak(): void {
    if (!this.collecting) return;
    this.collecting = false;
    const verdict = this.classify();
    const held = this.pendingRewrite;
    this.pendingRewrite = null;
    // An anchor mismatch at the line before the break is explained by the break only when the
    // break names that line; otherwise the earlier mismatch is the first problem.
    if (held && !(verdict.file === held.file && verdict.line === held.line)) {
      this.fail(held.class, held.file, held.line, held.seq, held.message, held.offset);
    } else {
      this.fail(
        verdict.class,
        verdict.file,
        verdict.line,
        verdict.seq,
        verdict.message,
        verdict.offset,
      );
    }
  }

  /**
   * Whether the anchor says the broken line is the changed one: with its seq and prev set to
   * what belongs there, the tree reproduces the anchored root.
   */
  repairedMatchesAnchor(cur: Rec): boolean {
    const head = this.head;
    if (!head || head.size !== this.expect + 1 || !cur.bytes || !this.treeAtBreak) return false;
    const b = cur.bytes;
    const seqAt = cur.prevAt + 64 + 8; // after the prev digits and '","seq":'
    let seqEnd = seqAt;
    while (seqEnd < b.length && b[seqEnd] >= 0x30 && b[seqEnd] <= 0x39) seqEnd++;
    const fixed = new TextEncoder().encode(String(this.expect));
    const line = new Uint8Array(b.length - (seqEnd - seqAt) + fixed.length);
    line.set(b.subarray(0, cur.prevAt));
    line.set(new TextEncoder().encode(this.expectPrevAtBreak), cur.prevAt);
    line.set(b.subarray(cur.prevAt + 64, seqAt), cur.prevAt + 64);
    line.set(fixed, seqAt);
    line.set(b.subarray(seqEnd), seqAt + fixed.length);
    const tree = this.treeAtBreak.clone();
    tree.append(leafHashOf(line));
    return encodeHex(tree.root()) === encodeHex(head.root);
  }

  classify(): VerifyProblem {
    const cur = this.broken!;
    const prior = this.prior;
    const e = this.expect;
    const ePrev = this.expectPrevAtBreak;
    const n: Rec | undefined = this.after[0];
    const at = (r: Rec, cls: TamperClass, seq: number, message: string): VerifyProblem => ({
      class: cls,
      file: r.file,
      line: r.line,
      seq,
      message,
      offset: r.offset,
    });
    const curEdited = (): VerifyProblem =>
      at(
        cur,
        "edited",
        e,
        `entry seq ${e} was changed: its seq or prev no longer fits, and the anchor is reproduced only with the original values`,
      );
    if (cur.seq === e) {
      // seq fits, prev does not: the line before changed (this one still holds its old hash)
      // — unless the next line does not chain to this one either, then this one changed.
      if (prior && n && n.seq === e + 1 && n.prev === cur.hash) {
        return at(
          prior,
          "edited",
          e - 1,
          `entry seq ${e - 1} was changed: the next line's prev holds its original hash`,
        );
      }
      if (prior && !n) {
        if (this.repairedMatchesAnchor(cur)) return curEdited();
        return at(
          prior,
          "edited",
          e - 1,
          `entry seq ${
            e - 1
          } was changed (or the prev of the line after it, which is the last): the last line's prev does not match`,
        );
      }
      return at(
        cur,
        "edited",
        e,
        `entry seq ${e} was changed: its prev does not match the line before and the next line does not chain to it`,
      );
    }
    if (!n && this.repairedMatchesAnchor(cur)) return curEdited();
    const editedSeq = cur.prev === ePrev && n !== undefined && n.seq === e + 1 &&
      n.prev !== cur.hash;
    if (cur.seq > e) {
      if (editedSeq) {
        return at(cur, "edited", e, `entry seq ${e} was changed: it claims seq ${cur.seq}`);
      }
      if (this.after.some((r) => r.hash === cur.hash)) {
        return at(
          cur,
          "inserted",
          e,
          `a copy of entry seq ${cur.seq} was inserted where seq ${e} belongs`,
        );
      }
      if (this.after.some((r) => r.seq === e)) {
        return at(
          cur,
          "reordered",
          e,
          `entries are out of order: seq ${cur.seq} stands where seq ${e} belongs`,
        );
      }
      if (cur.prev === ePrev) {
        return at(
          cur,
          "gap",
          e,
          `seq jumps from ${e - 1} to ${cur.seq}: entries ${e}..${
            cur.seq - 1
          } are absent although the hash chain links`,
        );
      }
      if (
        cur.fileStart && cur.rotateSize === cur.seq &&
        !(prior && cur.rotateFile !== null && cur.rotateFile === baseName(prior.file))
      ) {
        return at(
          cur,
          "gap",
          e,
          `entries ${e}..${cur.seq - 1} are absent: the ledger file ${
            cur.rotateFile ?? ""
          } before ${cur.file} is missing`,
        );
      }
      return at(
        cur,
        "deleted",
        e,
        `entries ${e}..${cur.seq - 1} were deleted: ${
          e === 0 ? `the ledger starts at seq ${cur.seq}` : `seq jumps from ${e - 1} to ${cur.seq}`
        } and the hash chain breaks`,
      );
    }
    // cur.seq < e
    if (cur.fileStart && prior && prior.file !== cur.file && cur.seq < prior.seq) {
      return at(
        cur,
        "reordered",
        e,
        `files are out of order: ${cur.file} starts at seq ${cur.seq}, after seq ${e - 1}`,
      );
    }
    if (prior && cur.hash === prior.hash) {
      return at(cur, "inserted", e, `a copy of the line before (seq ${cur.seq}) was inserted`);
    }
    if (prior && cur.seq === prior.seq && cur.prev === prior.prev) {
      // Two entries claim the same seq and predecessor: the one the chain continues from is
      // the original.
      if ((n && n.prev === cur.hash) || (!n && this.pendingRewrite)) {
        return at(
          prior,
          "inserted",
          e - 1,
          `an extra entry claiming seq ${prior.seq} was inserted before the original`,
        );
      }
      return at(cur, "inserted", e, `an extra entry claiming seq ${cur.seq} was inserted`);
    }
    if (editedSeq) {
      return at(cur, "edited", e, `entry seq ${e} was changed: it claims seq ${cur.seq}`);
    }
    return at(
      cur,
      "inserted",
      e,
      `an entry claiming seq ${cur.seq} was inserted where seq ${e} belongs`,
    );
  }

  finish(): VerifyReport {
    this.finishBreak();
    this.releaseRewrite();
    this.syncTree();
    if (!this.problem && this.head) {
      if (this.tree.size < this.head.size) {
        const last = this.files[this.files.length - 1];
        this.fail(
          "truncated",
          last?.name ?? "",
          (last?.lines ?? 0) + 1,
          this.tree.size,
          `the ledger has ${this.tree.size} entries but the anchor covers ${this.head.size}: entries ${this.tree.size}..${
            this.head.size - 1
          } were removed from the end`,
        );
      }
      if (!this.headChecked) this.checkHead();
    }
    const root = this.tree.root();
    const report: VerifyReport = {
      ok: this.problem === null,
      size: this.tree.size,
      root: encodeHex(root),
      anchor: formatAnchor({ size: this.tree.size, root }),
      files: this.files,
      state: {
        size: this.tree.size,
        prev: latin1.decode(this.prevHex),
        frontier: this.tree.frontier.map(encodeHex),
      },
    };
    if (this.head) {
      report.head = this.headChecked ??
        { size: this.head.size, root: encodeHex(this.head.root), matched: false };
    }
    if (this.base) report.base = this.base;
    if (this.problem) report.problem = this.problem;
    return report;
  }
}

async function* chunks(data: Uint8Array | AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  if (data instanceof Uint8Array) {
    yield data;
    return;
  }
  yield* data;
}

/**
 * Verifies a ledger given as an ordered set of inputs (a rotated ledger's files, oldest first).
 *
 * @param sources the inputs, in order
 * @param options an anchored head, checkpoint keys, lookahead
 * @returns the report; `ok` false names the first problem with its class, file, line and seq
 * @throws {LedgerError} `BAD_ANCHOR` when the anchor is older than the first input given
 * @example
 * ```ts
 * import { LedgerState, verifyLedger } from "@infraveil/ledger";
 * let state = LedgerState.empty();
 * let text = "";
 * for (let i = 0; i < 3; i++) {
 *   const out = state.append({ type: "test", data: i });
 *   text += out.line + "\n";
 *   state = out.state;
 * }
 * const report = await verifyLedger([{ name: "mem", data: new TextEncoder().encode(text) }]);
 * if (!report.ok || report.anchor !== state.anchor()) throw new Error();
 * ```
 */
export async function verifyLedger(
  sources: Iterable<LedgerSource> | AsyncIterable<LedgerSource>,
  options: VerifyOptions = {},
): Promise<VerifyReport> {
  const v = new Verifier(options);
  for await (const source of sources) {
    const file: FileSummary = { name: source.name, lines: 0, firstSeq: null };
    v.files.push(file);
    let carry: Uint8Array | null = null;
    let base = 0; // file offset of chunk[0]
    let chunkLength = 0;
    // Zero bytes after `carry` (or after the last newline) that may be the padding a writer
    // preallocates: they are, if nothing but zeros follows them to the end of the file. They
    // are kept as a count, and become part of the line only when other bytes follow.
    let zeros = 0;
    // Fails the file when a line still without its newline has grown past the limit.
    const tooLong = (length: number, offset: number): boolean => {
      if (length <= MAX_LINE_BYTES + 1) return false;
      file.lines++;
      v.fail(
        "malformed",
        file.name,
        file.lines,
        v.expect,
        `line longer than ${MAX_LINE_BYTES} bytes`,
        offset,
      );
      return true;
    };
    for await (const chunk of chunks(source.data)) {
      base += chunkLength;
      chunkLength = chunk.length;
      if (v.done) break;
      if (zeros > 0) {
        if (isZero(chunk, 0, chunk.length)) {
          zeros += chunk.length;
          continue;
        }
        const held = carry?.length ?? 0;
        if (tooLong(held + zeros, base - zeros - held)) break;
        carry = concatBytes(carry ?? new Uint8Array(0), new Uint8Array(zeros));
        zeros = 0;
      }
      let pos = 0;
      if (carry) {
        const nl = chunk.indexOf(10);
        if (nl < 0) {
          const t = zeroRunStart(chunk, 0);
          zeros = chunk.length - t;
          if (t === 0) continue;
          if (tooLong(carry.length + t, base - carry.length)) break;
          carry = concatBytes(carry, chunk.subarray(0, t));
          continue;
        }
        const joined = concatBytes(carry, chunk.subarray(0, nl));
        file.lines++;
        v.offset = base - carry.length;
        carry = null;
        v.line(joined, 0, joined.length, file, false);
        pos = nl + 1;
      }
      // Hash every complete line of the chunk in one call (or take what a worker computed),
      // then check them in order.
      const a = attachedAnalysis(chunk, pos) ?? analyzeChunk(chunk, pos, false);
      const { count, hashes } = a;
      const lineEnds = a.bounds;
      let index = 0;
      while (!v.done && pos < chunk.length) {
        const nl = index < count ? lineEnds[2 * index + 1] : -1;
        if (nl < 0) {
          const t = zeroRunStart(chunk, pos);
          zeros = chunk.length - t;
          if (t === pos) break;
          if (tooLong(t - pos, base + pos)) break;
          carry = chunk.slice(pos, t);
          break;
        }
        file.lines++;
        v.offset = base + pos;
        v.line(chunk, pos, nl, file, false, hashes, index, a.scan);
        index++;
        pos = nl + 1;
      }
    }
    if (zeros > 0 && !v.done) file.padding = zeros;
    if (carry && !v.done) {
      file.lines++;
      v.offset = base + chunkLength - zeros - carry.length;
      v.line(carry, 0, carry.length, file, true);
    }
  }
  return v.finish();
}

/** Where the run of zero bytes that ends `buf` starts (`buf.length` when it ends otherwise). */
function zeroRunStart(buf: Uint8Array, from: number): number {
  let i = buf.length;
  while (i > from && buf[i - 1] === 0) i--;
  return i;
}

/** Whether `buf[from, to)` is all zero bytes. */
function isZero(buf: Uint8Array, from: number, to: number): boolean {
  let i = from;
  // Four bytes at a time once aligned.
  while (i < to && (buf.byteOffset + i) % 4 !== 0) if (buf[i++] !== 0) return false;
  const words = new Uint32Array(buf.buffer, buf.byteOffset + i, (to - i) >>> 2);
  for (let w = 0; w < words.length; w++) if (words[w] !== 0) return false;
  for (let j = i + 4 * words.length; j < to; j++) if (buf[j] !== 0) return false;
  return true;
}
