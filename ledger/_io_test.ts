import assert from "node:assert/strict";
import { fileChunks } from "./_io.ts";

Deno.test("fileChunks() yields the file's bytes in order, with and without buffer reuse", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const size of [0, 1, 63, 64, 65, 128, 129, 1000]) {
      const data = Uint8Array.from({ length: size }, (_, i) => (i * 7) & 255);
      const path = `${dir}/f${size}`;
      await Deno.writeFile(path, data);
      for (const reuse of [false, true]) {
        const got: number[] = [];
        for await (const chunk of fileChunks(path, 64, reuse)) {
          assert.ok(chunk.length > 0 && chunk.length <= 64);
          got.push(...chunk); // the consumer is done with each chunk before the next
        }
        assert.deepEqual(Uint8Array.from(got), data, `size ${size}, reuse ${reuse}`);
      }
      // Stopping early (a read may be under way) closes the file without an error.
      for await (const _ of fileChunks(path, 64, true)) break;
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
