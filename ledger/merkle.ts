/**
 * RFC 6962 / RFC 9162 Merkle trees: leaf and node hashing, an incremental tree with inclusion
 * and consistency proofs, a compact (frontier-only) tree for streaming, and the two proof
 * verifiers.
 *
 * The verifiers are straight lines of checks and never throw: anything malformed (a hash that
 * is not 32 bytes, an index out of range, a proof of the wrong length) is "not verified".
 *
 * @module
 */
import { EMPTY_ROOT, extendFrontier, leafHashOf, nodeHashOf } from "./_hash.ts";
import { LedgerError } from "./error.ts";

export { EMPTY_ROOT };

/**
 * The RFC 6962 leaf hash of some bytes: SHA-256(0x00 ‖ bytes).
 *
 * @param bytes the leaf (for the ledger: one line, without its newline)
 * @returns the 32-byte hash
 * @example
 * ```ts
 * import { hashLeaf } from "@infraveil/ledger";
 * import { encodeHex } from "@infraveil/trust";
 * const h = encodeHex(hashLeaf(new Uint8Array(0)));
 * if (h !== "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d") throw new Error();
 * ```
 */
export function hashLeaf(bytes: Uint8Array): Uint8Array {
  return leafHashOf(bytes, 0, bytes.length);
}

/**
 * The RFC 6962 interior node hash: SHA-256(0x01 ‖ left ‖ right).
 *
 * @param left left child (32 bytes)
 * @param right right child (32 bytes)
 * @returns the 32-byte hash
 */
export function hashChildren(left: Uint8Array, right: Uint8Array): Uint8Array {
  return nodeHashOf(left, right);
}

function isHash(h: unknown): h is Uint8Array {
  return h instanceof Uint8Array && h.length === 32;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

function isPowerOfTwo(n: number): boolean {
  if (n < 1) return false;
  while (n % 2 === 0) n /= 2;
  return n === 1;
}

function isSize(n: unknown): n is number {
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
}

/** The largest power of two strictly below n (n ≥ 2). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * A compact Merkle tree: only the roots of the perfect subtrees along the right edge (the
 * "frontier"), enough to append leaves and compute the root in O(log n) memory.
 *
 * @example
 * ```ts
 * import { CompactTree, hashLeaf } from "@infraveil/ledger";
 * const tree = new CompactTree();
 * tree.append(hashLeaf(new Uint8Array([1])));
 * if (tree.size !== 1 || tree.frontier.length !== 1) throw new Error();
 * ```
 */
export class CompactTree {
  #size: number;
  #frontier: Uint8Array[];

  /**
   * @param size number of leaves the frontier stands for (default 0)
   * @param frontier the perfect-subtree roots, largest (leftmost) first; one per set bit of size
   * @throws {LedgerError} `BAD_PROOF` when the frontier does not fit the size
   */
  constructor(size = 0, frontier: readonly Uint8Array[] = []) {
    if (!isSize(size)) throw new LedgerError("OUT_OF_RANGE", `Invalid tree size ${size}`);
    let bits = 0;
    for (let n = size; n > 0; n = Math.floor(n / 2)) bits += n % 2;
    if (frontier.length !== bits || !frontier.every(isHash)) {
      throw new LedgerError(
        "BAD_PROOF",
        `A frontier for a tree of size ${size} needs ${bits} hashes of 32 bytes, got ${frontier.length}`,
      );
    }
    this.#size = size;
    this.#frontier = frontier.map((h) => h.slice());
  }

  /** Number of leaves. */
  get size(): number {
    return this.#size;
  }

  /** The perfect-subtree roots along the right edge, largest first (a copy). */
  get frontier(): Uint8Array[] {
    return this.#frontier.map((h) => h.slice());
  }

  /**
   * Appends a leaf hash.
   *
   * @param leafHash the 32-byte leaf hash
   */
  append(leafHash: Uint8Array): void {
    let n = this.#size;
    const f = this.#frontier;
    if (n % 2 === 0) {
      // Kept as is: a copy, so the caller's buffer is neither shared nor kept alive.
      f.push(leafHash.slice());
    } else {
      // Each trailing 1 bit of the old size is a perfect subtree that merges with the new leaf.
      let h = leafHash;
      while (n % 2 === 1) {
        h = nodeHashOf(f.pop()!, h);
        n = (n - 1) / 2;
      }
      f.push(h);
    }
    this.#size++;
  }

  /**
   * Appends many leaf hashes at once (faster than one by one: each level's node hashes are
   * computed together).
   *
   * @param hashes leaf hashes, 32 bytes each, back to back
   * @param from index of the first hash to append (default 0)
   * @param count how many to append (default: all from `from` on)
   * @throws {LedgerError} `OUT_OF_RANGE` when the range does not fit `hashes`
   */
  appendAll(hashes: Uint8Array, from = 0, count: number = hashes.length / 32 - from): void {
    if (
      !Number.isSafeInteger(from) || !Number.isSafeInteger(count) || from < 0 || count < 0 ||
      32 * (from + count) > hashes.length
    ) {
      throw new LedgerError(
        "OUT_OF_RANGE",
        `Cannot append hashes ${from}..${from + count} of ${hashes.length / 32}`,
      );
    }
    if (count === 0) return;
    this.#frontier = extendFrontier(this.#size, this.#frontier, hashes, from, count);
    this.#size += count;
  }

  /**
   * The tree root (SHA-256 of the empty string for an empty tree).
   *
   * @returns the 32-byte root
   */
  root(): Uint8Array {
    const f = this.#frontier;
    if (f.length === 0) return EMPTY_ROOT.slice();
    let acc = f[f.length - 1];
    for (let i = f.length - 2; i >= 0; i--) acc = nodeHashOf(f[i], acc);
    return acc === f[f.length - 1] ? acc.slice() : acc;
  }

  /**
   * An independent copy (O(log n): the frontier's hashes are never mutated, only replaced).
   *
   * @returns the copy
   */
  clone(): CompactTree {
    const copy = new CompactTree();
    copy.#size = this.#size;
    copy.#frontier = this.#frontier.slice();
    return copy;
  }
}

/**
 * An in-memory Merkle tree keeping every perfect subtree, so roots of any earlier size and
 * proofs cost O(log² n) hashes.
 *
 * @example
 * ```ts
 * import { MerkleTree, hashLeaf, verifyInclusion } from "@infraveil/ledger";
 * const tree = new MerkleTree();
 * for (let i = 0; i < 5; i++) tree.append(hashLeaf(new Uint8Array([i])));
 * const proof = tree.inclusionProof(3, 5);
 * const ok = verifyInclusion({
 *   index: 3, size: 5, leafHash: tree.leafHash(3), proof, root: tree.root(5),
 * });
 * if (!ok) throw new Error();
 * ```
 */
export class MerkleTree {
  // levels[h][i] = root of the perfect subtree over leaves [i·2^h, (i+1)·2^h).
  #levels: Uint8Array[][] = [[]];

  /** Number of leaves. */
  get size(): number {
    return this.#levels[0].length;
  }

  /**
   * Appends a leaf hash.
   *
   * @param leafHash the 32-byte leaf hash
   * @returns the new leaf's index
   * @throws {LedgerError} `BAD_PROOF` when the hash is not 32 bytes
   */
  append(leafHash: Uint8Array): number {
    if (!isHash(leafHash)) throw new LedgerError("BAD_PROOF", "A leaf hash must be 32 bytes");
    const index = this.#levels[0].length;
    this.#levels[0].push(leafHash.slice());
    let level = 0;
    let i = index;
    while (i % 2 === 1) {
      const row = this.#levels[level];
      const parent = nodeHashOf(row[i - 1], row[i]);
      level++;
      if (this.#levels.length === level) this.#levels.push([]);
      this.#levels[level].push(parent);
      i = (i - 1) / 2;
    }
    return index;
  }

  /**
   * The leaf hash at an index.
   *
   * @param index leaf index
   * @returns its 32-byte hash
   * @throws {LedgerError} `OUT_OF_RANGE` for an index past the end
   */
  leafHash(index: number): Uint8Array {
    this.#checkRange(index, 0, this.size - 1, "leaf index");
    return this.#levels[0][index].slice();
  }

  /**
   * The root of the tree made of the first `size` leaves.
   *
   * @param size tree size (default: all leaves)
   * @returns the 32-byte root
   * @throws {LedgerError} `OUT_OF_RANGE` when size exceeds the tree
   */
  root(size: number = this.size): Uint8Array {
    this.#checkRange(size, 0, this.size, "tree size");
    if (size === 0) return EMPTY_ROOT.slice();
    return this.#hash(0, size);
  }

  /**
   * An RFC 9162 inclusion proof (audit path) of one leaf in the tree of the first `size` leaves.
   *
   * @param index leaf index
   * @param size tree size (default: all leaves)
   * @returns the proof's hashes, leaf level first
   * @throws {LedgerError} `OUT_OF_RANGE` for an index or size out of range
   */
  inclusionProof(index: number, size: number = this.size): Uint8Array[] {
    this.#checkRange(size, 1, this.size, "tree size");
    this.#checkRange(index, 0, size - 1, "leaf index");
    const out: Uint8Array[] = [];
    this.#path(index, 0, size, out);
    return out;
  }

  /**
   * An RFC 9162 consistency proof between the trees of the first `size1` and `size2` leaves.
   *
   * @param size1 the older size (1 ≤ size1 ≤ size2)
   * @param size2 the newer size (default: all leaves)
   * @returns the proof's hashes (empty when the sizes are equal)
   * @throws {LedgerError} `OUT_OF_RANGE` for sizes out of range
   */
  consistencyProof(size1: number, size2: number = this.size): Uint8Array[] {
    this.#checkRange(size2, 1, this.size, "tree size");
    this.#checkRange(size1, 1, size2, "old tree size");
    const out: Uint8Array[] = [];
    if (size1 < size2) this.#subproof(size1, 0, size2, true, out);
    return out;
  }

  #checkRange(n: number, min: number, max: number, what: string): void {
    if (!isSize(n) || n < min || n > max) {
      throw new LedgerError(
        "OUT_OF_RANGE",
        `Invalid ${what} ${n}: the tree has ${this.size} leaves (valid: ${min}..${max})`,
      );
    }
  }

  /** MTH(D[start:end]); start is always aligned for the ranges RFC 9162's recursion asks for. */
  #hash(start: number, end: number): Uint8Array {
    const n = end - start;
    if (isPowerOfTwo(n) && start % n === 0) {
      const level = Math.log2(n);
      const row = this.#levels[level];
      if (row && row.length > start / n) return row[start / n];
    }
    const k = splitPoint(n);
    return nodeHashOf(this.#hash(start, start + k), this.#hash(start + k, end));
  }

  #path(m: number, start: number, end: number, out: Uint8Array[]): void {
    const n = end - start;
    if (n <= 1) return;
    const k = splitPoint(n);
    if (m < k) {
      this.#path(m, start, start + k, out);
      out.push(this.#hash(start + k, end));
    } else {
      this.#path(m - k, start + k, end, out);
      out.push(this.#hash(start, start + k));
    }
  }

  #subproof(m: number, start: number, end: number, b: boolean, out: Uint8Array[]): void {
    const n = end - start;
    if (m === n) {
      if (!b) out.push(this.#hash(start, end));
      return;
    }
    const k = splitPoint(n);
    if (m <= k) {
      this.#subproof(m, start, start + k, b, out);
      out.push(this.#hash(start + k, end));
    } else {
      this.#subproof(m - k, start + k, end, false, out);
      out.push(this.#hash(start, start + k));
    }
  }
}

/** The inputs of an inclusion check. */
export interface InclusionCheck {
  /** Index of the leaf. */
  index: number;
  /** Size of the tree the proof is for. */
  size: number;
  /** The leaf's 32-byte hash. */
  leafHash: Uint8Array;
  /** The audit path, leaf level first. */
  proof: readonly Uint8Array[];
  /** The expected 32-byte root of the tree of `size` leaves. */
  root: Uint8Array;
}

/**
 * Verifies an RFC 9162 §2.1.3.2 inclusion proof.
 *
 * @param check index, size, leaf hash, proof and expected root
 * @returns true only when the proof shows the leaf at `index` in the tree with that root
 */
export function verifyInclusion(check: InclusionCheck): boolean {
  const { index, size, leafHash, proof, root } = check;
  if (!isSize(index) || !isSize(size) || index >= size) return false;
  if (!isHash(leafHash) || !isHash(root) || !Array.isArray(proof) || !proof.every(isHash)) {
    return false;
  }
  let fn = index;
  let sn = size - 1;
  let r = leafHash;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHashOf(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHashOf(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equalBytes(r, root);
}

/** The inputs of a consistency check. */
export interface ConsistencyCheck {
  /** The older tree size (at least 1). */
  size1: number;
  /** The newer tree size. */
  size2: number;
  /** The older tree's 32-byte root. */
  root1: Uint8Array;
  /** The newer tree's 32-byte root. */
  root2: Uint8Array;
  /** The consistency proof. */
  proof: readonly Uint8Array[];
}

/**
 * Verifies an RFC 9162 §2.1.4.2 consistency proof: the tree of `size2` leaves extends the tree
 * of `size1` leaves. A proof from an empty tree is refused (it proves nothing).
 *
 * @param check sizes, roots and proof
 * @returns true only when the proof is valid
 * @example
 * ```ts
 * import { MerkleTree, hashLeaf, verifyConsistency } from "@infraveil/ledger";
 * const tree = new MerkleTree();
 * for (let i = 0; i < 7; i++) tree.append(hashLeaf(new Uint8Array([i])));
 * const ok = verifyConsistency({
 *   size1: 3, size2: 7, root1: tree.root(3), root2: tree.root(7),
 *   proof: tree.consistencyProof(3, 7),
 * });
 * if (!ok) throw new Error();
 * ```
 */
export function verifyConsistency(check: ConsistencyCheck): boolean {
  const { size1, size2, root1, root2, proof } = check;
  if (!isSize(size1) || !isSize(size2) || size1 === 0 || size1 > size2) return false;
  if (!Array.isArray(proof)) return false;
  // Equal sizes need no hashing: the trees are the same exactly when the roots are.
  if (size1 === size2) {
    return proof.length === 0 && root1 instanceof Uint8Array && root2 instanceof Uint8Array &&
      equalBytes(root1, root2);
  }
  if (!isHash(root1) || !isHash(root2) || !proof.every(isHash)) return false;
  if (proof.length === 0) return false;
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : [...proof];
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0];
  let sr = path[0];
  for (let i = 1; i < path.length; i++) {
    const c = path[i];
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHashOf(c, fr);
      sr = nodeHashOf(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = nodeHashOf(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return equalBytes(fr, root1) && equalBytes(sr, root2) && sn === 0;
}
