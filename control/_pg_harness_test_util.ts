/**
 * Test harness: starts a real, throw-away PostgreSQL on 127.0.0.1 from Debian's binaries
 * (`/usr/lib/postgresql/<version>/bin`), with `fsync=off` for speed. PostgreSQL refuses to run
 * as root, so as root the server runs as the `postgres` user through `runuser`, with its data
 * directory in a temporary folder owned by that user.
 *
 * Not a test module (no `_test.ts` suffix): test modules import it.
 *
 * @module
 */
import { freePort } from "../tests/_harness.ts";

/** Whether this run is CI, where PostgreSQL must be present. */
export const IN_CI: boolean = Deno.env.get("CI") === "true";

/** The directory holding `initdb` and `pg_ctl`, or null when PostgreSQL is not installed. */
export function postgresBinDir(): string | null {
  const roots = ["/usr/lib/postgresql"];
  for (const root of roots) {
    let versions: string[] = [];
    try {
      versions = [...Deno.readDirSync(root)].map((e) => e.name).sort((a, b) =>
        Number(b) - Number(a)
      );
    } catch {
      continue;
    }
    for (const v of versions) {
      try {
        Deno.statSync(`${root}/${v}/bin/initdb`);
        Deno.statSync(`${root}/${v}/bin/pg_ctl`);
        return `${root}/${v}/bin`;
      } catch {
        // try the next version
      }
    }
  }
  return null;
}

/** A running test server. */
export interface PgServer {
  /** The URL of a database on it. */
  url(database?: string): string;
  /** Creates a fresh database and returns its URL. */
  createDatabase(): Promise<string>;
  /** Stops the server and deletes its files. */
  stop(): Promise<void>;
  /** Synchronous stop, for an `unload` handler. */
  stopSync(): void;
}

let dbCounter = 0;

/**
 * Starts a PostgreSQL server for tests.
 *
 * @param options `durable`: keep PostgreSQL's default fsync and synchronous commit (benchmarks);
 *   `statements`: load `pg_stat_statements` (per-statement server time, for benchmarks)
 * @returns the server
 * @throws Error when the binaries are missing or the server does not start
 */
export async function startPostgres(
  options: { durable?: boolean; statements?: boolean } = {},
): Promise<PgServer> {
  const bin = postgresBinDir();
  if (!bin) throw new Error("PostgreSQL binaries not found under /usr/lib/postgresql/*/bin");
  const asRoot = Deno.uid() === 0;
  const dir = await Deno.makeTempDir({ prefix: "infraveil-pg-" });
  const data = `${dir}/data`;
  const wrap = (cmd: string[]): string[] =>
    asRoot ? ["runuser", "-u", "postgres", "--", ...cmd] : cmd;
  const exec = async (cmd: string[]): Promise<void> => {
    const full = wrap(cmd);
    const out = await new Deno.Command(full[0], {
      args: full.slice(1),
      stdout: "piped",
      stderr: "piped",
      cwd: dir,
    }).output();
    if (!out.success) {
      const err = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
      throw new Error(`${cmd.join(" ")} failed: ${err.slice(-2000)}`);
    }
  };
  if (asRoot) {
    const out = await new Deno.Command("chown", { args: ["-R", "postgres", dir] }).output();
    if (!out.success) throw new Error(`chown -R postgres ${dir} failed`);
  }
  await exec([
    `${bin}/initdb`,
    "-D",
    data,
    "-A",
    "trust",
    "-U",
    "postgres",
    "-E",
    "UTF8",
    "--no-sync",
  ]);
  const port = freePort();
  const opts = [
    "-c listen_addresses=127.0.0.1",
    `-c port=${port}`,
    `-c unix_socket_directories=${dir}`,
    ...(options.durable
      ? []
      : ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]),
    "-c max_connections=200",
    ...(options.statements
      ? ["-c shared_preload_libraries=pg_stat_statements", "-c pg_stat_statements.track=all"]
      : []),
  ].join(" ");
  await exec([
    `${bin}/pg_ctl`,
    "-D",
    data,
    "-o",
    opts,
    "-l",
    `${dir}/log`,
    "-w",
    "-t",
    "30",
    "start",
  ]);
  let stopped = false;
  const stopArgs = wrap([`${bin}/pg_ctl`, "-D", data, "-m", "immediate", "-w", "stop"]);
  const url = (database = "postgres") => `postgres://postgres@127.0.0.1:${port}/${database}`;
  return {
    url,
    async createDatabase(): Promise<string> {
      const name = `t_${Deno.pid}_${++dbCounter}`;
      const { default: postgres } = await import("postgres");
      const sql = postgres(url(), { max: 1, onnotice: () => {} });
      try {
        await sql.unsafe(`CREATE DATABASE ${name}`);
      } finally {
        await sql.end({ timeout: 1 });
      }
      return url(name);
    },
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      await new Deno.Command(stopArgs[0], {
        args: stopArgs.slice(1),
        stdout: "null",
        stderr: "null",
      })
        .output();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
    stopSync(): void {
      if (stopped) return;
      stopped = true;
      new Deno.Command(stopArgs[0], { args: stopArgs.slice(1), stdout: "null", stderr: "null" })
        .outputSync();
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch {
        // already gone
      }
    },
  };
}
