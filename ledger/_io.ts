/**
 * File reading for the writer's recovery scan and the command line: large sequential chunks.
 *
 * @module
 */

/** Chunk size for sequential reads: large enough that per-chunk costs vanish. */
export const CHUNK_BYTES: number = 1 << 20;

/**
 * Reads a file as a sequence of chunks, closing it at the end.
 *
 * @param path the file
 * @param chunkBytes bytes per read
 * @param reuse hand out the same buffer every time (for a consumer done with each chunk
 *   before it asks for the next, like the verifier): constant memory, no garbage
 * @returns an async iterable of chunks
 */
export async function* fileChunks(
  path: string,
  chunkBytes: number = CHUNK_BYTES,
  reuse = false,
): AsyncGenerator<Uint8Array> {
  const file = await Deno.open(path, { read: true });
  let shared: Uint8Array | null = null;
  try {
    for (;;) {
      const buf: Uint8Array = reuse
        ? (shared ??= new Uint8Array(chunkBytes))
        : new Uint8Array(chunkBytes);
      let filled = 0;
      while (filled < chunkBytes) {
        const n = await file.read(buf.subarray(filled));
        if (n === null) break;
        filled += n;
      }
      if (filled > 0) yield filled === chunkBytes ? buf : buf.subarray(0, filled);
      if (filled < chunkBytes) return;
    }
  } finally {
    file.close();
  }
}

/**
 * Writes all of a buffer (a single `write` may write less).
 *
 * @param file the open file
 * @param bytes what to write
 */
export async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += await file.write(bytes.subarray(done));
}

/**
 * Writes all of a buffer synchronously.
 *
 * @param file the open file
 * @param bytes what to write
 */
export function writeAllSync(file: Deno.FsFile, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += file.writeSync(bytes.subarray(done));
}
