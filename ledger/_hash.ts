/**
 * The two RFC 6962 hash functions every ledger path uses, and a batch form for the verifier.
 *
 * Internal. SHA-256 here runs in a small WebAssembly module (wasm/sha256.c) because the
 * verifier hashes every line and every tree node: per-call costs dominate for 200-byte lines,
 * and one call per megabyte chunk removes them. `_hash_test.ts` checks it against
 * `@infraveil/trust`'s SHA-256.
 *
 * @module
 */
import { decodeBase64 } from "@infraveil/trust";
import { SHA256_WASM_BASE64 } from "./_sha256_wasm.ts";

interface Sha256Exports {
  memory: WebAssembly.Memory;
  __heap_base: WebAssembly.Global;
  leaf(d: number, len: number, out: number): void;
  plain(d: number, len: number, out: number): void;
  node(l: number, r: number, out: number): void;
  leaves(d: number, bounds: number, count: number, out: number): void;
  extend(slots: number, size: number, cur: number, count: number): void;
  newlines(d: number, len: number): number;
  split(d: number, len: number, bounds: number): number;
}

let exports: Sha256Exports | null = null;
let mem: Uint8Array = new Uint8Array(0);
let base = 0; // first free byte: [base, base+64) node input, [base+64, base+96) output
let data = 0; // start of the variable-size data region

function wasm(): Sha256Exports {
  if (exports === null) {
    const module = new WebAssembly.Module(
      decodeBase64(SHA256_WASM_BASE64) as Uint8Array<ArrayBuffer>,
    );
    exports = new WebAssembly.Instance(module).exports as unknown as Sha256Exports;
    base = ((exports.__heap_base.value as number) + 15) & ~15;
    data = base + 128;
    mem = new Uint8Array(exports.memory.buffer);
  }
  return exports;
}

/** Makes sure linear memory holds `bytes` bytes from `data`; refreshes the view. */
function reserve(w: Sha256Exports, bytes: number): Uint8Array {
  const need = data + bytes;
  const have = w.memory.buffer.byteLength;
  if (need > have) w.memory.grow(Math.ceil((need - have) / 65536));
  if (mem.buffer !== w.memory.buffer || mem.byteLength === 0) {
    mem = new Uint8Array(w.memory.buffer);
  }
  return mem;
}

/**
 * RFC 6962 leaf hash: SHA-256(0x00 ‖ bytes[start:end]).
 *
 * @param bytes buffer holding the leaf
 * @param start first byte of the leaf
 * @param end one past the last byte
 * @returns the 32-byte leaf hash
 */
export function leafHashOf(bytes: Uint8Array, start = 0, end: number = bytes.length): Uint8Array {
  const w = wasm();
  const len = end - start;
  const m = reserve(w, len);
  m.set(bytes.subarray(start, end), data);
  w.leaf(data, len, base + 64);
  return m.slice(base + 64, base + 96);
}

const encoder = new TextEncoder();
let dataView: Uint8Array = new Uint8Array(0);

/**
 * UTF-8 encodes a line straight into the module's memory and hashes it there. The bytes stay in
 * the module until the next hashing call: copy them out with {@link copyEncoded} first.
 *
 * @param text the line, without its newline
 * @returns the line's RFC 6962 leaf hash and its length in bytes
 */
export function encodeLeaf(text: string): { hash: Uint8Array; length: number } {
  const length = encodeLeafInModule(text);
  return { hash: mem.slice(base + 64, base + 96), length };
}

/**
 * {@link encodeLeaf} writing the hash into `hashes` at byte `at` instead of a new array.
 *
 * @param text the line, without its newline
 * @param hashes where the hash goes
 * @param at its offset there
 * @returns the line's length in bytes
 */
export function encodeLeafInto(text: string, hashes: Uint8Array, at: number): number {
  const length = encodeLeafInModule(text);
  hashes.set(mem.subarray(base + 64, base + 96), at);
  return length;
}

function encodeLeafInModule(text: string): number {
  const w = wasm();
  const m = reserve(w, text.length * 3);
  if (dataView.buffer !== m.buffer || dataView.byteLength === 0) dataView = m.subarray(data);
  const { written } = encoder.encodeInto(text, dataView);
  w.leaf(data, written, base + 64);
  return written;
}

/**
 * Copies the bytes of the last {@link encodeLeaf} call.
 *
 * @param dest where to copy them
 * @param offset at which offset of `dest`
 * @param length their length, as `encodeLeaf` returned it
 */
export function copyEncoded(dest: Uint8Array, offset: number, length: number): void {
  dest.set(mem.subarray(data, data + length), offset);
}

/**
 * RFC 6962 interior node hash: SHA-256(0x01 ‖ left ‖ right).
 *
 * @param left left child hash (32 bytes)
 * @param right right child hash (32 bytes)
 * @returns the 32-byte node hash
 */
export function nodeHashOf(left: Uint8Array, right: Uint8Array): Uint8Array {
  const w = exports ?? wasm();
  // The hot path of every tree: skip reserve() unless memory grew (which detaches the view).
  const m = mem.byteLength === 0 ? reserve(w, 0) : mem;
  m.set(left, base);
  m.set(right, base + 32);
  w.node(base, base + 32, base + 64);
  return m.slice(base + 64, base + 96);
}

/**
 * Plain SHA-256 (for tests against the reference implementation).
 *
 * @param bytes the message
 * @returns the 32-byte digest
 */
export function plainSha256(bytes: Uint8Array): Uint8Array {
  const w = wasm();
  const m = reserve(w, bytes.length);
  m.set(bytes, data);
  w.plain(data, bytes.length, base + 64);
  return m.slice(base + 64, base + 96);
}

/**
 * Leaf hashes of many lines of one buffer in one call.
 *
 * @param buf the buffer
 * @param bounds start and end offsets of each line in `buf`, in order (2 per line)
 * @param count number of lines
 * @returns `count` × 32 bytes of leaf hashes
 */
export function leafHashesOf(buf: Uint8Array, bounds: Uint32Array, count: number): Uint8Array {
  if (count === 0) return new Uint8Array(0);
  const w = wasm();
  const first = bounds[0];
  const last = bounds[2 * count - 1];
  const span = last - first;
  const boundsAt = (span + 3) & ~3;
  const outAt = boundsAt + count * 8;
  const m = reserve(w, outAt + count * 32);
  m.set(buf.subarray(first, last), data);
  const b = new Uint32Array(m.buffer, data + boundsAt, count * 2);
  for (let i = 0; i < 2 * count; i++) b[i] = bounds[i] - first;
  w.leaves(data, data + boundsAt, count, data + outAt);
  return m.slice(data + outAt, data + outAt + count * 32);
}

/**
 * Finds the complete lines of `bytes[pos:]` and their leaf hashes, in two calls of the module.
 *
 * @param bytes the buffer
 * @param pos where the first line starts
 * @returns the number of lines (newlines), each line's start and end (the offset of its newline)
 *   in `bytes`, two per line, and the leaf hashes, 32 bytes per line
 */
export function linesAndLeafHashes(
  bytes: Uint8Array,
  pos: number,
): { count: number; bounds: Uint32Array; hashes: Uint8Array } {
  const w = wasm();
  const len = bytes.length - pos;
  let m = reserve(w, len);
  m.set(bytes.subarray(pos), data);
  const count = w.newlines(data, len);
  const boundsAt = data + ((len + 3) & ~3);
  const outAt = boundsAt + count * 8;
  m = reserve(w, outAt - data + count * 32);
  w.split(data, len, boundsAt);
  w.leaves(data, boundsAt, count, outAt);
  const bounds = new Uint32Array(m.buffer.slice(boundsAt, boundsAt + count * 8));
  if (pos !== 0) { for (let i = 0; i < 2 * count; i++) bounds[i] += pos; }
  return { count, bounds, hashes: m.slice(outAt, outAt + count * 32) };
}

/** Bytes for the frontier's slots in {@link extendFrontier}: one per possible tree level. */
const SLOT_BYTES = 64 * 32;

/**
 * Appends many leaf hashes to a compact tree's frontier in one call: the hashes of each tree
 * level are independent of each other, so the module computes them four at a time.
 *
 * @param size leaves the frontier stands for
 * @param frontier perfect-subtree roots, largest first (one per set bit of `size`)
 * @param hashes buffer holding the leaf hashes, 32 bytes each, back to back
 * @param from index (in hashes) of the first leaf hash to append
 * @param count how many to append
 * @returns the frontier for `size + count` leaves (new arrays)
 */
export function extendFrontier(
  size: number,
  frontier: readonly Uint8Array[],
  hashes: Uint8Array,
  from: number,
  count: number,
): Uint8Array[] {
  const w = wasm();
  const m = reserve(w, SLOT_BYTES + count * 32);
  let f = 0;
  for (let h = 63; h >= 0; h--) {
    if (Math.floor(size / 2 ** h) % 2 === 1) m.set(frontier[f++], data + 32 * h);
  }
  m.set(hashes.subarray(32 * from, 32 * (from + count)), data + SLOT_BYTES);
  w.extend(data, size, data + SLOT_BYTES, count);
  const out: Uint8Array[] = [];
  const after = size + count;
  for (let h = 63; h >= 0; h--) {
    if (Math.floor(after / 2 ** h) % 2 === 1) out.push(m.slice(data + 32 * h, data + 32 * h + 32));
  }
  return out;
}

/** SHA-256 of the empty string: the root of an empty tree. */
export const EMPTY_ROOT: Uint8Array = new Uint8Array([
  0xe3,
  0xb0,
  0xc4,
  0x42,
  0x98,
  0xfc,
  0x1c,
  0x14,
  0x9a,
  0xfb,
  0xf4,
  0xc8,
  0x99,
  0x6f,
  0xb9,
  0x24,
  0x27,
  0xae,
  0x41,
  0xe4,
  0x64,
  0x9b,
  0x93,
  0x4c,
  0xa4,
  0x95,
  0x99,
  0x1b,
  0x78,
  0x52,
  0xb8,
  0x55,
]);
