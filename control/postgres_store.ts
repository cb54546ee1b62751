/**
 * The scale-out backend: PostgreSQL through `npm:postgres`. Several control-plane instances
 * may share one database: row locks (`SELECT … FOR UPDATE`) serialize changes to one request
 * and the evidence sequencer's runs for one tenant, unique constraints make nonces, votes and
 * folds race-free, and single-use claims are atomic `UPDATE … WHERE used_at IS NULL …
 * RETURNING`. Evidence is recorded as pending rows in the transaction of the change and chained
 * by a background sequencer after the commit (see `evidence.ts`), so one tenant's transactions
 * never wait for each other's commits.
 *
 * Migrations run under a transaction-scoped advisory lock, so instances starting together
 * apply each version once. Transactions that hit a deadlock or a serialization failure, or
 * whose last statement, sent together with the COMMIT, hit a unique constraint (two identical
 * requests racing: the rerun folds), are run again (at most 3 attempts).
 *
 * @module
 */
import postgres from "postgres";
import type { ControlStore, StoreTx } from "./store.ts";
import {
  appliedMigrations,
  EarlyCommitConflict,
  migrate,
  RATE_SHARDS,
  type SqlConn,
  type SqlRow,
  SqlTx,
  type SqlValue,
} from "./_sql_store.ts";
import { ControlError } from "./error.ts";
import { EvidenceSequencer } from "./_sequencer.ts";

/** Options of {@link openPostgresStore}. */
export interface PostgresStoreOptions {
  /** Clock for the migrations table, ms. */
  now?: () => number;
  /** Connection pool size (default 10). */
  max?: number;
  /**
   * How long the background evidence sequencer waits after a commit before it chains the
   * tenant's pending evidence, so one run chains the records of many commits (default 50 ms).
   * Reads of the log never wait: they chain first.
   */
  evidenceDelayMs?: number;
}

const MIGRATION_LOCK = 727_274_001;
type Sql = postgres.Sql<Record<string, never>>;

function placeholders(sql: string): string {
  let i = 0;
  return sql.replace(/\?/g, () => `$${++i}`);
}

class PgConn implements SqlConn {
  readonly dialect = "postgres";
  readonly #q: Sql | postgres.TransactionSql<Record<string, never>>;
  readonly #cache: Map<string, string>;
  constructor(q: Sql | postgres.TransactionSql<Record<string, never>>, cache: Map<string, string>) {
    this.#q = q;
    this.#cache = cache;
  }
  #text(sql: string): string {
    let t = this.#cache.get(sql);
    if (t === undefined) {
      t = placeholders(sql);
      this.#cache.set(sql, t);
    }
    return t;
  }
  async all(sql: string, params: readonly SqlValue[] = []): Promise<SqlRow[]> {
    const rows = await this.#q.unsafe(this.#text(sql), params as SqlValue[], { prepare: true });
    return rows as unknown as SqlRow[];
  }
  async run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    const rows = await this.#q.unsafe(this.#text(sql), params as SqlValue[], { prepare: true });
    return rows.count;
  }
  async commit(): Promise<boolean> {
    // PostgreSQL answers COMMIT with ROLLBACK when a statement of the transaction failed.
    return (await this.#q.unsafe("COMMIT")).command === "COMMIT";
  }
}

function retryable(e: unknown): boolean {
  if (e instanceof EarlyCommitConflict) return true;
  const code = (e as { code?: string })?.code;
  return code === "40P01" || code === "40001";
}

/**
 * Connects to PostgreSQL and applies pending migrations.
 *
 * @param url a `postgres://` URL
 * @param options clock and pool size
 * @returns the store
 * @throws {ControlError} `STORE` when the database cannot be reached or migrated
 */
export async function openPostgresStore(
  url: string,
  options: PostgresStoreOptions = {},
): Promise<ControlStore> {
  const { now = Date.now, max = 10, evidenceDelayMs = 50 } = options;
  const sql: Sql = postgres(url, {
    max,
    onnotice: () => {},
    // BIGINT (int8) as a JS number: our values are milliseconds and counters.
    types: {
      bigint: {
        to: 20,
        from: [20],
        serialize: (x: number) => String(x),
        parse: (x: string) => Number(x),
      },
    },
  }) as unknown as Sql;
  const cache = new Map<string, string>();
  try {
    await sql.begin(async (q) => {
      await q.unsafe(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`);
      await migrate(new PgConn(q as never, cache), now());
    });
  } catch (cause) {
    await sql.end({ timeout: 1 }).catch(() => {});
    const where = url.replace(/\/\/[^@/]*@/, "//***@");
    throw new ControlError("STORE", `Cannot open PostgreSQL database ${where}: ${cause}`, {
      cause,
    });
  }

  // Round robin: transactions in flight at once hit different rows of a rate-limit bucket.
  let shard = 0;
  const rateShard = () => shard++ % RATE_SHARDS;
  // One transaction on a connection of its own: BEGIN, the body's statements (pipelined when
  // sent together), then COMMIT, or ROLLBACK when the body throws. A body may send COMMIT
  // itself with its last statement (`SqlTx.committing`), which saves a round trip.
  async function once<T>(fn: (t: StoreTx) => Promise<T>): Promise<T> {
    const q = await sql.reserve();
    try {
      await q.unsafe("BEGIN");
      const t = new SqlTx(new PgConn(q as never, cache), { rateShard });
      let out: T;
      try {
        out = await fn(t);
      } catch (e) {
        if (t.committing) {
          // COMMIT went out with a statement that failed: the server rolled back instead.
          await t.committing;
        } else {
          await q.unsafe("ROLLBACK").catch(() => {});
        }
        throw e;
      }
      if (t.committing && !(await t.committing)) {
        throw new ControlError("STORE", "The transaction was rolled back at its commit");
      }
      if (!t.committing) await q.unsafe("COMMIT");
      for (const tenant of t.pendingEvidence) sequencer.kick(tenant);
      return out;
    } finally {
      q.release();
    }
  }
  async function tx<T>(fn: (t: StoreTx) => Promise<T>): Promise<T> {
    for (let attempt = 1;; attempt++) {
      try {
        return await once(fn);
      } catch (e) {
        if (attempt < 3 && retryable(e)) continue;
        if (e instanceof EarlyCommitConflict) {
          // Still racing an identical request after every attempt: as the fold check says.
          throw new ControlError("CONFLICT", "An identical request is being created; retry", {
            cause: e,
          });
        }
        throw e;
      }
    }
  }
  const sequencer = new EvidenceSequencer({ tx }, evidenceDelayMs);

  return {
    backend: "postgres",
    tx,
    migrations: () => appliedMigrations(new PgConn(sql, cache)),
    close: async () => {
      await sequencer.close();
      await sql.end({ timeout: 5 });
    },
  };
}
