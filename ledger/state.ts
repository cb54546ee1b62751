/**
 * Storage-agnostic ledger state: everything needed to produce the next line — size, the
 * previous leaf hash and the Merkle frontier — as an immutable value that serializes to a few
 * hundred bytes of JSON.
 *
 * A database-backed store (the control plane's per-tenant evidence logs) keeps the lines and
 * the state in one transaction; exporting the lines, each followed by `\n`, gives a file that
 * `infraveil verify ledger` accepts.
 *
 * @module
 */
import { decodeHex, encodeHex } from "@infraveil/trust";
import { hexOf } from "./_hex.ts";
import type { Anchor } from "./anchor.ts";
import { formatAnchor } from "./anchor.ts";
import { GENESIS_PREV, type JsonValue, type LedgerEntry } from "./entry.ts";
import { LedgerError } from "./error.ts";
import { CompactTree } from "./merkle.ts";
import { copyEncoded } from "./_hash.ts";
import { formatNext } from "./_append.ts";

/** What a caller appends; `seq`, `ts`, `prev` and `v` are filled in. */
export interface AppendInput {
  /** Entry type, e.g. `action.execute`. */
  type: string;
  /** Who did it; defaults to the writer's actor. */
  actor?: string;
  /** Details (default `null`). */
  data?: JsonValue;
}

/** Options of {@link LedgerState.append}. */
export interface AppendOptions {
  /** The clock, in milliseconds since the epoch (default `Date.now`). */
  now?: () => number;
  /** Actor when the input names none (default `"ledger"`). */
  actor?: string;
}

/** The result of {@link LedgerState.append}. */
export interface Appended {
  /** The stored entry. */
  entry: LedgerEntry;
  /** Its line, without the newline. */
  line: string;
  /** The line's UTF-8 bytes (the RFC 6962 leaf). */
  bytes: Uint8Array;
  /** The line's RFC 6962 leaf hash. */
  leafHash: Uint8Array;
  /** The state after the entry. */
  state: LedgerState;
}

/** The JSON form of a {@link LedgerState}. */
export interface LedgerStateJson {
  /** Number of entries. */
  size: number;
  /** Hex leaf hash of the last line ({@link GENESIS_PREV} when empty). */
  prev: string;
  /** Hex perfect-subtree roots along the right edge, largest first. */
  frontier: string[];
}

/** The reference a rotated file's first entry holds: the previous file's final tree head. */
export interface RotationReference {
  /** Entries in all earlier files. */
  size: number;
  /** Hex root over them. */
  root: string;
  /** Hex frontier, so a file can be checked without its predecessors. */
  frontier: string[];
  /** Base name of the previous file, if known. */
  file?: string;
  /** The signed checkpoint note at `size`, if the writer had a key. */
  checkpoint?: string;
}

/**
 * The state of a ledger after some entries: immutable; `append` returns the next state.
 *
 * @example
 * ```ts
 * import { LedgerState } from "@infraveil/ledger";
 * const s0 = LedgerState.empty();
 * const now = () => Date.parse("2026-01-01T00:00:00Z");
 * const { line, state } = s0.append({ type: "boot", data: { ok: true } }, { now, actor: "agent" });
 * if (state.size !== 1 || !line.includes('"seq":0')) throw new Error();
 * const again = LedgerState.fromJSON(JSON.parse(JSON.stringify(state)));
 * if (again.anchor() !== state.anchor()) throw new Error();
 * ```
 */
export class LedgerState {
  readonly #tree: CompactTree;
  readonly #prev: string;

  private constructor(tree: CompactTree, prev: string) {
    this.#tree = tree;
    this.#prev = prev;
  }

  /**
   * The state of an empty ledger.
   *
   * @returns the state
   */
  static empty(): LedgerState {
    return new LedgerState(new CompactTree(), GENESIS_PREV);
  }

  /**
   * Restores a state saved with `toJSON`.
   *
   * @param json the saved state
   * @returns the state
   * @throws {LedgerError} `CORRUPT` when the saved state is inconsistent
   */
  static fromJSON(json: LedgerStateJson): LedgerState {
    try {
      if (!/^[0-9a-f]{64}$/.test(json.prev)) throw new Error("prev is not 64 hex characters");
      if (json.size === 0 && json.prev !== GENESIS_PREV) throw new Error("empty but prev set");
      const tree = new CompactTree(json.size, json.frontier.map((h) => decodeHex(h)));
      return new LedgerState(tree, json.prev);
    } catch (cause) {
      throw new LedgerError("CORRUPT", `Invalid saved ledger state: ${(cause as Error).message}`, {
        cause,
      });
    }
  }

  /**
   * The state of a ledger whose tree is `tree` and whose last line has leaf hash `prev`.
   *
   * @param tree the compact tree (not copied: do not append to it afterwards)
   * @param prev hex leaf hash of the last line ({@link GENESIS_PREV} when empty)
   * @returns the state
   * @throws {LedgerError} `CORRUPT` when `prev` is not 64 hex digits or does not fit the size
   */
  static fromTree(tree: CompactTree, prev: string): LedgerState {
    if (!/^[0-9a-f]{64}$/.test(prev) || (tree.size === 0 && prev !== GENESIS_PREV)) {
      throw new LedgerError("CORRUPT", "Invalid ledger state: prev does not fit the tree");
    }
    return new LedgerState(tree, prev);
  }

  /**
   * Builds the state after a rotation reference, so appends continue a rotated ledger.
   *
   * @param ref the reference (size, root, frontier)
   * @param prev hex leaf hash of the last line before the reference
   * @returns the state
   */
  static fromRotation(ref: RotationReference, prev: string): LedgerState {
    return LedgerState.fromJSON({ size: ref.size, prev, frontier: ref.frontier });
  }

  /** Number of entries. */
  get size(): number {
    return this.#tree.size;
  }

  /** Hex leaf hash of the last line ({@link GENESIS_PREV} when empty). */
  get prev(): string {
    return this.#prev;
  }

  /**
   * The current tree head.
   *
   * @returns size and root
   */
  head(): Anchor {
    return { size: this.#tree.size, root: this.#tree.root() };
  }

  /**
   * The current head as `SIZE:ROOTHEX`.
   *
   * @returns the anchor text
   */
  anchor(): string {
    return formatAnchor(this.head());
  }

  /**
   * The reference a rotated file starts with.
   *
   * @param extra the previous file's name and signed checkpoint, if any
   * @returns the reference
   */
  rotationReference(extra: { file?: string; checkpoint?: string } = {}): RotationReference {
    const ref: RotationReference = {
      size: this.size,
      root: encodeHex(this.#tree.root()),
      frontier: this.#tree.frontier.map(encodeHex),
    };
    if (extra.file !== undefined) ref.file = extra.file;
    if (extra.checkpoint !== undefined) ref.checkpoint = extra.checkpoint;
    return ref;
  }

  /**
   * Formats the next entry and returns it with the new state. Nothing is stored.
   *
   * @param input type, actor and data
   * @param options clock and default actor
   * @returns the entry, its line, its leaf hash and the next state
   * @throws {LedgerError} `BAD_ENTRY` for an invalid input
   */
  append(input: AppendInput, options: AppendOptions = {}): Appended {
    const next = formatNext(this.#tree.size, this.#prev, input, options);
    const bytes = new Uint8Array(next.length);
    copyEncoded(bytes, 0, next.length);
    const tree = this.#tree.clone();
    tree.append(next.hash);
    return {
      entry: next.entry,
      line: next.line,
      bytes,
      leafHash: next.hash,
      state: new LedgerState(tree, hexOf(next.hash)),
    };
  }

  /**
   * The state as JSON (size, prev, frontier).
   *
   * @returns the JSON form
   */
  toJSON(): LedgerStateJson {
    return { size: this.size, prev: this.#prev, frontier: this.#tree.frontier.map(encodeHex) };
  }
}
