/**
 * Versioned schema migrations, the same logical schema for SQLite and PostgreSQL. Types are
 * limited to TEXT, INTEGER and BIGINT (times are Unix milliseconds; JSON is TEXT), so one text
 * serves both; the rare statement the two dialects spell differently (an auto-increment key)
 * gives one text per dialect. Never edit an applied migration: add a new version.
 *
 * @module
 */

/** A statement: one portable text, or one text per dialect. */
export type MigrationStatement = string | { sqlite: string; postgres: string };

/** One migration. */
export interface Migration {
  /** Version, increasing from 1. */
  version: number;
  /** Short name. */
  name: string;
  /** Statements, run in order inside one transaction. */
  statements: MigrationStatement[];
}

/** Every migration, in order. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "initial",
    statements: [
      `CREATE TABLE tenants (
        name TEXT PRIMARY KEY,
        created_at BIGINT NOT NULL,
        active_policy_hash TEXT,
        settings TEXT NOT NULL)`,
      `CREATE TABLE users (
        tenant TEXT NOT NULL, id TEXT NOT NULL, email TEXT NOT NULL, display_name TEXT,
        status TEXT NOT NULL, created_at BIGINT NOT NULL,
        PRIMARY KEY (tenant, id), UNIQUE (tenant, email))`,
      `CREATE TABLE tokens (
        tenant TEXT NOT NULL, id TEXT NOT NULL, user_id TEXT NOT NULL, kind TEXT NOT NULL,
        hash TEXT NOT NULL, label TEXT, created_at BIGINT NOT NULL, expires_at BIGINT,
        used_at BIGINT, revoked_at BIGINT,
        PRIMARY KEY (tenant, id))`,
      `CREATE TABLE identities (
        tenant TEXT NOT NULL, kid TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL,
        public_key TEXT NOT NULL, operator TEXT, status TEXT NOT NULL,
        created_at BIGINT NOT NULL, revoked_at BIGINT,
        PRIMARY KEY (tenant, kid))`,
      `CREATE UNIQUE INDEX identities_active_name ON identities (tenant, name)
        WHERE status = 'active'`,
      `CREATE TABLE enrollment_tokens (
        tenant TEXT NOT NULL, id TEXT NOT NULL, hash TEXT NOT NULL, name TEXT NOT NULL,
        kind TEXT NOT NULL, operator TEXT, created_by TEXT NOT NULL, created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL, used_at BIGINT,
        PRIMARY KEY (tenant, id))`,
      `CREATE TABLE nonces (
        tenant TEXT NOT NULL, nonce TEXT NOT NULL, exp BIGINT NOT NULL,
        CONSTRAINT nonces_unique UNIQUE (tenant, nonce))`,
      `CREATE INDEX nonces_exp ON nonces (tenant, exp)`,
      `CREATE TABLE rate_limits (
        tenant TEXT NOT NULL, bucket TEXT NOT NULL, window_start BIGINT NOT NULL,
        hits INTEGER NOT NULL,
        PRIMARY KEY (tenant, bucket))`,
      `CREATE TABLE policies (
        tenant TEXT NOT NULL, hash TEXT NOT NULL, text TEXT NOT NULL, status TEXT NOT NULL,
        created_at BIGINT NOT NULL, created_by TEXT NOT NULL, activated_at BIGINT,
        PRIMARY KEY (tenant, hash))`,
      `CREATE TABLE requests (
        tenant TEXT NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL, action TEXT NOT NULL,
        action_hash TEXT NOT NULL, requester TEXT NOT NULL, requester_kind TEXT NOT NULL,
        operator TEXT, environment TEXT, service TEXT, targets TEXT NOT NULL,
        status TEXT NOT NULL, decision TEXT NOT NULL, approvals_required INTEGER NOT NULL,
        policy_hash TEXT, break_glass TEXT, created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL, expires_at BIGINT NOT NULL,
        PRIMARY KEY (tenant, id))`,
      `CREATE UNIQUE INDEX requests_pending_fold ON requests (tenant, action_hash)
        WHERE status = 'pending'`,
      `CREATE INDEX requests_by_time ON requests (tenant, created_at, id)`,
      `CREATE TABLE votes (
        tenant TEXT NOT NULL, request_id TEXT NOT NULL, user_id TEXT NOT NULL,
        decision TEXT NOT NULL, method TEXT NOT NULL, comment TEXT,
        created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL,
        PRIMARY KEY (tenant, request_id, user_id))`,
      `CREATE TABLE signed_approvals (
        tenant TEXT NOT NULL, id TEXT NOT NULL, request_id TEXT NOT NULL,
        envelope TEXT NOT NULL, action_hash TEXT NOT NULL, expires_at BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (tenant, id), UNIQUE (tenant, request_id))`,
      `CREATE TABLE approval_targets (
        tenant TEXT NOT NULL, approval_id TEXT NOT NULL, host TEXT NOT NULL,
        expires_at BIGINT NOT NULL, used_at BIGINT, used_by TEXT, result_status TEXT,
        result TEXT, reported_at BIGINT,
        PRIMARY KEY (tenant, approval_id, host))`,
      `CREATE INDEX approval_targets_host ON approval_targets (tenant, host, used_at)`,
      `CREATE TABLE authority_groups (
        tenant TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (tenant, name))`,
      `CREATE TABLE authority_roles (
        tenant TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (tenant, name))`,
      `CREATE TABLE group_members (
        tenant TEXT NOT NULL, group_name TEXT NOT NULL, member_kind TEXT NOT NULL,
        member TEXT NOT NULL,
        PRIMARY KEY (tenant, group_name, member_kind, member))`,
      `CREATE TABLE role_assignments (
        tenant TEXT NOT NULL, subject_kind TEXT NOT NULL, subject TEXT NOT NULL,
        role TEXT NOT NULL,
        PRIMARY KEY (tenant, subject_kind, subject, role))`,
      `CREATE TABLE grants (
        tenant TEXT NOT NULL, id TEXT NOT NULL, role TEXT NOT NULL, action TEXT NOT NULL,
        environment TEXT NOT NULL, service TEXT NOT NULL,
        PRIMARY KEY (tenant, id))`,
      `CREATE TABLE delegations (
        tenant TEXT NOT NULL, id TEXT NOT NULL, from_user TEXT NOT NULL, to_user TEXT NOT NULL,
        role TEXT, expires_at BIGINT NOT NULL, created_at BIGINT NOT NULL, revoked_at BIGINT,
        PRIMARY KEY (tenant, id))`,
      `CREATE TABLE breakglass (
        tenant TEXT NOT NULL, id TEXT NOT NULL, holder TEXT NOT NULL,
        justification TEXT NOT NULL, scope TEXT NOT NULL, opened_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL, closed_at BIGINT, closed_by TEXT, close_reason TEXT,
        review TEXT, reviewed_at BIGINT, reviewed_by TEXT,
        PRIMARY KEY (tenant, id))`,
      `CREATE TABLE hosts (
        tenant TEXT NOT NULL, name TEXT NOT NULL, version TEXT NOT NULL, policy_hash TEXT,
        health TEXT NOT NULL, anchor TEXT, checkpoint TEXT, first_seen BIGINT NOT NULL,
        last_seen BIGINT NOT NULL,
        PRIMARY KEY (tenant, name))`,
      `CREATE TABLE spans (
        tenant TEXT NOT NULL, trace_id TEXT NOT NULL, span_id TEXT NOT NULL,
        parent_span_id TEXT, host TEXT NOT NULL, service TEXT, name TEXT NOT NULL,
        start_ms BIGINT NOT NULL, duration_ms BIGINT NOT NULL, status INTEGER NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (tenant, trace_id, span_id))`,
      `CREATE INDEX spans_by_time ON spans (tenant, start_ms, span_id)`,
      `CREATE TABLE findings (
        tenant TEXT NOT NULL, id TEXT NOT NULL, host TEXT NOT NULL, fingerprint TEXT NOT NULL,
        category TEXT NOT NULL, severity TEXT NOT NULL, title TEXT NOT NULL, service TEXT,
        status TEXT NOT NULL, hits INTEGER NOT NULL, first_seen BIGINT NOT NULL,
        last_seen BIGINT NOT NULL, data TEXT NOT NULL,
        PRIMARY KEY (tenant, id), UNIQUE (tenant, host, fingerprint))`,
      `CREATE INDEX findings_by_time ON findings (tenant, last_seen, id)`,
      `CREATE TABLE tenant_usage (
        tenant TEXT NOT NULL PRIMARY KEY, spans BIGINT NOT NULL, findings BIGINT NOT NULL)`,
      `CREATE TABLE anchors (
        tenant TEXT NOT NULL, host TEXT NOT NULL, size BIGINT NOT NULL, root TEXT NOT NULL,
        note TEXT NOT NULL, created_at BIGINT NOT NULL,
        PRIMARY KEY (tenant, host, size))`,
      `CREATE TABLE evidence (
        tenant TEXT NOT NULL, seq BIGINT NOT NULL, line TEXT NOT NULL,
        PRIMARY KEY (tenant, seq))`,
      `CREATE TABLE evidence_heads (
        tenant TEXT NOT NULL PRIMARY KEY, size BIGINT NOT NULL, state TEXT NOT NULL)`,
    ],
  },
  {
    version: 2,
    name: "pending evidence",
    statements: [
      // Evidence records written by the transaction of the change they record, before the
      // sequencer gives them their place (seq, prev) in the tenant's chain. `id` grows with
      // every insert: it orders the records of one transaction and, across transactions,
      // follows commit order wherever one commit causally precedes the other's start.
      {
        sqlite: `CREATE TABLE evidence_pending (
          id INTEGER PRIMARY KEY, tenant TEXT NOT NULL, ts BIGINT NOT NULL, type TEXT NOT NULL,
          actor TEXT NOT NULL, data TEXT NOT NULL)`,
        postgres: `CREATE TABLE evidence_pending (
          id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant TEXT NOT NULL,
          ts BIGINT NOT NULL, type TEXT NOT NULL, actor TEXT NOT NULL, data TEXT NOT NULL)`,
      },
      // No index on tenant: the sequencer drains the table continuously (SQLite never writes
      // to it), so it stays small and a scan in id order is cheaper than keeping an index.
    ],
  },
  {
    version: 3,
    name: "host labels and token approvals off by default",
    statements: [
      // The environment and service an agent was enrolled with: requests naming the host must
      // carry the same labels (docs/control.md, "Hosts and their labels").
      `ALTER TABLE identities ADD COLUMN environment TEXT`,
      `ALTER TABLE identities ADD COLUMN service TEXT`,
      `ALTER TABLE enrollment_tokens ADD COLUMN environment TEXT`,
      `ALTER TABLE enrollment_tokens ADD COLUMN service TEXT`,
      // Token approvals became opt-in per environment: the old default (true) was stored in
      // every tenant's settings, so turn it off where it was stored.
      `UPDATE tenants SET settings = REPLACE(settings, '"token_approvals_default":true', '"token_approvals_default":false')`,
    ],
  },
  {
    version: 4,
    name: "nonces keyed by expiry",
    statements: [
      // A replay repeats the whole signed message, its `exp` included, so a nonce need only be
      // unique per (tenant, exp). Keyed that way, each insert lands on the newest page, and
      // purging expired nonces is a range delete on the key: one B-tree instead of three
      // (SQLite: the table, its unique index and the exp index), fewer pages per commit.
      {
        sqlite: `CREATE TABLE nonces_by_exp (
          tenant TEXT NOT NULL, exp BIGINT NOT NULL, nonce TEXT NOT NULL,
          PRIMARY KEY (tenant, exp, nonce)) WITHOUT ROWID`,
        postgres: `CREATE TABLE nonces_by_exp (
          tenant TEXT NOT NULL, exp BIGINT NOT NULL, nonce TEXT NOT NULL,
          PRIMARY KEY (tenant, exp, nonce))`,
      },
      `INSERT INTO nonces_by_exp (tenant, exp, nonce) SELECT tenant, exp, nonce FROM nonces`,
      `DROP TABLE nonces`,
      `ALTER TABLE nonces_by_exp RENAME TO nonces`,
    ],
  },
  {
    version: 5,
    name: "dashboard passkeys",
    statements: [
      // The dashboard's passkeys (WebAuthn credentials of human users), kept in the control
      // store so every instance on one database shares sign-ins. `transports` is a JSON array;
      // `counter` is the authenticator's 32-bit signature counter (BIGINT: it may pass 2^31).
      `CREATE TABLE passkeys (
        tenant TEXT NOT NULL, id TEXT NOT NULL, user_id TEXT NOT NULL, public_key TEXT NOT NULL,
        counter BIGINT NOT NULL, transports TEXT NOT NULL, label TEXT,
        created_at BIGINT NOT NULL, last_used_at BIGINT,
        PRIMARY KEY (tenant, id))`,
      `CREATE INDEX passkeys_user ON passkeys (tenant, user_id, created_at)`,
      // Single-use nonces of passkey ceremonies, forgotten once expired.
      `CREATE TABLE passkey_nonces (
        tenant TEXT NOT NULL, nonce TEXT NOT NULL, exp BIGINT NOT NULL,
        PRIMARY KEY (tenant, nonce))`,
      `CREATE INDEX passkey_nonces_exp ON passkey_nonces (tenant, exp)`,
      // The verified assertion stored as the proof of each passkey vote.
      `CREATE TABLE approval_proofs (
        tenant TEXT NOT NULL, request_id TEXT NOT NULL, user_id TEXT NOT NULL,
        decision TEXT NOT NULL, action_hash TEXT NOT NULL, credential_id TEXT NOT NULL,
        nonce TEXT NOT NULL, challenge TEXT NOT NULL, assertion TEXT NOT NULL,
        created_at BIGINT NOT NULL)`,
      `CREATE INDEX approval_proofs_request ON approval_proofs (tenant, request_id, created_at)`,
    ],
  },
];
