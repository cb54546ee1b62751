/**
 * The one SQL implementation of {@link StoreTx}, shared by the SQLite and PostgreSQL
 * backends. Statements use `?` placeholders and portable SQL only (`ON CONFLICT`, `RETURNING`,
 * partial unique indexes); a backend adapts placeholders and drops `FOR UPDATE` where its
 * transactions are already serialized.
 *
 * Every statement names its tenant: each method takes it first and puts it in the WHERE
 * clause or the inserted row.
 *
 * @module
 */
import type {
  AnchorRow,
  ApprovalProofRow,
  ApprovalTargetRow,
  AuthorityData,
  BreakGlassRow,
  DelegationRow,
  EnrollmentTokenRow,
  FindingFilter,
  FindingRow,
  GrantRow,
  GroupMemberRow,
  HostRow,
  IdentityRow,
  PasskeyRow,
  PendingEvidenceRow,
  PolicyRow,
  RequestCheckResult,
  RequestChecks,
  RequestFilter,
  RequestRow,
  RequestStatus,
  RoleAssignmentRow,
  SignedApprovalRow,
  SpanFilter,
  SpanRow,
  StoreTx,
  TenantRow,
  TenantSettings,
  TokenRow,
  UserRow,
  VoteRow,
} from "./store.ts";
import { DEFAULT_SETTINGS } from "./store.ts";
import { MIGRATIONS } from "./_migrations.ts";
import { LedgerState } from "@infraveil/ledger";

/** A value bound to a placeholder. */
export type SqlValue = string | number | null;
/** A result row. */
export type SqlRow = Record<string, unknown>;

/** The little a backend provides: run a statement inside the current transaction. */
export interface SqlConn {
  /** Which SQL dialect the connection speaks (for the few dialect-specific migrations). */
  readonly dialect: "sqlite" | "postgres";
  /** Runs a statement and returns its rows. */
  all(sql: string, params?: readonly SqlValue[]): Promise<SqlRow[]>;
  /** Runs a statement and returns the number of changed rows. */
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
  /**
   * Sends COMMIT behind the statements already sent, without waiting for them (PostgreSQL
   * only). The server rolls back instead when one of them failed: false then.
   */
  commit?(): Promise<boolean>;
}

/** Thrown by a statement sent with an early COMMIT that hit a unique constraint: rerun. */
export class EarlyCommitConflict extends Error {
  /** @param cause the database error */
  constructor(cause: unknown) {
    super("A statement sent with COMMIT conflicted; the transaction was rolled back", { cause });
    this.name = "EarlyCommitConflict";
  }
}

const num = (v: unknown): number => Number(v);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
const json = (
  v: unknown,
): unknown => (v === null || v === undefined ? null : JSON.parse(String(v)));
const text = (v: unknown): string => JSON.stringify(v ?? null);

function passkeyRow(r: SqlRow): PasskeyRow {
  return {
    id: String(r.id),
    userId: String(r.user_id),
    publicKey: String(r.public_key),
    counter: num(r.counter),
    transports: JSON.parse(String(r.transports)) as string[],
    label: strOrNull(r.label),
    createdAt: num(r.created_at),
    lastUsedAt: numOrNull(r.last_used_at),
  };
}

function tenantAndKey(r: SqlRow): { tenant: TenantRow; identity: IdentityRow | null } {
  return {
    tenant: tenantRow({
      name: r.t_name,
      created_at: r.t_created_at,
      active_policy_hash: r.t_active_policy_hash,
      settings: r.t_settings,
    }),
    identity: r.kid === null || r.kid === undefined ? null : identityRow(r),
  };
}

function tenantRow(r: SqlRow): TenantRow {
  return {
    name: String(r.name),
    createdAt: num(r.created_at),
    activePolicyHash: strOrNull(r.active_policy_hash),
    settings: { ...DEFAULT_SETTINGS, ...(json(r.settings) as Partial<TenantSettings>) },
  };
}

function userRow(r: SqlRow): UserRow {
  return {
    id: String(r.id),
    email: String(r.email),
    displayName: strOrNull(r.display_name),
    status: r.status as UserRow["status"],
    createdAt: num(r.created_at),
  };
}

function tokenRow(r: SqlRow): TokenRow {
  return {
    id: String(r.id),
    userId: String(r.user_id),
    kind: r.kind as TokenRow["kind"],
    hash: String(r.hash),
    label: strOrNull(r.label),
    createdAt: num(r.created_at),
    expiresAt: numOrNull(r.expires_at),
    usedAt: numOrNull(r.used_at),
    revokedAt: numOrNull(r.revoked_at),
  };
}

function identityRow(r: SqlRow): IdentityRow {
  return {
    name: String(r.name),
    kind: r.kind as IdentityRow["kind"],
    kid: String(r.kid),
    publicKey: String(r.public_key),
    operator: strOrNull(r.operator),
    environment: strOrNull(r.environment),
    service: strOrNull(r.service),
    status: r.status as IdentityRow["status"],
    createdAt: num(r.created_at),
    revokedAt: numOrNull(r.revoked_at),
  };
}

function enrollmentRow(r: SqlRow): EnrollmentTokenRow {
  return {
    id: String(r.id),
    hash: String(r.hash),
    name: String(r.name),
    kind: r.kind as EnrollmentTokenRow["kind"],
    operator: strOrNull(r.operator),
    environment: strOrNull(r.environment),
    service: strOrNull(r.service),
    createdBy: String(r.created_by),
    createdAt: num(r.created_at),
    expiresAt: num(r.expires_at),
    usedAt: numOrNull(r.used_at),
  };
}

function policyRow(r: SqlRow): PolicyRow {
  return {
    hash: String(r.hash),
    text: r.text === undefined ? "" : String(r.text),
    status: r.status as PolicyRow["status"],
    createdAt: num(r.created_at),
    createdBy: String(r.created_by),
    activatedAt: numOrNull(r.activated_at),
  };
}

function requestRow(r: SqlRow): RequestRow {
  return {
    id: String(r.id),
    kind: r.kind as RequestRow["kind"],
    action: json(r.action) as Record<string, unknown>,
    actionHash: String(r.action_hash),
    requester: String(r.requester),
    requesterKind: r.requester_kind as RequestRow["requesterKind"],
    operator: strOrNull(r.operator),
    environment: strOrNull(r.environment),
    service: strOrNull(r.service),
    targets: json(r.targets) as string[],
    status: r.status as RequestStatus,
    decision: json(r.decision) as Record<string, unknown>,
    approvalsRequired: num(r.approvals_required),
    policyHash: strOrNull(r.policy_hash),
    breakGlass: strOrNull(r.break_glass),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
    expiresAt: num(r.expires_at),
  };
}

function voteRow(r: SqlRow): VoteRow {
  return {
    requestId: String(r.request_id),
    userId: String(r.user_id),
    decision: r.decision as VoteRow["decision"],
    method: String(r.method),
    comment: strOrNull(r.comment),
    createdAt: num(r.created_at),
    expiresAt: num(r.expires_at),
  };
}

function signedApprovalRow(r: SqlRow): SignedApprovalRow {
  return {
    id: String(r.id),
    requestId: String(r.request_id),
    envelope: String(r.envelope),
    actionHash: String(r.action_hash),
    expiresAt: num(r.expires_at),
    createdAt: num(r.created_at),
  };
}

function targetRow(r: SqlRow): ApprovalTargetRow {
  return {
    approvalId: String(r.approval_id),
    host: String(r.host),
    usedAt: numOrNull(r.used_at),
    usedBy: strOrNull(r.used_by),
    resultStatus: (r.result_status ?? null) as ApprovalTargetRow["resultStatus"],
    result: json(r.result),
    reportedAt: numOrNull(r.reported_at),
  };
}

function breakGlassRow(r: SqlRow): BreakGlassRow {
  return {
    id: String(r.id),
    holder: String(r.holder),
    justification: String(r.justification),
    scope: json(r.scope) as BreakGlassRow["scope"],
    openedAt: num(r.opened_at),
    expiresAt: num(r.expires_at),
    closedAt: numOrNull(r.closed_at),
    closedBy: strOrNull(r.closed_by),
    closeReason: strOrNull(r.close_reason),
    review: strOrNull(r.review),
    reviewedAt: numOrNull(r.reviewed_at),
    reviewedBy: strOrNull(r.reviewed_by),
  };
}

function hostRow(r: SqlRow): HostRow {
  return {
    name: String(r.name),
    version: String(r.version),
    policyHash: strOrNull(r.policy_hash),
    health: json(r.health),
    anchor: strOrNull(r.anchor),
    checkpoint: strOrNull(r.checkpoint),
    firstSeen: num(r.first_seen),
    lastSeen: num(r.last_seen),
  };
}

function spanRow(r: SqlRow): SpanRow {
  return {
    traceId: String(r.trace_id),
    spanId: String(r.span_id),
    parentSpanId: strOrNull(r.parent_span_id),
    host: String(r.host),
    service: strOrNull(r.service),
    name: String(r.name),
    startMs: num(r.start_ms),
    durationMs: num(r.duration_ms),
    status: num(r.status),
    data: json(r.data),
  };
}

function findingRow(r: SqlRow): FindingRow {
  return {
    id: String(r.id),
    host: String(r.host),
    fingerprint: String(r.fingerprint),
    category: String(r.category),
    severity: r.severity as FindingRow["severity"],
    title: String(r.title),
    service: strOrNull(r.service),
    status: r.status as FindingRow["status"],
    count: num(r.hits),
    firstSeen: num(r.first_seen),
    lastSeen: num(r.last_seen),
    data: json(r.data),
  };
}

function page(
  where: string[],
  params: SqlValue[],
  before: [number, string] | undefined,
  timeCol: string,
  idCol: string,
): void {
  if (before) {
    where.push(`(${timeCol} < ? OR (${timeCol} = ? AND ${idCol} < ?))`);
    params.push(before[0], before[0], before[1]);
  }
}

/** Rows a rate-limit bucket is spread over when the store shards them. */
export const RATE_SHARDS = 16;

const HIT_RATE_LIMIT = `INSERT INTO rate_limits (tenant, bucket, window_start, hits)
   VALUES (?, ?, ?, 1)
   ON CONFLICT (tenant, bucket) DO UPDATE SET
     hits = CASE WHEN rate_limits.window_start = excluded.window_start
                 THEN rate_limits.hits + 1 ELSE 1 END,
     window_start = excluded.window_start`;

const INSERT_REQUEST = `INSERT INTO requests (tenant, id, kind, action, action_hash, requester,
     requester_kind, operator, environment, service, targets, status, decision,
     approvals_required, policy_hash, break_glass, created_at, updated_at, expires_at)
   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
   ON CONFLICT DO NOTHING`;

const INSERT_REQUEST_WITH_EVIDENCE = `WITH r AS (${INSERT_REQUEST} RETURNING id)
   INSERT INTO evidence_pending (tenant, ts, type, actor, data)
   SELECT ?, ?, ?, ?, ? FROM r RETURNING id`;

// The decision's evidence built by the server from the row just inserted (PostgreSQL): the
// record's data is the row's own fields, so they travel once. postgres.js sends a statement
// of 1 KiB or more on its own; kept under, the insert shares its write with the COMMIT.
const INSERT_REQUEST_WITH_DECISION = `WITH r AS (${INSERT_REQUEST}
     RETURNING id, status, action, action_hash, policy_hash, approvals_required, decision,
       break_glass, operator)
   INSERT INTO evidence_pending (tenant, ts, type, actor, data)
   SELECT ?, ?, ?, ?, json_build_object('request_id', r.id, 'status', r.status,
       'action', CAST(r.action AS json), 'action_hash', r.action_hash,
       'policy_hash', r.policy_hash, 'approvals_needed', r.approvals_required,
       'reasons', CAST(r.decision AS json) -> 'reasons', 'break_glass', r.break_glass,
       'operator', r.operator)::text
   FROM r RETURNING id`;

const strict = (sql: string): string => sql.replace(" ON CONFLICT DO NOTHING", "");

/**
 * The data of a request's `request.decision` evidence, as the server builds it from the row
 * ({@link INSERT_REQUEST_WITH_DECISION}): the record is sent without its data only when its
 * data is exactly this.
 */
function decisionData(row: RequestRow): string {
  return JSON.stringify({
    request_id: row.id,
    status: row.status,
    action: row.action,
    action_hash: row.actionHash,
    policy_hash: row.policyHash,
    approvals_needed: row.approvalsRequired,
    reasons: row.decision.reasons,
    break_glass: row.breakGlass,
    operator: row.operator,
  });
}

function requestParams(tenant: string, row: RequestRow): SqlValue[] {
  return [
    tenant,
    row.id,
    row.kind,
    JSON.stringify(row.action),
    row.actionHash,
    row.requester,
    row.requesterKind,
    row.operator,
    row.environment,
    row.service,
    JSON.stringify(row.targets),
    row.status,
    JSON.stringify(row.decision),
    row.approvalsRequired,
    row.policyHash,
    row.breakGlass,
    row.createdAt,
    row.updatedAt,
    row.expiresAt,
  ];
}

/** The SQL implementation of a transaction. */
export class SqlTx implements StoreTx {
  readonly #c: SqlConn;
  /** Tenants this transaction recorded pending evidence for (the store chains them). */
  readonly pendingEvidence: Set<string> = new Set();
  /** Pending records held in memory until the store chains them before COMMIT. */
  readonly #held: (PendingEvidenceRow & { tenant: string })[] = [];
  readonly #hold: boolean;
  #nextHeld = -1;
  /** Parsed log states (only when this object is reused across transactions). */
  readonly evidenceStates?: Map<string, { text: string; state: LedgerState }>;

  readonly #rateShard: (() => number) | null;

  /**
   * @param conn the connection, inside a transaction
   * @param options `holdEvidence`: keep pending evidence in memory (negative ids) for the store
   *   to chain before it commits, instead of writing it to `evidence_pending` (SQLite: one
   *   writer, so the transaction itself is the sequencer). `rateShard`: spread each rate-limit
   *   bucket over {@link RATE_SHARDS} rows, this function picking the row a hit goes to
   *   (PostgreSQL: concurrent transactions of one identity then rarely wait for each other's
   *   commit on one hot row)
   */
  constructor(
    conn: SqlConn,
    options: { holdEvidence?: boolean; rateShard?: () => number } = {},
  ) {
    this.#c = conn;
    this.#hold = options.holdEvidence ?? false;
    this.#rateShard = options.rateShard ?? null;
    if (this.#hold) this.evidenceStates = new Map();
  }

  /** Forgets the pending evidence of a transaction that ended (for a reused instance). */
  reset(): void {
    this.pendingEvidence.clear();
    this.#held.length = 0;
    this.commitReady = null;
  }

  /** See {@link StoreTx.commitReady}. */
  commitReady: Promise<boolean> | null = null;
  /** The COMMIT sent early with a transaction's last statement (true: committed), if it was. */
  committing: Promise<boolean> | null = null;

  #depth = 0;
  async nested<T>(fn: () => Promise<T>): Promise<T> {
    // One name per depth keeps the statement caches small. The SAVEPOINT is not awaited
    // before `fn` starts: on PostgreSQL it shares a round trip with fn's first statements.
    const name = `sp_${++this.#depth}`;
    const held = [...this.#held]; // held evidence is undone with the rest
    const opened = this.#c.run(`SAVEPOINT ${name}`);
    opened.catch(() => {}); // awaited below
    try {
      const out = await fn();
      await opened;
      return out;
    } catch (e) {
      await opened;
      if (this.committing) throw e; // the transaction already ended (rolled back on error)
      await this.#c.run(`ROLLBACK TO SAVEPOINT ${name}`);
      this.#held.splice(0, this.#held.length, ...held);
      throw e;
    } finally {
      this.#depth--;
    }
  }

  /**
   * Runs one of several transactions sharing a commit (SQLite group commit) under its own
   * savepoint: released when `fn` returns; rolled back, with the evidence it held, when `fn`
   * throws, and the error returned rather than thrown.
   *
   * @param fn the transaction's body
   * @returns its value, or the error it threw
   * @throws only when the savepoint itself cannot be rolled back or released (the shared
   *   transaction must then be abandoned)
   */
  async isolated<T>(
    fn: () => Promise<T>,
  ): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
    const held = [...this.#held];
    const tenants = [...this.pendingEvidence];
    this.commitReady = null;
    await this.#c.run("SAVEPOINT grp");
    let out: { ok: true; value: T } | { ok: false; error: unknown };
    try {
      out = { ok: true, value: await fn() };
    } catch (error) {
      await this.#c.run("ROLLBACK TO SAVEPOINT grp");
      this.#held.splice(0, this.#held.length, ...held);
      this.pendingEvidence.clear();
      for (const t of tenants) this.pendingEvidence.add(t);
      out = { ok: false, error };
    }
    await this.#c.run("RELEASE SAVEPOINT grp");
    return out;
  }

  async #one(sql: string, params: SqlValue[]): Promise<SqlRow | null> {
    const rows = await this.#c.all(sql, params);
    return rows[0] ?? null;
  }

  // Tenants ---------------------------------------------------------------------------------
  async getTenant(name: string): Promise<TenantRow | null> {
    const r = await this.#one("SELECT * FROM tenants WHERE name = ?", [name]);
    return r ? tenantRow(r) : null;
  }
  async createTenant(tenant: string, row: Omit<TenantRow, "name">): Promise<boolean> {
    const n = await this.#c.run(
      "INSERT INTO tenants (name, created_at, active_policy_hash, settings) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
      [tenant, row.createdAt, row.activePolicyHash, JSON.stringify(row.settings)],
    );
    if (n === 0) return false;
    await this.#c.run("INSERT INTO tenant_usage (tenant, spans, findings) VALUES (?, 0, 0)", [
      tenant,
    ]);
    await this.#c.run("INSERT INTO evidence_heads (tenant, size, state) VALUES (?, 0, ?)", [
      tenant,
      JSON.stringify(LedgerState.empty().toJSON()),
    ]);
    return true;
  }
  async setTenantSettings(tenant: string, settings: TenantSettings): Promise<void> {
    await this.#c.run("UPDATE tenants SET settings = ? WHERE name = ?", [
      JSON.stringify(settings),
      tenant,
    ]);
  }
  async setActivePolicy(tenant: string, hash: string): Promise<void> {
    await this.#c.run("UPDATE tenants SET active_policy_hash = ? WHERE name = ?", [hash, tenant]);
  }

  // Users and tokens ------------------------------------------------------------------------
  async insertUser(tenant: string, row: UserRow): Promise<boolean> {
    const n = await this.#c.run(
      "INSERT INTO users (tenant, id, email, display_name, status, created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
      [tenant, row.id, row.email, row.displayName, row.status, row.createdAt],
    );
    return n > 0;
  }
  async getUser(tenant: string, id: string): Promise<UserRow | null> {
    const r = await this.#one("SELECT * FROM users WHERE tenant = ? AND id = ?", [tenant, id]);
    return r ? userRow(r) : null;
  }
  async getUserByEmail(tenant: string, email: string): Promise<UserRow | null> {
    const r = await this.#one("SELECT * FROM users WHERE tenant = ? AND email = ?", [
      tenant,
      email,
    ]);
    return r ? userRow(r) : null;
  }
  async setUserStatus(tenant: string, id: string, status: UserRow["status"]): Promise<void> {
    await this.#c.run("UPDATE users SET status = ? WHERE tenant = ? AND id = ?", [
      status,
      tenant,
      id,
    ]);
  }
  async insertToken(tenant: string, row: TokenRow): Promise<void> {
    await this.#c.run(
      "INSERT INTO tokens (tenant, id, user_id, kind, hash, label, created_at, expires_at, used_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      [
        tenant,
        row.id,
        row.userId,
        row.kind,
        row.hash,
        row.label,
        row.createdAt,
        row.expiresAt,
        row.usedAt,
        row.revokedAt,
      ],
    );
  }
  async getToken(tenant: string, id: string): Promise<TokenRow | null> {
    const r = await this.#one("SELECT * FROM tokens WHERE tenant = ? AND id = ?", [tenant, id]);
    return r ? tokenRow(r) : null;
  }
  async useToken(tenant: string, id: string, now: number): Promise<boolean> {
    const rows = await this.#c.all(
      "UPDATE tokens SET used_at = ? WHERE tenant = ? AND id = ? AND used_at IS NULL RETURNING id",
      [now, tenant, id],
    );
    return rows.length === 1;
  }
  async revokeToken(tenant: string, id: string, now: number): Promise<void> {
    await this.#c.run(
      "UPDATE tokens SET revoked_at = ? WHERE tenant = ? AND id = ? AND revoked_at IS NULL",
      [now, tenant, id],
    );
  }

  // Identities ------------------------------------------------------------------------------
  async insertIdentity(tenant: string, row: IdentityRow): Promise<boolean> {
    const n = await this.#c.run(
      "INSERT INTO identities (tenant, kid, name, kind, public_key, operator, environment, service, status, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
      [
        tenant,
        row.kid,
        row.name,
        row.kind,
        row.publicKey,
        row.operator,
        row.environment,
        row.service,
        row.status,
        row.createdAt,
        row.revokedAt,
      ],
    );
    return n > 0;
  }
  async getIdentityByKid(tenant: string, kid: string): Promise<IdentityRow | null> {
    const r = await this.#one("SELECT * FROM identities WHERE tenant = ? AND kid = ?", [
      tenant,
      kid,
    ]);
    return r ? identityRow(r) : null;
  }
  async getTenantAndKey(
    tenant: string,
    kid: string,
  ): Promise<{ tenant: TenantRow; identity: IdentityRow | null } | null> {
    const r = await this.#one(
      `SELECT i.*, t.name AS t_name, t.created_at AS t_created_at,
         t.active_policy_hash AS t_active_policy_hash, t.settings AS t_settings
       FROM tenants t LEFT JOIN identities i ON i.tenant = t.name AND i.kid = ?
       WHERE t.name = ?`,
      [kid, tenant],
    );
    return r ? tenantAndKey(r) : null;
  }
  async useNonceWithKey(
    tenant: string,
    kid: string,
    nonce: string,
    exp: number,
  ): Promise<
    { found: { tenant: TenantRow; identity: IdentityRow | null } | null; fresh: boolean }
  > {
    if (this.#c.dialect !== "postgres") {
      const [found, fresh] = await Promise.all([
        this.getTenantAndKey(tenant, kid),
        this.insertNonce(tenant, nonce, exp),
      ]);
      return { found, fresh };
    }
    const r = (await this.#c.all(
      `WITH n AS (INSERT INTO nonces (tenant, nonce, exp) VALUES (?, ?, ?)
         ON CONFLICT DO NOTHING RETURNING 1)
       SELECT (SELECT COUNT(*) FROM n) AS fresh, i.*, t.name AS t_name,
         t.created_at AS t_created_at, t.active_policy_hash AS t_active_policy_hash,
         t.settings AS t_settings
       FROM (SELECT 1) AS one LEFT JOIN tenants t ON t.name = ?
         LEFT JOIN identities i ON i.tenant = t.name AND i.kid = ?`,
      [tenant, nonce, exp, tenant, kid],
    ))[0];
    return {
      found: r.t_name === null || r.t_name === undefined ? null : tenantAndKey(r),
      fresh: num(r.fresh) === 1,
    };
  }
  async getActiveIdentity(tenant: string, name: string): Promise<IdentityRow | null> {
    const r = await this.#one(
      "SELECT * FROM identities WHERE tenant = ? AND name = ? AND status = 'active'",
      [tenant, name],
    );
    return r ? identityRow(r) : null;
  }
  async listIdentities(tenant: string): Promise<IdentityRow[]> {
    const rows = await this.#c.all(
      "SELECT * FROM identities WHERE tenant = ? ORDER BY name, created_at",
      [tenant],
    );
    return rows.map(identityRow);
  }
  async deactivateIdentity(
    tenant: string,
    kid: string,
    status: "revoked" | "rotated",
    now: number,
  ): Promise<boolean> {
    const n = await this.#c.run(
      "UPDATE identities SET status = ?, revoked_at = ? WHERE tenant = ? AND kid = ? AND status = 'active'",
      [status, now, tenant, kid],
    );
    return n > 0;
  }
  async insertEnrollmentToken(tenant: string, row: EnrollmentTokenRow): Promise<void> {
    await this.#c.run(
      "INSERT INTO enrollment_tokens (tenant, id, hash, name, kind, operator, environment, service, created_by, created_at, expires_at, used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      [
        tenant,
        row.id,
        row.hash,
        row.name,
        row.kind,
        row.operator,
        row.environment,
        row.service,
        row.createdBy,
        row.createdAt,
        row.expiresAt,
        row.usedAt,
      ],
    );
  }
  async claimEnrollmentToken(
    tenant: string,
    id: string,
    now: number,
  ): Promise<EnrollmentTokenRow | null> {
    const rows = await this.#c.all(
      "UPDATE enrollment_tokens SET used_at = ? WHERE tenant = ? AND id = ? AND used_at IS NULL AND expires_at > ? RETURNING *",
      [now, tenant, id, now],
    );
    return rows[0] ? enrollmentRow(rows[0]) : null;
  }

  // Replay protection and rate limits -------------------------------------------------------
  async insertNonce(tenant: string, nonce: string, exp: number): Promise<boolean> {
    const rows = await this.#c.all(
      "INSERT INTO nonces (tenant, nonce, exp) VALUES (?, ?, ?) ON CONFLICT DO NOTHING RETURNING nonce",
      [tenant, nonce, exp],
    );
    return rows.length === 1;
  }
  purgeNonces(tenant: string, before: number): Promise<number> {
    return this.#c.run("DELETE FROM nonces WHERE tenant = ? AND exp < ?", [tenant, before]);
  }
  async hitRateLimit(tenant: string, bucket: string, windowStart: number): Promise<number> {
    if (!this.#rateShard) {
      const rows = await this.#c.all(`${HIT_RATE_LIMIT} RETURNING hits`, [
        tenant,
        bucket,
        windowStart,
      ]);
      return num(rows[0].hits);
    }
    // Sharded (PostgreSQL): the hit locks one of the bucket's rows until commit; the count is
    // that row's new value plus this window's committed hits on the others, in one statement.
    // It can miss hits of transactions still in flight, so a burst may overshoot the limit by
    // at most the number of requests in flight at once.
    const mine = `${bucket}#${this.#rateShard() % RATE_SHARDS}`;
    const out = await this.#c.all(
      `WITH h AS (${HIT_RATE_LIMIT} RETURNING hits)
       SELECT (SELECT hits FROM h) + COALESCE((SELECT SUM(hits) FROM rate_limits
         WHERE tenant = ? AND window_start = ? AND bucket <> ? AND bucket = ANY(ARRAY(
           SELECT ? || '#' || g FROM generate_series(0, ${RATE_SHARDS - 1}) AS g))), 0) AS hits`,
      [tenant, mine, windowStart, tenant, windowStart, mine, bucket],
    );
    return num(out[0].hits);
  }

  // Policies --------------------------------------------------------------------------------
  async insertPolicy(tenant: string, row: PolicyRow): Promise<boolean> {
    const n = await this.#c.run(
      "INSERT INTO policies (tenant, hash, text, status, created_at, created_by, activated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
      [tenant, row.hash, row.text, row.status, row.createdAt, row.createdBy, row.activatedAt],
    );
    return n > 0;
  }
  async getPolicy(tenant: string, hash: string): Promise<PolicyRow | null> {
    const r = await this.#one("SELECT * FROM policies WHERE tenant = ? AND hash = ?", [
      tenant,
      hash,
    ]);
    return r ? policyRow(r) : null;
  }
  async listPolicies(tenant: string): Promise<Omit<PolicyRow, "text">[]> {
    const rows = await this.#c.all(
      "SELECT hash, status, created_at, created_by, activated_at FROM policies WHERE tenant = ? ORDER BY created_at DESC, hash",
      [tenant],
    );
    return rows.map((r) => {
      const { text: _t, ...rest } = policyRow(r);
      return rest;
    });
  }
  async setPolicyStatus(
    tenant: string,
    hash: string,
    status: PolicyRow["status"],
    activatedAt?: number,
  ): Promise<void> {
    await this.#c.run(
      "UPDATE policies SET status = ?, activated_at = COALESCE(?, activated_at) WHERE tenant = ? AND hash = ?",
      [status, activatedAt ?? null, tenant, hash],
    );
  }

  // Requests and approvals ------------------------------------------------------------------
  async insertRequest(tenant: string, row: RequestRow): Promise<boolean> {
    const rows = await this.#c.all(`${INSERT_REQUEST} RETURNING id`, requestParams(tenant, row));
    return rows.length === 1;
  }
  async requestChecks(tenant: string, q: RequestChecks): Promise<RequestCheckResult> {
    if (this.#c.dialect !== "postgres" || !this.#rateShard) {
      const [hits, pending, breakGlass, hosts] = await Promise.all([
        this.hitRateLimit(tenant, q.bucket, q.windowStart),
        this.getPendingRequest(tenant, q.actionHash),
        q.breakGlass ? this.activeBreakGlass(tenant, q.now) : Promise.resolve([]),
        Promise.all(q.targets.map((h) => this.getActiveIdentity(tenant, h))),
      ]);
      return { hits, pending, breakGlass, hosts };
    }
    // The same four, as one statement: the sharded rate-limit hit (see hitRateLimit) and the
    // reads as JSON, each in the shape of its table's rows.
    const mine = `${q.bucket}#${this.#rateShard() % RATE_SHARDS}`;
    const r = (await this.#c.all(
      `WITH h AS (${HIT_RATE_LIMIT} RETURNING hits)
       SELECT (SELECT hits FROM h) + COALESCE((SELECT SUM(hits) FROM rate_limits
           WHERE tenant = ? AND window_start = ? AND bucket <> ? AND bucket = ANY(ARRAY(
             SELECT ? || '#' || g FROM generate_series(0, ${RATE_SHARDS - 1}) AS g))), 0) AS hits,
         (SELECT CAST(row_to_json(r) AS text) FROM requests r
           WHERE r.tenant = ? AND r.action_hash = ? AND r.status = 'pending') AS pending,
         CASE WHEN CAST(? AS integer) = 1 THEN (SELECT CAST(COALESCE(
             json_agg(b ORDER BY b.opened_at, b.id), '[]') AS text) FROM breakglass b
           WHERE b.tenant = ? AND b.closed_at IS NULL AND b.expires_at > ?) END AS breakglass,
         (SELECT CAST(COALESCE(json_agg(i), '[]') AS text) FROM identities i
           WHERE i.tenant = ? AND i.status = 'active'
             AND i.name = ANY(ARRAY(
               SELECT json_array_elements_text(CAST(CAST(? AS text) AS json))))) AS hosts`,
      [
        tenant,
        mine,
        q.windowStart,
        tenant,
        q.windowStart,
        mine,
        q.bucket,
        tenant,
        q.actionHash,
        q.breakGlass ? 1 : 0,
        tenant,
        q.now,
        tenant,
        JSON.stringify(q.targets),
      ],
    ))[0];
    const byName = new Map<string, IdentityRow>();
    for (const row of JSON.parse(String(r.hosts)) as SqlRow[]) {
      const identity = identityRow(row);
      byName.set(identity.name, identity);
    }
    return {
      hits: num(r.hits),
      pending: r.pending === null ? null : requestRow(JSON.parse(String(r.pending))),
      breakGlass: r.breakglass === null
        ? []
        : (JSON.parse(String(r.breakglass)) as SqlRow[]).map(breakGlassRow),
      hosts: q.targets.map((h) => byName.get(h) ?? null),
    };
  }
  async insertRequestWithEvidence(
    tenant: string,
    row: RequestRow,
    evidence: Omit<PendingEvidenceRow, "id">,
    options: { last?: boolean } = {},
  ): Promise<boolean> {
    if (this.#hold || this.#c.dialect !== "postgres") {
      if (!(await this.insertRequest(tenant, row))) return false;
      await this.insertPendingEvidence(tenant, evidence);
      return true;
    }
    this.pendingEvidence.add(tenant);
    const derived = evidence.type === "request.decision" && evidence.data === decisionData(row);
    const sql = derived ? INSERT_REQUEST_WITH_DECISION : INSERT_REQUEST_WITH_EVIDENCE;
    const params = [
      ...requestParams(tenant, row),
      tenant,
      evidence.ts,
      evidence.type,
      evidence.actor,
    ];
    if (!derived) params.push(evidence.data);
    if (
      options.last && this.#c.commit && !this.committing && this.commitReady &&
      await this.commitReady
    ) {
      // Sent with the COMMIT: an identical pending request (a fold race) must then fail the
      // statement, which rolls the transaction back, rather than be skipped.
      const inserted = this.#c.all(strict(sql), params);
      inserted.catch(() => {}); // awaited below
      this.committing = this.#c.commit();
      this.committing.catch(() => {}); // awaited by the store
      let rows: SqlRow[];
      try {
        rows = await inserted;
      } catch (e) {
        throw (e as { code?: string })?.code === "23505" ? new EarlyCommitConflict(e) : e;
      }
      if (rows.length !== 1) throw new Error("The request sent with COMMIT was not inserted");
      return true;
    }
    const rows = await this.#c.all(sql, params);
    return rows.length === 1;
  }
  async getRequest(tenant: string, id: string, lock = false): Promise<RequestRow | null> {
    const r = await this.#one(
      `SELECT * FROM requests WHERE tenant = ? AND id = ?${lock ? " FOR UPDATE" : ""}`,
      [tenant, id],
    );
    return r ? requestRow(r) : null;
  }
  async getPendingRequest(tenant: string, actionHash: string): Promise<RequestRow | null> {
    const r = await this.#one(
      "SELECT * FROM requests WHERE tenant = ? AND action_hash = ? AND status = 'pending'",
      [tenant, actionHash],
    );
    return r ? requestRow(r) : null;
  }
  async listRequests(tenant: string, filter: RequestFilter): Promise<RequestRow[]> {
    const where = ["tenant = ?"];
    const params: SqlValue[] = [tenant];
    if (filter.status) {
      where.push("status = ?");
      params.push(filter.status);
    }
    if (filter.requester) {
      where.push("requester = ?");
      params.push(filter.requester);
    }
    page(where, params, filter.before, "created_at", "id");
    params.push(filter.limit);
    const rows = await this.#c.all(
      `SELECT * FROM requests WHERE ${
        where.join(" AND ")
      } ORDER BY created_at DESC, id DESC LIMIT ?`,
      params,
    );
    return rows.map(requestRow);
  }
  async setRequestStatus(
    tenant: string,
    id: string,
    status: RequestStatus,
    now: number,
  ): Promise<void> {
    await this.#c.run(
      "UPDATE requests SET status = ?, updated_at = ? WHERE tenant = ? AND id = ?",
      [
        status,
        now,
        tenant,
        id,
      ],
    );
  }
  async insertVote(tenant: string, row: VoteRow): Promise<boolean> {
    const n = await this.#c.run(
      "INSERT INTO votes (tenant, request_id, user_id, decision, method, comment, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
      [
        tenant,
        row.requestId,
        row.userId,
        row.decision,
        row.method,
        row.comment,
        row.createdAt,
        row.expiresAt,
      ],
    );
    return n > 0;
  }
  async listVotes(tenant: string, requestId: string): Promise<VoteRow[]> {
    const rows = await this.#c.all(
      "SELECT * FROM votes WHERE tenant = ? AND request_id = ? ORDER BY created_at, user_id",
      [tenant, requestId],
    );
    return rows.map(voteRow);
  }
  async insertSignedApproval(
    tenant: string,
    row: SignedApprovalRow,
    hosts: string[],
  ): Promise<void> {
    await this.#c.run(
      "INSERT INTO signed_approvals (tenant, id, request_id, envelope, action_hash, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
      [tenant, row.id, row.requestId, row.envelope, row.actionHash, row.expiresAt, row.createdAt],
    );
    for (const host of hosts) {
      await this.#c.run(
        "INSERT INTO approval_targets (tenant, approval_id, host, expires_at) VALUES (?, ?, ?, ?)",
        [tenant, row.id, host, row.expiresAt],
      );
    }
  }
  async getSignedApprovalByRequest(
    tenant: string,
    requestId: string,
  ): Promise<SignedApprovalRow | null> {
    const r = await this.#one(
      "SELECT * FROM signed_approvals WHERE tenant = ? AND request_id = ?",
      [
        tenant,
        requestId,
      ],
    );
    return r ? signedApprovalRow(r) : null;
  }
  async getSignedApproval(tenant: string, id: string): Promise<SignedApprovalRow | null> {
    const r = await this.#one("SELECT * FROM signed_approvals WHERE tenant = ? AND id = ?", [
      tenant,
      id,
    ]);
    return r ? signedApprovalRow(r) : null;
  }
  async listClaimableApprovals(
    tenant: string,
    host: string,
    now: number,
  ): Promise<SignedApprovalRow[]> {
    const rows = await this.#c.all(
      `SELECT s.* FROM approval_targets t
         JOIN signed_approvals s ON s.tenant = t.tenant AND s.id = t.approval_id
       WHERE t.tenant = ? AND t.host = ? AND t.used_at IS NULL AND t.expires_at > ?
       ORDER BY s.created_at, s.id LIMIT 100`,
      [tenant, host, now],
    );
    return rows.map(signedApprovalRow);
  }
  async claimApprovalTarget(
    tenant: string,
    approvalId: string,
    host: string,
    now: number,
    by: string,
  ): Promise<boolean> {
    const rows = await this.#c.all(
      `UPDATE approval_targets SET used_at = ?, used_by = ?
       WHERE tenant = ? AND approval_id = ? AND host = ? AND used_at IS NULL AND expires_at > ?
       RETURNING approval_id`,
      [now, by, tenant, approvalId, host, now],
    );
    return rows.length === 1;
  }
  async listApprovalTargets(tenant: string, approvalId: string): Promise<ApprovalTargetRow[]> {
    const rows = await this.#c.all(
      "SELECT * FROM approval_targets WHERE tenant = ? AND approval_id = ? ORDER BY host",
      [tenant, approvalId],
    );
    return rows.map(targetRow);
  }
  async reportApprovalTarget(
    tenant: string,
    approvalId: string,
    host: string,
    status: "succeeded" | "failed",
    result: unknown,
    now: number,
  ): Promise<boolean> {
    const rows = await this.#c.all(
      `UPDATE approval_targets SET result_status = ?, result = ?, reported_at = ?
       WHERE tenant = ? AND approval_id = ? AND host = ? AND used_at IS NOT NULL
         AND reported_at IS NULL
       RETURNING approval_id`,
      [status, text(result), now, tenant, approvalId, host],
    );
    return rows.length === 1;
  }

  // Authority graph -------------------------------------------------------------------------
  async loadAuthority(tenant: string): Promise<AuthorityData> {
    const c = this.#c;
    const [users, groups, roles, members, assignments, grants, delegations] = [
      await c.all("SELECT * FROM users WHERE tenant = ? ORDER BY id", [tenant]),
      await c.all("SELECT name FROM authority_groups WHERE tenant = ? ORDER BY name", [tenant]),
      await c.all("SELECT name FROM authority_roles WHERE tenant = ? ORDER BY name", [tenant]),
      await c.all(
        "SELECT * FROM group_members WHERE tenant = ? ORDER BY group_name, member_kind, member",
        [tenant],
      ),
      await c.all(
        "SELECT * FROM role_assignments WHERE tenant = ? ORDER BY subject_kind, subject, role",
        [tenant],
      ),
      await c.all("SELECT * FROM grants WHERE tenant = ? ORDER BY id", [tenant]),
      await c.all("SELECT * FROM delegations WHERE tenant = ? ORDER BY id", [tenant]),
    ];
    return {
      users: users.map(userRow),
      groups: groups.map((r) => String(r.name)),
      roles: roles.map((r) => String(r.name)),
      members: members.map((r) => ({
        group: String(r.group_name),
        memberKind: r.member_kind as GroupMemberRow["memberKind"],
        member: String(r.member),
      })),
      assignments: assignments.map((r) => ({
        subjectKind: r.subject_kind as RoleAssignmentRow["subjectKind"],
        subject: String(r.subject),
        role: String(r.role),
      })),
      grants: grants.map((r): GrantRow => ({
        id: String(r.id),
        role: String(r.role),
        action: String(r.action),
        environment: String(r.environment),
        service: String(r.service),
      })),
      delegations: delegations.map((r): DelegationRow => ({
        id: String(r.id),
        fromUser: String(r.from_user),
        toUser: String(r.to_user),
        role: strOrNull(r.role),
        expiresAt: num(r.expires_at),
        createdAt: num(r.created_at),
        revokedAt: numOrNull(r.revoked_at),
      })),
    };
  }
  async insertGroup(tenant: string, name: string): Promise<void> {
    await this.#c.run(
      "INSERT INTO authority_groups (tenant, name) VALUES (?, ?) ON CONFLICT DO NOTHING",
      [tenant, name],
    );
  }
  async insertRole(tenant: string, name: string): Promise<void> {
    await this.#c.run(
      "INSERT INTO authority_roles (tenant, name) VALUES (?, ?) ON CONFLICT DO NOTHING",
      [tenant, name],
    );
  }
  async addGroupMember(tenant: string, row: GroupMemberRow): Promise<void> {
    await this.#c.run(
      "INSERT INTO group_members (tenant, group_name, member_kind, member) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
      [tenant, row.group, row.memberKind, row.member],
    );
  }
  async removeGroupMember(tenant: string, row: GroupMemberRow): Promise<boolean> {
    const n = await this.#c.run(
      "DELETE FROM group_members WHERE tenant = ? AND group_name = ? AND member_kind = ? AND member = ?",
      [tenant, row.group, row.memberKind, row.member],
    );
    return n > 0;
  }
  async assignRole(tenant: string, row: RoleAssignmentRow): Promise<void> {
    await this.#c.run(
      "INSERT INTO role_assignments (tenant, subject_kind, subject, role) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
      [tenant, row.subjectKind, row.subject, row.role],
    );
  }
  async unassignRole(tenant: string, row: RoleAssignmentRow): Promise<boolean> {
    const n = await this.#c.run(
      "DELETE FROM role_assignments WHERE tenant = ? AND subject_kind = ? AND subject = ? AND role = ?",
      [tenant, row.subjectKind, row.subject, row.role],
    );
    return n > 0;
  }
  async insertGrant(tenant: string, row: GrantRow): Promise<void> {
    await this.#c.run(
      "INSERT INTO grants (tenant, id, role, action, environment, service) VALUES (?, ?, ?, ?, ?, ?)",
      [tenant, row.id, row.role, row.action, row.environment, row.service],
    );
  }
  async deleteGrant(tenant: string, id: string): Promise<boolean> {
    return (await this.#c.run("DELETE FROM grants WHERE tenant = ? AND id = ?", [tenant, id])) > 0;
  }
  async insertDelegation(tenant: string, row: DelegationRow): Promise<void> {
    await this.#c.run(
      "INSERT INTO delegations (tenant, id, from_user, to_user, role, expires_at, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      [
        tenant,
        row.id,
        row.fromUser,
        row.toUser,
        row.role,
        row.expiresAt,
        row.createdAt,
        row.revokedAt,
      ],
    );
  }
  async revokeDelegation(tenant: string, id: string, now: number): Promise<boolean> {
    const n = await this.#c.run(
      "UPDATE delegations SET revoked_at = ? WHERE tenant = ? AND id = ? AND revoked_at IS NULL",
      [now, tenant, id],
    );
    return n > 0;
  }

  // Break-glass -----------------------------------------------------------------------------
  async insertBreakGlass(tenant: string, row: BreakGlassRow): Promise<void> {
    await this.#c.run(
      `INSERT INTO breakglass (tenant, id, holder, justification, scope, opened_at, expires_at,
         closed_at, closed_by, close_reason, review, reviewed_at, reviewed_by)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        tenant,
        row.id,
        row.holder,
        row.justification,
        JSON.stringify(row.scope),
        row.openedAt,
        row.expiresAt,
        row.closedAt,
        row.closedBy,
        row.closeReason,
        row.review,
        row.reviewedAt,
        row.reviewedBy,
      ],
    );
  }
  async getBreakGlass(tenant: string, id: string, lock = false): Promise<BreakGlassRow | null> {
    const r = await this.#one(
      `SELECT * FROM breakglass WHERE tenant = ? AND id = ?${lock ? " FOR UPDATE" : ""}`,
      [tenant, id],
    );
    return r ? breakGlassRow(r) : null;
  }
  async listBreakGlass(tenant: string, limit: number): Promise<BreakGlassRow[]> {
    const rows = await this.#c.all(
      "SELECT * FROM breakglass WHERE tenant = ? ORDER BY opened_at DESC, id DESC LIMIT ?",
      [tenant, limit],
    );
    return rows.map(breakGlassRow);
  }
  async activeBreakGlass(tenant: string, now: number): Promise<BreakGlassRow[]> {
    const rows = await this.#c.all(
      "SELECT * FROM breakglass WHERE tenant = ? AND closed_at IS NULL AND expires_at > ? ORDER BY opened_at, id",
      [tenant, now],
    );
    return rows.map(breakGlassRow);
  }
  async closeBreakGlass(
    tenant: string,
    id: string,
    by: string,
    reason: string,
    now: number,
  ): Promise<boolean> {
    const n = await this.#c.run(
      "UPDATE breakglass SET closed_at = ?, closed_by = ?, close_reason = ? WHERE tenant = ? AND id = ? AND closed_at IS NULL AND expires_at > ?",
      [now, by, reason, tenant, id, now],
    );
    return n > 0;
  }
  async reviewBreakGlass(
    tenant: string,
    id: string,
    by: string,
    review: string,
    now: number,
  ): Promise<boolean> {
    const n = await this.#c.run(
      "UPDATE breakglass SET review = ?, reviewed_by = ?, reviewed_at = ? WHERE tenant = ? AND id = ? AND reviewed_at IS NULL",
      [review, by, now, tenant, id],
    );
    return n > 0;
  }

  // Fleet, traces, findings -----------------------------------------------------------------
  async upsertHost(tenant: string, row: HostRow): Promise<void> {
    await this.#c.run(
      `INSERT INTO hosts (tenant, name, version, policy_hash, health, anchor, checkpoint,
         first_seen, last_seen)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (tenant, name) DO UPDATE SET
         version = excluded.version, policy_hash = excluded.policy_hash,
         health = excluded.health,
         anchor = COALESCE(excluded.anchor, hosts.anchor),
         checkpoint = COALESCE(excluded.checkpoint, hosts.checkpoint),
         last_seen = excluded.last_seen`,
      [
        tenant,
        row.name,
        row.version,
        row.policyHash,
        text(row.health),
        row.anchor,
        row.checkpoint,
        row.firstSeen,
        row.lastSeen,
      ],
    );
  }
  async getHost(tenant: string, name: string): Promise<HostRow | null> {
    const r = await this.#one("SELECT * FROM hosts WHERE tenant = ? AND name = ?", [tenant, name]);
    return r ? hostRow(r) : null;
  }
  async listHosts(tenant: string): Promise<HostRow[]> {
    const rows = await this.#c.all("SELECT * FROM hosts WHERE tenant = ? ORDER BY name", [tenant]);
    return rows.map(hostRow);
  }
  async insertSpans(tenant: string, rows: SpanRow[]): Promise<number> {
    let added = 0;
    for (const s of rows) {
      added += await this.#c.run(
        `INSERT INTO spans (tenant, trace_id, span_id, parent_span_id, host, service, name,
           start_ms, duration_ms, status, data)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
        [
          tenant,
          s.traceId,
          s.spanId,
          s.parentSpanId,
          s.host,
          s.service,
          s.name,
          s.startMs,
          s.durationMs,
          s.status,
          text(s.data),
        ],
      );
    }
    return added;
  }
  async querySpans(tenant: string, f: SpanFilter): Promise<SpanRow[]> {
    const where = ["tenant = ?"];
    const params: SqlValue[] = [tenant];
    const eq = (col: string, v: SqlValue | undefined) => {
      if (v !== undefined) {
        where.push(`${col} = ?`);
        params.push(v);
      }
    };
    eq("host", f.host);
    eq("service", f.service);
    if (f.minStatus !== undefined) {
      where.push("status >= ?");
      params.push(f.minStatus);
    }
    if (f.since !== undefined) {
      where.push("start_ms >= ?");
      params.push(f.since);
    }
    if (f.until !== undefined) {
      where.push("start_ms < ?");
      params.push(f.until);
    }
    if (f.nameContains !== undefined) {
      // instr() exists in SQLite; strpos() in PostgreSQL: use LIKE with escaping instead.
      where.push("name LIKE ? ESCAPE '!'");
      params.push(`%${f.nameContains.replace(/[!%_]/g, (c) => "!" + c)}%`);
    }
    page(where, params, f.before, "start_ms", "span_id");
    params.push(f.limit);
    const rows = await this.#c.all(
      `SELECT * FROM spans WHERE ${
        where.join(" AND ")
      } ORDER BY start_ms DESC, span_id DESC LIMIT ?`,
      params,
    );
    return rows.map(spanRow);
  }
  async getTrace(tenant: string, traceId: string): Promise<SpanRow[]> {
    const rows = await this.#c.all(
      "SELECT * FROM spans WHERE tenant = ? AND trace_id = ? ORDER BY start_ms, span_id LIMIT 10000",
      [tenant, traceId],
    );
    return rows.map(spanRow);
  }
  async upsertFinding(tenant: string, row: FindingRow): Promise<boolean> {
    const rows = await this.#c.all(
      `INSERT INTO findings (tenant, id, host, fingerprint, category, severity, title, service,
         status, hits, first_seen, last_seen, data)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (tenant, host, fingerprint) DO UPDATE SET
         hits = findings.hits + excluded.hits, last_seen = excluded.last_seen,
         severity = excluded.severity, title = excluded.title, status = excluded.status,
         data = excluded.data
       RETURNING id`,
      [
        tenant,
        row.id,
        row.host,
        row.fingerprint,
        row.category,
        row.severity,
        row.title,
        row.service,
        row.status,
        row.count,
        row.firstSeen,
        row.lastSeen,
        text(row.data),
      ],
    );
    return rows[0]?.id === row.id;
  }
  async queryFindings(tenant: string, f: FindingFilter): Promise<FindingRow[]> {
    const where = ["tenant = ?"];
    const params: SqlValue[] = [tenant];
    for (const [col, v] of [["host", f.host], ["category", f.category], ["status", f.status]]) {
      if (v !== undefined) {
        where.push(`${col} = ?`);
        params.push(v);
      }
    }
    if (f.severities && f.severities.length > 0) {
      where.push(`severity IN (${f.severities.map(() => "?").join(", ")})`);
      params.push(...f.severities);
    }
    page(where, params, f.before, "last_seen", "id");
    params.push(f.limit);
    const rows = await this.#c.all(
      `SELECT * FROM findings WHERE ${
        where.join(" AND ")
      } ORDER BY last_seen DESC, id DESC LIMIT ?`,
      params,
    );
    return rows.map(findingRow);
  }
  async getUsage(tenant: string): Promise<{ spans: number; findings: number }> {
    const r = await this.#one("SELECT spans, findings FROM tenant_usage WHERE tenant = ?", [
      tenant,
    ]);
    return { spans: num(r?.spans ?? 0), findings: num(r?.findings ?? 0) };
  }
  async addUsage(tenant: string, spans: number, findings: number): Promise<void> {
    await this.#c.run(
      "UPDATE tenant_usage SET spans = spans + ?, findings = findings + ? WHERE tenant = ?",
      [spans, findings, tenant],
    );
  }
  async insertAnchor(tenant: string, row: AnchorRow): Promise<void> {
    await this.#c.run(
      "INSERT INTO anchors (tenant, host, size, root, note, created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
      [tenant, row.host, row.size, row.root, row.note, row.createdAt],
    );
  }
  async latestAnchor(tenant: string, host: string): Promise<AnchorRow | null> {
    const r = await this.#one(
      "SELECT * FROM anchors WHERE tenant = ? AND host = ? ORDER BY size DESC LIMIT 1",
      [tenant, host],
    );
    return r
      ? {
        host: String(r.host),
        size: num(r.size),
        root: String(r.root),
        note: String(r.note),
        createdAt: num(r.created_at),
      }
      : null;
  }

  // Dashboard passkeys ----------------------------------------------------------------------
  async insertPasskey(tenant: string, r: PasskeyRow): Promise<boolean> {
    const n = await this.#c.run(
      `INSERT INTO passkeys (tenant, id, user_id, public_key, counter, transports, label,
       created_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
      [
        tenant,
        r.id,
        r.userId,
        r.publicKey,
        r.counter,
        JSON.stringify(r.transports),
        r.label,
        r.createdAt,
        r.lastUsedAt,
      ],
    );
    return n === 1;
  }
  async getPasskey(tenant: string, id: string): Promise<PasskeyRow | null> {
    const r = await this.#one("SELECT * FROM passkeys WHERE tenant = ? AND id = ?", [tenant, id]);
    return r ? passkeyRow(r) : null;
  }
  async listPasskeys(tenant: string, userId: string): Promise<PasskeyRow[]> {
    const rows = await this.#c.all(
      "SELECT * FROM passkeys WHERE tenant = ? AND user_id = ? ORDER BY created_at, id",
      [tenant, userId],
    );
    return rows.map(passkeyRow);
  }
  async deletePasskey(tenant: string, id: string): Promise<boolean> {
    return (await this.#c.run("DELETE FROM passkeys WHERE tenant = ? AND id = ?", [tenant, id])) ===
      1;
  }
  async touchPasskey(tenant: string, id: string, counter: number, now: number): Promise<void> {
    await this.#c.run(
      "UPDATE passkeys SET counter = ?, last_used_at = ? WHERE tenant = ? AND id = ?",
      [counter, now, tenant, id],
    );
  }
  async usePasskeyNonce(tenant: string, nonce: string, exp: number, now: number): Promise<boolean> {
    await this.#c.run("DELETE FROM passkey_nonces WHERE tenant = ? AND exp < ?", [tenant, now]);
    const n = await this.#c.run(
      "INSERT INTO passkey_nonces (tenant, nonce, exp) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
      [tenant, nonce, exp],
    );
    return n === 1;
  }
  async insertApprovalProof(tenant: string, r: ApprovalProofRow): Promise<void> {
    await this.#c.run(
      `INSERT INTO approval_proofs (tenant, request_id, user_id, decision, action_hash,
       credential_id, nonce, challenge, assertion, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
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
      ],
    );
  }
  async listApprovalProofs(tenant: string, requestId: string): Promise<ApprovalProofRow[]> {
    const rows = await this.#c.all(
      `SELECT * FROM approval_proofs WHERE tenant = ? AND request_id = ?
       ORDER BY created_at, user_id, nonce`,
      [tenant, requestId],
    );
    return rows.map((r) => ({
      requestId: String(r.request_id),
      userId: String(r.user_id),
      decision: r.decision as ApprovalProofRow["decision"],
      actionHash: String(r.action_hash),
      credentialId: String(r.credential_id),
      nonce: String(r.nonce),
      challenge: String(r.challenge),
      assertion: String(r.assertion),
      createdAt: num(r.created_at),
    }));
  }

  // Evidence --------------------------------------------------------------------------------
  async lockEvidenceHead(tenant: string): Promise<string | null> {
    const r = await this.#one("SELECT state FROM evidence_heads WHERE tenant = ? FOR UPDATE", [
      tenant,
    ]);
    return r ? String(r.state) : null;
  }
  async insertPendingEvidence(
    tenant: string,
    row: Omit<PendingEvidenceRow, "id">,
  ): Promise<void> {
    this.pendingEvidence.add(tenant);
    if (this.#hold) {
      this.#held.push({ ...row, id: this.#nextHeld--, tenant });
      return;
    }
    await this.#c.run(
      "INSERT INTO evidence_pending (tenant, ts, type, actor, data) VALUES (?, ?, ?, ?, ?)",
      [tenant, row.ts, row.type, row.actor, row.data],
    );
  }
  async listPendingEvidence(tenant: string, limit: number): Promise<PendingEvidenceRow[]> {
    // A holding backend never writes to the table: its transactions chain what they hold.
    const rows = this.#hold ? [] : await this.#c.all(
      "SELECT id, ts, type, actor, data FROM evidence_pending WHERE tenant = ? ORDER BY id LIMIT ?",
      [tenant, limit],
    );
    const out: PendingEvidenceRow[] = rows.map((r) => ({
      id: num(r.id),
      ts: num(r.ts),
      type: String(r.type),
      actor: String(r.actor),
      data: String(r.data),
    }));
    // Records held by this transaction come after every committed one.
    for (const r of this.#held) {
      if (out.length >= limit) break;
      if (r.tenant === tenant) {
        out.push({ id: r.id, ts: r.ts, type: r.type, actor: r.actor, data: r.data });
      }
    }
    return out;
  }
  async chainEvidence(
    tenant: string,
    seq: number,
    lines: string[],
    state: string,
    pendingIds: number[],
  ): Promise<void> {
    const stored = pendingIds.filter((id) => id > 0);
    for (const id of pendingIds) {
      if (id > 0) continue;
      const i = this.#held.findIndex((r) => r.id === id && r.tenant === tenant);
      if (i < 0) throw new Error(`Evidence record ${id} of tenant ${tenant} is not held`);
      this.#held.splice(i, 1);
    }
    // Three statements whatever the batch size (the lines and ids travel as one JSON array
    // each), sent together: PostgreSQL pipelines them in one round trip.
    const pg = this.#c.dialect === "postgres";
    const [added, removed, moved] = await Promise.all([
      lines.length === 1
        ? this.#c.run("INSERT INTO evidence (tenant, seq, line) VALUES (?, ?, ?)", [
          tenant,
          seq,
          lines[0],
        ])
        : this.#c.run(
          pg
            ? "INSERT INTO evidence (tenant, seq, line) SELECT ?, ? + x.i - 1, x.l FROM json_array_elements_text(CAST(? AS TEXT)::json) WITH ORDINALITY AS x(l, i)"
            : "INSERT INTO evidence (tenant, seq, line) SELECT ?, ? + key, value FROM json_each(?)",
          [tenant, seq, JSON.stringify(lines)],
        ),
      stored.length === 0 ? 0 : this.#c.run(
        pg
          ? "DELETE FROM evidence_pending WHERE tenant = ? AND id IN (SELECT x::bigint FROM json_array_elements_text(CAST(? AS TEXT)::json) AS x)"
          : "DELETE FROM evidence_pending WHERE tenant = ? AND id IN (SELECT value FROM json_each(?))",
        [tenant, JSON.stringify(stored)],
      ),
      this.#c.run(
        "UPDATE evidence_heads SET size = ?, state = ? WHERE tenant = ? AND size = ?",
        [seq + lines.length, state, tenant, seq],
      ),
    ]);
    if (added !== lines.length || removed !== stored.length || moved !== 1) {
      throw new Error(`Evidence of tenant ${tenant} was chained by someone else meanwhile`);
    }
  }
  async readEvidence(tenant: string, fromSeq: number, limit: number): Promise<string[]> {
    const rows = await this.#c.all(
      "SELECT line FROM evidence WHERE tenant = ? AND seq >= ? ORDER BY seq LIMIT ?",
      [tenant, fromSeq, limit],
    );
    return rows.map((r) => String(r.line));
  }
}

/**
 * Applies pending migrations through `conn` inside the caller's transaction.
 *
 * @param conn the connection, inside a transaction holding the migration lock
 * @param now the clock, ms
 * @returns the versions applied now
 */
export async function migrate(conn: SqlConn, now: number): Promise<number[]> {
  await conn.run(
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
  );
  const done = new Set(
    (await conn.all("SELECT version FROM schema_migrations")).map((r) => num(r.version)),
  );
  const applied: number[] = [];
  for (const m of MIGRATIONS) {
    if (done.has(m.version)) continue;
    for (const s of m.statements) await conn.run(typeof s === "string" ? s : s[conn.dialect]);
    await conn.run("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)", [
      m.version,
      m.name,
      now,
    ]);
    applied.push(m.version);
  }
  return applied;
}

/**
 * The applied migration versions.
 *
 * @param conn a connection
 * @returns versions, ascending
 */
export async function appliedMigrations(conn: SqlConn): Promise<number[]> {
  const rows = await conn.all("SELECT version FROM schema_migrations ORDER BY version");
  return rows.map((r) => num(r.version));
}
