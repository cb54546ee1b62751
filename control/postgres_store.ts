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
 * apply each version once. Transactions that hit a deadlock or a serialization failure are
 * retried (at most 3 times).
 *
 * @module
 */
import postgres from "postgres";
import type { ControlStore, StoreTx } from "./store.ts";
import {
  appliedMigrations,
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
}

function retryable(e: unknown): boolean {
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
  async function tx<T>(fn: (t: StoreTx) => Promise<T>): Promise<T> {
    for (let attempt = 1;; attempt++) {
      const t = { current: null as SqlTx | null };
      try {
        const out = await sql.begin((q) => {
          t.current = new SqlTx(new PgConn(q as never, cache), { rateShard });
          return fn(t.current);
        }) as T;
        for (const tenant of t.current!.pendingEvidence) sequencer.kick(tenant);
        return out;
      } catch (e) {
        if (attempt < 3 && retryable(e)) continue;
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
