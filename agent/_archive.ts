/**
 * The bundle's file archive: a tiny, strict format with one encoding per set of files.
 *
 * ```
 * "IVA1"                      4 bytes magic (format version 1)
 * count                       u32 big-endian, number of files
 * count × {
 *   path length               u16 big-endian, 1..1024
 *   path                      UTF-8, relative, "/"-separated
 *   size                      u32 big-endian
 *   data                      size bytes
 * }
 * ```
 *
 * Paths are sorted by their UTF-8 bytes, strictly ascending (so no duplicates); nothing may
 * follow the last file. This module only packs and unpacks; it never touches the file system,
 * and unpacking returns views into the input, never copies.
 *
 * @module
 */
import { AgentError } from "./error.ts";

const MAGIC = [0x49, 0x56, 0x41, 0x31]; // "IVA1"
/** Longest path accepted, in UTF-8 bytes. */
export const MAX_PATH_BYTES = 1024;
/** Most files accepted in one archive. */
export const MAX_FILES = 100_000;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** One file of an archive. */
export interface ArchiveFile {
  /** Relative path, "/"-separated. */
  readonly path: string;
  /** The file's bytes. */
  readonly data: Uint8Array;
}

/**
 * Why a path is not acceptable in a bundle, or `null` when it is.
 *
 * @param path the candidate path
 * @returns the problem, or null
 */
export function pathProblem(path: string): string | null {
  if (path.length === 0) return "the path is empty";
  if (encoder.encode(path).length > MAX_PATH_BYTES) {
    return `the path is over ${MAX_PATH_BYTES} bytes`;
  }
  if (!path.isWellFormed()) return "the path is not valid Unicode";
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f\\]/.test(path)) {
    return "the path holds a control character or a backslash";
  }
  if (path.startsWith("/")) return "the path is absolute";
  for (const segment of path.split("/")) {
    if (segment === "") return 'the path has an empty segment (leading, trailing or double "/")';
    if (segment === "." || segment === "..") return `the path has a "${segment}" segment`;
  }
  return null;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** Refuses a file that is also a directory of another ("a" and "a/b"). */
function checkNoFileDirectoryClash(paths: readonly string[]): void {
  const files = new Set(paths);
  for (const path of paths) {
    for (let i = path.indexOf("/"); i !== -1; i = path.indexOf("/", i + 1)) {
      const dir = path.slice(0, i);
      if (files.has(dir)) {
        throw new AgentError("BAD_ARCHIVE", `Archive holds both a file "${dir}" and "${path}"`);
      }
    }
  }
}

/**
 * Packs files into an archive, sorting them by path.
 *
 * @param files the files; paths must be acceptable ({@link pathProblem}) and unique
 * @returns the archive bytes
 * @throws {AgentError} `BAD_ARCHIVE` for a bad or duplicate path, or a file over 4 GiB
 */
export function packArchive(files: readonly ArchiveFile[]): Uint8Array {
  if (files.length > MAX_FILES) {
    throw new AgentError("BAD_ARCHIVE", `An archive holds at most ${MAX_FILES} files`);
  }
  const entries = files.map((f) => {
    const problem = pathProblem(f.path);
    if (problem) throw new AgentError("BAD_ARCHIVE", `Cannot pack "${f.path}": ${problem}`);
    if (f.data.length > 0xffff_ffff) {
      throw new AgentError("BAD_ARCHIVE", `Cannot pack "${f.path}": files are limited to 4 GiB`);
    }
    return { path: f.path, name: encoder.encode(f.path), data: f.data };
  }).sort((a, b) => compareBytes(a.name, b.name));
  for (let i = 1; i < entries.length; i++) {
    if (compareBytes(entries[i - 1].name, entries[i].name) === 0) {
      throw new AgentError("BAD_ARCHIVE", `Cannot pack "${entries[i].path}" twice`);
    }
  }
  checkNoFileDirectoryClash(entries.map((e) => e.path));
  let size = 8;
  for (const e of entries) size += 2 + e.name.length + 4 + e.data.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  view.setUint32(4, entries.length);
  let at = 8;
  for (const e of entries) {
    view.setUint16(at, e.name.length);
    out.set(e.name, at + 2);
    at += 2 + e.name.length;
    view.setUint32(at, e.data.length);
    out.set(e.data, at + 4);
    at += 4 + e.data.length;
  }
  return out;
}

/**
 * Unpacks an archive strictly: magic, counts, lengths, path rules, order and the absence of
 * trailing bytes are all checked.
 *
 * @param bytes the archive
 * @returns the files in archive order; each `data` is a view into `bytes`
 * @throws {AgentError} `BAD_ARCHIVE` naming the offset and the problem
 */
export function unpackArchive(bytes: Uint8Array): ArchiveFile[] {
  const fail = (at: number, problem: string): never => {
    throw new AgentError("BAD_ARCHIVE", `Archive is malformed at byte ${at}: ${problem}`);
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 8) fail(0, "shorter than the 8-byte header");
  for (let i = 0; i < 4; i++) if (bytes[i] !== MAGIC[i]) fail(0, "not an IVA1 archive");
  const count = view.getUint32(4);
  if (count > MAX_FILES) fail(4, `${count} files is over the limit of ${MAX_FILES}`);
  const files: ArchiveFile[] = [];
  let previous: Uint8Array | null = null;
  let at = 8;
  for (let i = 0; i < count; i++) {
    if (at + 2 > bytes.length) fail(at, `file ${i + 1} of ${count} is missing`);
    const nameLength = view.getUint16(at);
    if (nameLength === 0 || nameLength > MAX_PATH_BYTES) fail(at, `path length ${nameLength}`);
    if (at + 2 + nameLength + 4 > bytes.length) fail(at, "truncated path or size");
    const name = bytes.subarray(at + 2, at + 2 + nameLength);
    let path = "";
    try {
      path = decoder.decode(name);
    } catch {
      fail(at + 2, "path is not UTF-8");
    }
    const problem = pathProblem(path);
    if (problem) fail(at + 2, `"${path}": ${problem}`);
    if (previous && compareBytes(previous, name) >= 0) {
      fail(at + 2, `"${path}" is out of order or repeated (paths must be strictly ascending)`);
    }
    previous = name;
    at += 2 + nameLength;
    const size = view.getUint32(at);
    at += 4;
    if (at + size > bytes.length) fail(at - 4, `"${path}" claims ${size} bytes past the end`);
    files.push({ path, data: bytes.subarray(at, at + size) });
    at += size;
  }
  if (at !== bytes.length) fail(at, `${bytes.length - at} trailing bytes after the last file`);
  checkNoFileDirectoryClash(files.map((f) => f.path));
  return files;
}
