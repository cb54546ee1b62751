/**
 * Builds the files of an agent release: the entry and each worker as one self-contained
 * JavaScript module (`deno bundle`, third-party and workspace code inlined), so that the
 * launcher can load the entry from verified memory and the entry can start the workers from
 * verified `blob:` URLs. The output directory is what `infraveil release bundle --src DIR
 * --entry agent.js` packs, encrypts and signs.
 *
 * Each output is checked the way the launcher will check it: a module that imports anything
 * but `node:` built-ins is refused here, at build time, rather than on a host.
 *
 * @module
 */
import { BUNDLE_WORKER_FILES } from "./agent_entry.ts";
import { AgentError } from "./error.ts";
import { planModules } from "./_loader.ts";

/** The entry file of an agent release. */
export const BUNDLE_ENTRY_FILE = "agent.js";

/** Options of {@link buildAgentFiles}. */
export interface BuildOptions {
  /** The `deno` executable (default `Deno.execPath()`). */
  deno?: string;
  /** Minify the output (default false: a release stays readable). */
  minify?: boolean;
}

/**
 * Bundles the agent's entry and workers into `outDir` (created if missing).
 *
 * @param outDir the directory to write
 * @param options the deno executable, minification
 * @returns the files written, relative to `outDir`
 * @throws {AgentError} `BAD_INPUT` when bundling fails or an output is not self-contained
 */
export async function buildAgentFiles(
  outDir: string,
  options: BuildOptions = {},
): Promise<string[]> {
  const deno = options.deno ?? Deno.execPath();
  await Deno.mkdir(outDir, { recursive: true });
  const sources: [string, string][] = [
    [BUNDLE_ENTRY_FILE, "agent_entry.ts"],
    [BUNDLE_WORKER_FILES.ledger, "ledger_worker.ts"],
    [BUNDLE_WORKER_FILES.proxy, "proxy_worker.ts"],
    [BUNDLE_WORKER_FILES.exec, "exec_worker.ts"],
  ];
  const here = new URL(".", import.meta.url).pathname;
  const files: string[] = [];
  await Promise.all(sources.map(async ([out, src]) => {
    const args = ["bundle", "--quiet", "--platform", "deno", "-o", `${outDir}/${out}`];
    if (options.minify) args.push("--minify");
    const r = await new Deno.Command(deno, {
      args: [...args, `${here}${src}`],
      cwd: `${here}..`,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!r.success) {
      throw new AgentError(
        "BAD_INPUT",
        `deno bundle ${src} failed: ${new TextDecoder().decode(r.stderr).trim()}`,
      );
    }
    const bytes = await Deno.readFile(`${outDir}/${out}`);
    try {
      const plan = planModules(new Map([[out, bytes]]), out);
      if (plan.modules.length !== 1) throw new Error("imports other files");
    } catch (e) {
      throw new AgentError(
        "BAD_INPUT",
        `Bundled ${out} is not self-contained: ${(e as Error).message}`,
      );
    }
    files.push(out);
  }));
  return files.sort();
}
