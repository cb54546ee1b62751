/**
 * `infraveil policy …`: the command-line entry. The only file of this package that touches
 * Deno.args, the file system and the standard streams; everything else gets them through `Io`.
 * `check`, the CI hot path, is imported statically (a dynamic import costs start-up time); every
 * other command is imported on demand. `check` reads nothing but its inputs (--allow-read only).
 *
 * @module
 */
import { check, USAGE } from "./_cli_check.ts";
import type { Io } from "./_cli_check.ts";

export type { Io } from "./_cli_check.ts";

const encoder = new TextEncoder();

async function writeAll(w: { write(p: Uint8Array): Promise<number> }, text: string): Promise<void> {
  let buf = encoder.encode(text);
  while (buf.length > 0) buf = buf.subarray(await w.write(buf));
}

async function readStdin(): Promise<string> {
  return await new Response(Deno.stdin.readable).text();
}

/** The real world: Deno's file system, streams and clock. */
function denoIo(): Io {
  return {
    // Synchronous reads: for the small files a policy command reads they start faster.
    readText: (path) => {
      if (path === "-") return readStdin();
      try {
        return Promise.resolve(Deno.readTextFileSync(path));
      } catch (e) {
        return Promise.reject(e);
      }
    },
    writeText: (path, text) => Deno.writeTextFile(path, text),
    kind: async (path) => {
      try {
        return (await Deno.stat(path)).isDirectory ? "dir" : "file";
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) return "missing";
        throw e;
      }
    },
    list: async (path) => {
      const out: { name: string; dir: boolean }[] = [];
      for await (const e of Deno.readDir(path)) out.push({ name: e.name, dir: e.isDirectory });
      return out;
    },
    out: (text) => writeAll(Deno.stdout, text),
    err: (text) => writeAll(Deno.stderr, text),
    now: () => Date.now(),
  };
}

/**
 * Run `infraveil policy <command> …` (args exclude the word "policy").
 *
 * @param args `lint|check|fmt|explain|test|hash|schema` and their arguments.
 * @param io The outside world (defaults to Deno's; tests pass a fake).
 * @returns The exit code: 0 ok/allowed, 1 denied/failed, 2 usage or input error, 3 policy errors.
 */
export async function main(args: string[], io: Io = denoIo()): Promise<number> {
  const [command, ...rest] = args;
  switch (command) {
    case "check":
      return check(io, rest);
    case "explain":
      return (await import("./_cli_check.ts")).explain(io, rest);
    case "lint":
    case "fmt":
    case "test":
    case "hash":
    case "schema":
      return (await import("./_cli.ts"))[command](io, rest);
    case undefined:
    case "help":
    case "--help":
    case "-h": {
      await (command === undefined ? io.err : io.out)(USAGE.policy);
      return command === undefined ? 2 : 0;
    }
    default: {
      await io.err(`error: unknown command "${command}"\n\n${USAGE.policy}`);
      return 2;
    }
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
