/**
 * The default backend: one SQLite file through `node:sqlite`, zero set-up.
 *
 * SQLite has one writer at a time, and `node:sqlite` is synchronous while our transactions
 * are async, so this backend runs transactions one after another through a queue; inside a
 * transaction no other statement can interleave. WAL journal, `synchronous=FULL` (a commit is
 * on disk before it is acknowledged), foreign keys off (the schema has none). With one writer,
 * each transaction is its own evidence sequencer: it chains the evidence it recorded just
 * before it commits, so nothing is ever left pending (see `evidence.ts`).
 *
 * Group commit: transactions opened with `{ group: true }` (the signed endpoints) that wait
 * for the writer together share one `COMMIT`, so one fsync covers them all. Each runs alone
 * under its own savepoint (one that throws undoes only its own changes) and each caller is
 * answered only once that commit is on disk; if the shared commit fails, each is run again on
 * its own.
 *
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import type { ControlStore, StoreTx, TxOptions } from "./store.ts";
import {
  appliedMigrations,
  migrate,
  type SqlConn,
  type SqlRow,
  SqlTx,
  type SqlValue,
} from "./_sql_store.ts";
import { ControlError } from "./error.ts";
import { SEQUENCE_BATCH, sequenceEvidence } from "./evidence.ts";

/** Options of {@link openSqliteStore}. */
export interface SqliteStoreOptions {
  /** Clock for the migrations table, ms. */
  now?: () => number;
  /** `synchronous` pragma (default `FULL`). */
  synchronous?: "FULL" | "NORMAL";
}

/** Most transactions one group commit takes. */
const GROUP_MAX = 64;

interface GroupJob {
  fn: (t: StoreTx) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

class SqliteConn implements SqlConn {
  readonly dialect = "sqlite";
  readonly #db: DatabaseSync;
  readonly #cache = new Map<string, StatementSync>();
  constructor(db: DatabaseSync) {
    this.#db = db;
  }
  #prepare(sql: string): StatementSync {
    let st = this.#cache.get(sql);
    if (!st) {
      st = this.#db.prepare(sql.replace(/ FOR UPDATE\b/g, ""));
      this.#cache.set(sql, st);
    }
    return st;
  }
  all(sql: string, params: readonly SqlValue[] = []): Promise<SqlRow[]> {
    return Promise.resolve(this.#prepare(sql).all(...params) as SqlRow[]);
  }
  run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return Promise.resolve(Number(this.#prepare(sql).run(...params).changes));
  }
}

/**
 * Opens (creating if needed) a SQLite store and applies pending migrations.
 *
 * @param path database file, or `:memory:`
 * @param options clock and durability
 * @returns the store
 * @throws {ControlError} `STORE` when the file cannot be opened or migrated
 */
export async function openSqliteStore(
  path: string,
  options: SqliteStoreOptions = {},
): Promise<ControlStore> {
  const { now = Date.now, synchronous = "FULL" } = options;
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(path);
    db.exec("PRAGMA journal_mode = WAL");
    db.exec(`PRAGMA synchronous = ${synchronous}`);
    db.exec("PRAGMA busy_timeout = 5000");
  } catch (cause) {
    throw new ControlError("STORE", `Cannot open SQLite database ${path}: ${cause}`, { cause });
  }
  const conn = new SqliteConn(db);
  // One writer: each transaction chains its own evidence before it commits (no pending rows).
  const tx = new SqlTx(conn, { holdEvidence: true });
  let queue: Promise<unknown> = Promise.resolve();
  let closed = false;

  async function run<T>(fn: (t: StoreTx) => Promise<T>): Promise<T> {
    if (closed) throw new ControlError("STORE", "The store is closed");
    tx.reset();
    db.exec("BEGIN IMMEDIATE");
    try {
      const out = await fn(tx);
      for (const tenant of tx.pendingEvidence) {
        while ((await sequenceEvidence(tx, tenant)) === SEQUENCE_BATCH) {
          // more to chain
        }
      }
      db.exec("COMMIT");
      return out;
    } catch (e) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw e;
    } finally {
      tx.reset();
    }
  }

  function serialize<T>(fn: () => Promise<T>): Promise<T> {
    const next = queue.then(fn, fn);
    queue = next.catch(() => {});
    return next;
  }

  // Group commit: transactions flagged `group` that are waiting for the writer when it frees
  // up run one after another in one SQLite transaction, each under its own savepoint, and are
  // committed by one COMMIT (one fsync). Each settles only after that commit.
  let waiting: GroupJob[] = [];
  function grouped<T>(fn: (t: StoreTx) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      waiting.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      if (waiting.length === 1) void serialize(drain);
    });
  }
  async function drain(): Promise<void> {
    const batch = waiting.slice(0, GROUP_MAX);
    waiting = waiting.slice(batch.length);
    if (waiting.length > 0) void serialize(drain);
    if (batch.length === 0) return;
    if (batch.length === 1) {
      await run(batch[0].fn).then(batch[0].resolve, batch[0].reject);
      return;
    }
    let results: ({ ok: true; value: unknown } | { ok: false; error: unknown })[];
    try {
      results = await run(async (t) => {
        const out = [];
        for (const job of batch) out.push(await tx.isolated(() => job.fn(t)));
        return out;
      });
    } catch {
      // The shared commit failed (or a savepoint could not be undone): nothing of the batch
      // is committed. Run each on its own, so that one cannot fail the others.
      for (const job of batch) await run(job.fn).then(job.resolve, job.reject);
      return;
    }
    results.forEach((r, i) => r.ok ? batch[i].resolve(r.value) : batch[i].reject(r.error));
  }

  await serialize(async () => {
    db.exec("BEGIN IMMEDIATE");
    try {
      await migrate(conn, now());
      db.exec("COMMIT");
    } catch (cause) {
      db.exec("ROLLBACK");
      throw new ControlError("STORE", `Cannot migrate SQLite database ${path}: ${cause}`, {
        cause,
      });
    }
  });

  return {
    backend: "sqlite",
    tx: <T>(fn: (t: StoreTx) => Promise<T>, txOptions: TxOptions = {}): Promise<T> =>
      txOptions.group ? grouped(fn) : serialize(() => run(fn)),
    migrations: () => serialize(() => appliedMigrations(conn)),
    close: () =>
      serialize(() => {
        if (!closed) {
          closed = true;
          db.close();
        }
        return Promise.resolve();
      }),
  };
}
