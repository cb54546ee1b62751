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
