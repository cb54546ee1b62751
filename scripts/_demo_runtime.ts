/**
 * The demo's runtime: a temporary directory, the processes it started, and their clean-up (on
 * success, on error and on Ctrl-C). It runs the `infraveil` CLI as separate processes with the
 * permission flags a user would give them, and prints each command as a user would type it.
 *
 * It never kills anything it did not start itself.
 *
 * @module
 */
export { freePort } from "../tests/_harness.ts";

/** The project's root directory (where `main.ts` and `deno.json` are). */
export const ROOT: string = new URL("../", import.meta.url).pathname.replace(/\/$/, "");

/** What a finished command returned. */
export interface CommandResult {
  /** Exit code. */
  code: number;
  /** Standard output. */
  stdout: string;
  /** Standard error. */
  stderr: string;
}

/** A long-running process the demo started. */
export interface Service {
  /** Its name, for messages. */
  name: string;
  /** The process. */
  child: Deno.ChildProcess;
  /** Everything it wrote to stderr (and stdout) so far. */
  log(): string;
  /** Resolves with the exit code once it has exited. */
  exited: Promise<number>;
}

/** Options of {@link Runtime.cli}. */
export interface CliOptions {
  /** Permission flags (default: the `cli` permission set). */
  flags?: string[];
  /** Extra environment. */
  env?: Record<string, string>;
  /** Don't print the command. */
  quiet?: boolean;
  /** Exit codes that are not an error (default `[0]`). */
  expect?: number[];
  /** How to show the command (default: the arguments, temp paths shortened). */
  show?: string;
  /** The program shown before {@link show} (default `infraveil`; `""` for none). */
  program?: string;
}

/** Thrown when a demo step does not give the expected result. */
export class DemoError extends Error {
  /** @param message what went wrong and what was seen */
  constructor(message: string) {
    super(message);
    this.name = "DemoError";
  }
}

const enc = new TextEncoder();

/** Writes a line to stdout at once (no buffering, so a reader sees progress). */
export function say(line = ""): void {
  Deno.stdout.writeSync(enc.encode(line + "\n"));
}

/**
 * Polls `check` until it returns a truthy value.
 *
 * @param check the condition
 * @param what what is awaited, for the error message
 * @param timeoutMs how long to wait
 * @returns the value
 * @throws {DemoError} when the time runs out
 */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  what: string,
  timeoutMs = 15_000,
): Promise<NonNullable<T>> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < until) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new DemoError(
    `timed out after ${timeoutMs / 1000} s waiting for ${what}${
      last ? ` (last error: ${last})` : ""
    }`,
  );
}

/** The demo's temporary directory, processes and servers. */
export class Runtime {
  /** The temporary directory holding everything the demo made. */
  readonly dir: string;
  readonly #services: Service[] = [];
  readonly #closers: (() => Promise<void> | void)[] = [];
  readonly #running = new Set<Deno.ChildProcess>();
  #cleaned = false;

  private constructor(dir: string) {
    this.dir = dir;
  }

  /**
   * Makes the temporary directory.
   *
   * @returns the runtime
   */
  static async create(): Promise<Runtime> {
    return new Runtime(await Deno.makeTempDir({ prefix: "infraveil-demo-" }));
  }

  /** The services started so far. */
  get services(): readonly Service[] {
    return this.#services;
  }

  /**
   * A path shown to the reader: the temporary directory as `$DEMO`, the project root as `.`.
   *
   * @param text any text
   * @returns the text with those paths shortened
   */
  short(text: string): string {
    return text.replaceAll(this.dir, "$DEMO").replaceAll(`${ROOT}/`, "");
  }

  /**
   * Registers something to close at clean-up (servers, clients), closed in reverse order.
   *
   * @param close the closer
   */
  onCleanup(close: () => Promise<void> | void): void {
    if (this.#cleaned) {
      void Promise.resolve().then(close).catch(() => {});
      return;
    }
    this.#closers.push(close);
  }

  /**
   * Runs `infraveil ARGS` (the project's `main.ts`) as a separate process and waits for it.
   *
   * @param args the arguments after `infraveil`
   * @param options flags, environment, expected exit codes
   * @returns its exit code and output
   * @throws {DemoError} when it exits with an unexpected code
   */
  async cli(args: string[], options: CliOptions = {}): Promise<CommandResult> {
    return await this.run(`${ROOT}/main.ts`, args, {
      ...options,
      show: options.show ?? args.join(" "),
    });
  }

  /**
   * Runs a Deno script of the project as a separate process and waits for it.
   *
   * @param script absolute path of the script
   * @param args its arguments
   * @param options flags, environment, expected exit codes, how to show it
   * @returns its exit code and output
   */
  async run(script: string, args: string[], options: CliOptions = {}): Promise<CommandResult> {
    const flags = options.flags ?? ["-P=cli"];
    const expect = options.expect ?? [0];
    const program = options.program ?? "infraveil";
    const shown = `${program ? `${program} ` : ""}${options.show ?? args.join(" ")}`;
    if (!options.quiet) say(`  $ ${this.short(shown)}`);
    const result = await this.#output(Deno.execPath(), [
      "run",
      "--quiet",
      "--no-prompt",
      ...flags,
      script,
      ...args,
    ], { NO_COLOR: "1", ...options.env });
    if (!expect.includes(result.code)) {
      throw new DemoError(
        `${this.short(shown)} exited ${result.code} (expected ${expect.join(" or ")})\n${
          this.short(result.stdout + result.stderr)
        }`,
      );
    }
    return result;
  }

  /**
   * Runs any program and waits for it.
   *
   * @param program the program
   * @param args its arguments
   * @returns its exit code and output
   */
  async exec(program: string, args: string[]): Promise<CommandResult> {
    return await this.#output(program, args);
  }

  /** Runs a program to its end, stopped at clean-up if it is still running then. */
  async #output(
    program: string,
    args: string[],
    env?: Record<string, string>,
  ): Promise<CommandResult> {
    if (this.#cleaned) throw new DemoError("stopped");
    const child = new Deno.Command(program, {
      args,
      cwd: this.dir,
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#running.add(child);
    try {
      const out = await child.output();
      return {
        code: out.code,
        stdout: new TextDecoder().decode(out.stdout),
        stderr: new TextDecoder().decode(out.stderr),
      };
    } finally {
      this.#running.delete(child);
    }
  }

  /**
   * Starts a long-running `deno run` process (a service), kept until clean-up.
   *
   * @param name its name
   * @param denoArgs arguments after `deno run`: flags, script, script arguments
   * @returns the service
   */
  start(name: string, denoArgs: string[]): Service {
    if (this.#cleaned) throw new DemoError("stopped");
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", ...denoArgs],
      cwd: this.dir,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let log = "";
    const drain = async (stream: ReadableStream<Uint8Array<ArrayBuffer>>) => {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) log += chunk;
    };
    const drained = Promise.all([drain(child.stdout), drain(child.stderr)]).catch(() => {});
    const exited = child.status.then(async (s) => {
      await drained;
      return s.code;
    });
    const service = { name, child, log: () => log, exited };
    this.#services.push(service);
    return service;
  }

  /**
   * Stops every service (SIGTERM, then SIGKILL after 5 s), closes servers and clients, and
   * removes the temporary directory. Safe to call more than once.
   */
  async cleanup(): Promise<void> {
    if (this.#cleaned) return;
    this.#cleaned = true;
    for (const child of this.#running) {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already exited.
      }
    }
    for (const close of this.#closers.splice(0).reverse()) {
      try {
        await close();
      } catch {
        // Closing what is already gone is fine.
      }
    }
    await Promise.all(this.#services.map(async (s) => {
      try {
        s.child.kill("SIGTERM");
      } catch {
        // Already exited.
      }
      const timer = setTimeout(() => {
        try {
          s.child.kill("SIGKILL");
        } catch {
          // Already exited.
        }
      }, 5_000);
      await s.exited;
      clearTimeout(timer);
    }));
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}
