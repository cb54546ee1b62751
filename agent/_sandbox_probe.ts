/**
 * The sandbox self-test every worker answers: it tries what its permissions must forbid and
 * reports, for each attempt, `"NotCapable"` (refused by the permission system, as it must be)
 * or what happened instead. The supervisor runs it after each worker start and refuses to go
 * on with a worker whose sandbox leaks. The attempts touch nothing: reads and connects only,
 * and a listen that is closed at once.
 *
 * @module
 */

/** What to try. Every field is optional; an absent one is not tried. */
export interface SandboxProbe {
  /** A file to read. */
  read?: string;
  /** A file to create (only ever attempted where the worker must not write). */
  write?: string;
  /** `host:port` to connect to. */
  connect?: string;
  /** `host:port` to listen on. */
  listen?: string;
  /** An environment variable to read. */
  env?: string;
  /** A program to run. */
  run?: string;
}

/** For each attempt: `"NotCapable"` when refused by the permission system. */
export type SandboxResult = Record<string, string>;

function outcome(e: unknown): string {
  if (e instanceof Deno.errors.NotCapable) return "NotCapable";
  if (e instanceof Deno.errors.PermissionDenied) return "PermissionDenied";
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

function split(hostPort: string): { hostname: string; port: number } {
  const i = hostPort.lastIndexOf(":");
  return {
    hostname: hostPort.slice(0, i).replace(/^\[|\]$/g, ""),
    port: Number(hostPort.slice(i + 1)),
  };
}

/**
 * Tries each operation of the probe and reports how each ended.
 *
 * @param probe what to try
 * @returns the outcome of each attempt
 */
export async function runSandboxProbe(probe: SandboxProbe): Promise<SandboxResult> {
  const results: SandboxResult = {};
  const attempt = async (name: string, fn: () => Promise<unknown> | unknown) => {
    try {
      await fn();
      results[name] = "allowed";
    } catch (e) {
      results[name] = outcome(e);
    }
  };
  if (probe.read !== undefined) await attempt("read", () => Deno.readFile(probe.read!));
  if (probe.write !== undefined) {
    await attempt("write", () => Deno.writeTextFile(probe.write!, "", { createNew: true }));
  }
  if (probe.connect !== undefined) {
    await attempt("connect", async () => (await Deno.connect(split(probe.connect!))).close());
  }
  if (probe.listen !== undefined) {
    await attempt("listen", () => Deno.listen(split(probe.listen!)).close());
  }
  if (probe.env !== undefined) await attempt("env", () => Deno.env.get(probe.env!));
  if (probe.run !== undefined) {
    await attempt(
      "run",
      () => new Deno.Command(probe.run!, { stdout: "null", stderr: "null" }).output(),
    );
  }
  return results;
}
