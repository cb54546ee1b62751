/**
 * Deno file access for {@linkcode loadCrs}; only the CLI and benchmarks use it.
 *
 * @module
 */
import type { CrsFileAccess } from "./crs.ts";

/** Reads files with Deno's synchronous API (needs --allow-read). */
export const denoFiles: CrsFileAccess = {
  readFile: (p) => Deno.readTextFileSync(p),
  listDir: (p) => [...Deno.readDirSync(p)].filter((e) => e.isFile).map((e) => e.name),
};
