/**
 * Builds the OWASP CRS engine from the proxy configuration (`rules.engine: "crs"`). The CRS
 * engine itself lives in `./crs/`; this module only resolves its file layout and options. File
 * access is injected; relative paths are resolved against `baseDir` (the config file's
 * directory).
 *
 * @module
 */

import type { ProxyConfig } from "./config.ts";
import { ProxyError } from "./errors.ts";
import type { RuleEngine } from "./rule_engine.ts";

/** File access the CRS loader needs. */
export interface CrsFiles {
  /** Returns a file's text, or throws. */
  readFile(path: string): string;
  /** Returns the names in a directory, or throws. */
  listDir(path: string): string[];
}

function resolvePath(baseDir: string, p: string): string {
  if (p.startsWith("/")) return p;
  return `${baseDir.replace(/\/+$/, "")}/${p}`;
}

function exists(files: CrsFiles, dir: string, name: string): boolean {
  try {
    return files.listDir(dir).includes(name);
  } catch {
    return false;
  }
}

/**
 * Loads the CRS engine named by `rules`.
 *
 * `rules.crsDir` may be a CRS checkout (holding `rules/` and `crs-setup.conf[.example]`) or the
 * rules directory itself. `rules.setupFile` defaults to `crs-setup.conf`, then
 * `crs-setup.conf.example`, in the CRS directory.
 *
 * @param rules The `rules` section of the resolved config.
 * @param options Base directory for relative paths and file access.
 * @returns The engine (always in "block" mode: the proxy's own mode decides enforcement).
 * @throws {ProxyError} CRS_UNAVAILABLE when the files are missing or do not compile.
 */
export async function loadCrsEngine(
  rules: ProxyConfig["rules"],
  options: { baseDir: string; files: CrsFiles },
): Promise<RuleEngine> {
  const { baseDir, files } = options;
  if (!rules.crsDir) {
    throw new ProxyError("CRS_UNAVAILABLE", `rules.crsDir is required when rules.engine is "crs"`);
  }
  const dir = resolvePath(baseDir, rules.crsDir);
  const rulesDir = exists(files, dir, "rules") ? `${dir}/rules` : dir;
  let setupFile: string | undefined;
  if (rules.setupFile) setupFile = resolvePath(baseDir, rules.setupFile);
  else {
    for (const name of ["crs-setup.conf", "crs-setup.conf.example"]) {
      if (exists(files, dir, name)) {
        setupFile = `${dir}/${name}`;
        break;
      }
    }
  }
  if (!setupFile) {
    throw new ProxyError(
      "CRS_UNAVAILABLE",
      `No CRS setup file in ${dir}: set rules.setupFile (e.g. "crs-setup.conf.example")`,
    );
  }
  const crs = await import("./crs/mod.ts");
  try {
    return crs.loadCrs({
      ...(rules.crsOptions as Record<string, unknown>),
      setupFile,
      rulesDir,
      paranoia: rules.paranoia,
      mode: "block",
      files,
    });
  } catch (err) {
    throw new ProxyError(
      "CRS_UNAVAILABLE",
      `Cannot load CRS from ${rulesDir}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}
