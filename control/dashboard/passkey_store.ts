/**
 * Storage of the dashboard's passkeys: WebAuthn credentials of human users, the single-use
 * nonces of passkey ceremonies, and the verified assertions stored as the proof of each
 * approval or rejection. Three implementations: in the control store itself (its tables
 * `passkeys`, `passkey_nonces` and `approval_proofs`, on SQLite or PostgreSQL, so every
 * control-plane instance sharing a database shares sign-ins; what `control serve` uses), in
 * memory (tests), and a separate `node:sqlite` file (older set-ups).
 *
 * Every method takes the tenant first, as the control plane's store does, so no lookup can
 * cross tenants. A credential id is unique per tenant; a user's credentials never serve
 * another user (the verifier checks the owner).
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import type { ApprovalProofRow, ControlStore, PasskeyRow } from "../store.ts";

export type { ApprovalProofRow, PasskeyRow };

/** Where passkeys, ceremony nonces and approval proofs are kept. */
export interface PasskeyStore {
  /** Stores a credential; false when that credential id is already registered. */
  insertPasskey(tenant: string, row: PasskeyRow): Promise<boolean>;
  /** A credential by id. */
  getPasskey(tenant: string, id: string): Promise<PasskeyRow | null>;
  /** A user's credentials, oldest first. */
  listPasskeys(tenant: string, userId: string): Promise<PasskeyRow[]>;
  /** Deletes a credential; false when absent. */
  deletePasskey(tenant: string, id: string): Promise<boolean>;
  /** Records a successful use: the new counter and the time. */
  touchPasskey(tenant: string, id: string, counter: number, now: number): Promise<void>;
  /**
   * Records a ceremony nonce as used; false when it was used before (replay). `exp` (ms)
   * lets old nonces be forgotten: a nonce is only accepted before its expiry anyway.
   */
  useNonce(tenant: string, nonce: string, exp: number, now: number): Promise<boolean>;
  /** Stores the proof of a vote. */
  insertProof(tenant: string, row: ApprovalProofRow): Promise<void>;
  /** The proofs of a request's votes, oldest first. */
  listProofs(tenant: string, requestId: string): Promise<ApprovalProofRow[]>;
  /** Releases the database. */
  close(): Promise<void>;
}

/**
 * A passkey store in memory (tests, demos).
 *
 * @returns the store
 * @example
 * ```ts
 * import { memoryPasskeyStore } from "./passkey_store.ts";
 * const s = memoryPasskeyStore();
 * if (!(await s.useNonce("acme", "n1", Date.now() + 1000, Date.now()))) throw new Error();
 * if (await s.useNonce("acme", "n1", Date.now() + 1000, Date.now())) throw new Error("replay");
 * ```
 */
export function memoryPasskeyStore(): PasskeyStore {
  const keys = new Map<string, PasskeyRow>();
  const nonces = new Map<string, number>();
  const proofs: (ApprovalProofRow & { tenant: string })[] = [];
  const k = (tenant: string, id: string) => `${tenant}\0${id}`;
  return {
    insertPasskey(tenant, row) {
      if (keys.has(k(tenant, row.id))) return Promise.resolve(false);
      keys.set(k(tenant, row.id), structuredClone(row));
      return Promise.resolve(true);
    },
    getPasskey(tenant, id) {
      const r = keys.get(k(tenant, id));
      return Promise.resolve(r ? structuredClone(r) : null);
    },
    listPasskeys(tenant, userId) {
      const out = [...keys.entries()]
        .filter(([key, r]) => key.startsWith(`${tenant}\0`) && r.userId === userId)
        .map(([, r]) => structuredClone(r))
        .sort((a, b) => a.createdAt - b.createdAt);
      return Promise.resolve(out);
    },
    deletePasskey(tenant, id) {
      return Promise.resolve(keys.delete(k(tenant, id)));
    },
    touchPasskey(tenant, id, counter, now) {
      const r = keys.get(k(tenant, id));
      if (r) {
        r.counter = counter;
        r.lastUsedAt = now;
      }
      return Promise.resolve();
    },
    useNonce(tenant, nonce, exp, now) {
      for (const [key, e] of nonces) if (e < now) nonces.delete(key);
      if (nonces.has(k(tenant, nonce))) return Promise.resolve(false);
      nonces.set(k(tenant, nonce), exp);
      return Promise.resolve(true);
    },
    insertProof(tenant, row) {
      proofs.push({ ...structuredClone(row), tenant });
      return Promise.resolve();
    },
    listProofs(tenant, requestId) {
      return Promise.resolve(
        proofs.filter((p) => p.tenant === tenant && p.requestId === requestId).map((
          { tenant: _t, ...p },
        ) => p),
      );
    },
    close() {
      return Promise.resolve();
    },
  };
}

/**
 * A passkey store kept in the control store's own database (migration 5: tables `passkeys`,
 * `passkey_nonces`, `approval_proofs`), each call one transaction. Control-plane instances
 * sharing a PostgreSQL database share passkeys, so a ceremony begun on one instance can finish
 * on another and a nonce used on one is refused on all. `close()` leaves the control store
 * open: its owner closes it.
 *
 * @param store the control store
 * @returns the passkey store
 * @example
 * ```ts
 * import { openSqliteStore } from "../sqlite_store.ts";
 * import { controlStorePasskeyStore } from "./passkey_store.ts";
 * const store = await openSqliteStore(":memory:");
 * const s = controlStorePasskeyStore(store);
 * if (!(await s.useNonce("acme", "n1", Date.now() + 1000, Date.now()))) throw new Error();
 * if (await s.useNonce("acme", "n1", Date.now() + 1000, Date.now())) throw new Error("replay");
 * await store.close();
 * ```
 */
export function controlStorePasskeyStore(store: ControlStore): PasskeyStore {
  return {
    insertPasskey: (tenant, row) => store.tx((t) => t.insertPasskey(tenant, row)),
    getPasskey: (tenant, id) => store.tx((t) => t.getPasskey(tenant, id)),
    listPasskeys: (tenant, userId) => store.tx((t) => t.listPasskeys(tenant, userId)),
    deletePasskey: (tenant, id) => store.tx((t) => t.deletePasskey(tenant, id)),
    touchPasskey: (tenant, id, counter, now) =>
      store.tx((t) => t.touchPasskey(tenant, id, counter, now)),
    useNonce: (tenant, nonce, exp, now) =>
      store.tx((t) => t.usePasskeyNonce(tenant, nonce, exp, now)),
    insertProof: (tenant, row) => store.tx((t) => t.insertApprovalProof(tenant, row)),
    listProofs: (tenant, requestId) => store.tx((t) => t.listApprovalProofs(tenant, requestId)),
    close: () => Promise.resolve(),
  };
}

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS passkeys (
    tenant TEXT NOT NULL, id TEXT NOT NULL, user_id TEXT NOT NULL, public_key TEXT NOT NULL,
    counter INTEGER NOT NULL, transports TEXT NOT NULL, label TEXT, created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    PRIMARY KEY (tenant, id))`,
  `CREATE INDEX IF NOT EXISTS passkeys_user ON passkeys (tenant, user_id)`,
  `CREATE TABLE IF NOT EXISTS passkey_nonces (
    tenant TEXT NOT NULL, nonce TEXT NOT NULL, exp INTEGER NOT NULL,
    PRIMARY KEY (tenant, nonce))`,
  `CREATE TABLE IF NOT EXISTS approval_proofs (
    tenant TEXT NOT NULL, request_id TEXT NOT NULL, user_id TEXT NOT NULL, decision TEXT NOT NULL,
    action_hash TEXT NOT NULL, credential_id TEXT NOT NULL, nonce TEXT NOT NULL,
    challenge TEXT NOT NULL, assertion TEXT NOT NULL, created_at INTEGER NOT NULL)`,
  `CREATE INDEX IF NOT EXISTS approval_proofs_request ON approval_proofs (tenant, request_id)`,
];

type SqlRow = Record<string, string | number | null>;

function passkeyOf(r: SqlRow): PasskeyRow {
  return {
    id: String(r.id),
    userId: String(r.user_id),
    publicKey: String(r.public_key),
    counter: Number(r.counter),
    transports: JSON.parse(String(r.transports)),
    label: r.label === null ? null : String(r.label),
    createdAt: Number(r.created_at),
    lastUsedAt: r.last_used_at === null ? null : Number(r.last_used_at),
  };
}

/**
 * Opens (creating if needed) a passkey store in a separate SQLite file. `control serve` keeps
 * passkeys in the control store instead ({@link controlStorePasskeyStore}).
 *
 * @param path the database file, or `:memory:`
 * @returns the store
 */
export function openSqlitePasskeyStore(path: string): Promise<PasskeyStore> {
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("PRAGMA busy_timeout = 5000");
  for (const s of SCHEMA) db.exec(s);
  const q = (sql: string) => db.prepare(sql);
  const insertKey = q(
    `INSERT INTO passkeys (tenant, id, user_id, public_key, counter, transports, label, created_at, last_used_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
  );
  const getKey = q(`SELECT * FROM passkeys WHERE tenant = ? AND id = ?`);
  const listKeys = q(
    `SELECT * FROM passkeys WHERE tenant = ? AND user_id = ? ORDER BY created_at, id`,
  );
  const delKey = q(`DELETE FROM passkeys WHERE tenant = ? AND id = ?`);
  const touch = q(`UPDATE passkeys SET counter = ?, last_used_at = ? WHERE tenant = ? AND id = ?`);
  const purge = q(`DELETE FROM passkey_nonces WHERE exp < ?`);
  const addNonce = q(
    `INSERT INTO passkey_nonces (tenant, nonce, exp) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
  );
  const addProof = q(
    `INSERT INTO approval_proofs (tenant, request_id, user_id, decision, action_hash, credential_id, nonce,
     challenge, assertion, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const listProofs = q(
    `SELECT * FROM approval_proofs WHERE tenant = ? AND request_id = ? ORDER BY created_at`,
  );
  return Promise.resolve({
    insertPasskey(tenant, r) {
      const res = insertKey.run(
        tenant,
        r.id,
        r.userId,
        r.publicKey,
        r.counter,
        JSON.stringify(r.transports),
        r.label,
        r.createdAt,
        r.lastUsedAt,
      );
      return Promise.resolve(Number(res.changes) === 1);
    },
    getPasskey(tenant, id) {
      const r = getKey.get(tenant, id) as SqlRow | undefined;
      return Promise.resolve(r ? passkeyOf(r) : null);
    },
    listPasskeys(tenant, userId) {
      return Promise.resolve((listKeys.all(tenant, userId) as SqlRow[]).map(passkeyOf));
    },
    deletePasskey(tenant, id) {
      return Promise.resolve(Number(delKey.run(tenant, id).changes) === 1);
    },
    touchPasskey(tenant, id, counter, now) {
      touch.run(counter, now, tenant, id);
      return Promise.resolve();
    },
    useNonce(tenant, nonce, exp, now) {
      purge.run(now);
      return Promise.resolve(Number(addNonce.run(tenant, nonce, exp).changes) === 1);
    },
    insertProof(tenant, r) {
      addProof.run(
        tenant,
        r.requestId,
        r.userId,
        r.decision,
        r.actionHash,
        r.credentialId,
        r.nonce,
        r.challenge,
        r.assertion,
        r.createdAt,
      );
      return Promise.resolve();
    },
    listProofs(tenant, requestId) {
      return Promise.resolve((listProofs.all(tenant, requestId) as SqlRow[]).map((r) => ({
        requestId: String(r.request_id),
        userId: String(r.user_id),
        decision: r.decision as "approve" | "reject",
        actionHash: String(r.action_hash),
        credentialId: String(r.credential_id),
        nonce: String(r.nonce),
        challenge: String(r.challenge),
        assertion: String(r.assertion),
        createdAt: Number(r.created_at),
      })));
    },
    close() {
      db.close();
      return Promise.resolve();
    },
  });
}
