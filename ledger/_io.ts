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
 * @param reuse hand out the same two buffers in turn (for a consumer done with each chunk
 *   before it asks for the next, like the verifier): constant memory, no garbage, and the next
 *   chunk is read while the consumer works on this one
 * @returns an async iterable of chunks
 */
export async function* fileChunks(
  path: string,
  chunkBytes: number = CHUNK_BYTES,
  reuse = false,
): AsyncGenerator<Uint8Array> {
  const file = await Deno.open(path, { read: true });
  const fill = async (buf: Uint8Array): Promise<number> => {
    let filled = 0;
    while (filled < chunkBytes) {
      const n = await file.read(buf.subarray(filled));
      if (n === null) break;
      filled += n;
    }
    return filled;
  };
  let ahead: Promise<number> | null = null;
  try {
    if (!reuse) {
      for (;;) {
        const buf = new Uint8Array(chunkBytes);
        const filled = await fill(buf);
        if (filled > 0) yield filled === chunkBytes ? buf : buf.subarray(0, filled);
        if (filled < chunkBytes) return;
      }
    }
    const bufs = [new Uint8Array(chunkBytes), new Uint8Array(chunkBytes)];
    let turn = 0;
    let next = fill(bufs[0]);
    ahead = next;
    for (;;) {
      const buf = bufs[turn];
      const filled = await next;
      ahead = null;
      if (filled === 0) return;
      turn = 1 - turn;
      if (filled === chunkBytes) ahead = next = fill(bufs[turn]);
      yield filled === chunkBytes ? buf : buf.subarray(0, filled);
      if (filled < chunkBytes) return;
    }
  } finally {
    // A read still under way when the consumer stopped early: let it end before closing.
    if (ahead) await ahead.catch(() => {});
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
