/**
 * The control plane's storage interface. One interface, two backends (`node:sqlite` and
 * PostgreSQL), the same logical schema and versioned migrations.
 *
 * Every method of a transaction takes the tenant as its first parameter, so no query can
 * forget its tenant: the only method without one is {@link StoreTx.getTenant}, the tenant
 * lookup itself. Everything runs inside `store.tx(async (t) => …)`: a state change and the
 * evidence line that records it commit together or not at all.
 *
 * @module
 */
import type { LedgerState } from "@infraveil/ledger";

/** A tenant's settings; see docs/control.md for what each one does. */
export interface TenantSettings {
  /** Per environment: may a personal API token (no passkey proof) approve? */
  token_approvals: Record<string, boolean>;
  /**
   * Default for environments not listed (false: token approvals are off everywhere until the
   * tenant opts in per environment; policy activation always needs its own `policy` entry).
   */
  token_approvals_default: boolean;
  /** Distinct human approvals needed to activate a new policy version. */
  policy_activation_approvals: number;
  /** How long a pending request waits for approvals, seconds. */
  request_ttl_seconds: number;
  /** How long one approval vote counts, seconds. */
  approval_ttl_seconds: number;
  /** How long a signed approval may be used by an agent, seconds. */
  signed_approval_ttl_seconds: number;
  /** Default break-glass duration, seconds. */
  breakglass_default_seconds: number;
  /** Longest break-glass duration, seconds. */
  breakglass_max_seconds: number;
  /** Requests one identity may create per minute. */
  rate_limit_per_minute: number;
  /** A host whose last heartbeat is older than this is stale, seconds. */
  stale_after_seconds: number;
  /** Most trace spans stored for the tenant. */
  quota_spans: number;
  /** Most findings stored for the tenant. */
  quota_findings: number;
  /** Most items in one ingested batch. */
  batch_max: number;
}

/** The settings of a new tenant. */
export const DEFAULT_SETTINGS: Readonly<TenantSettings> = Object.freeze({
  token_approvals: {},
  token_approvals_default: false,
  policy_activation_approvals: 1,
  request_ttl_seconds: 86_400,
  approval_ttl_seconds: 3_600,
  signed_approval_ttl_seconds: 900,
  breakglass_default_seconds: 3_600,
  breakglass_max_seconds: 14_400,
  rate_limit_per_minute: 60,
  stale_after_seconds: 90,
  quota_spans: 200_000,
  quota_findings: 20_000,
  batch_max: 500,
});

/** A tenant. */
export interface TenantRow {
  /** Unique name. */
  name: string;
  /** Creation time, ms. */
  createdAt: number;
  /** Hash of the active policy, if any. */
  activePolicyHash: string | null;
  /** Settings. */
  settings: TenantSettings;
}

/** A human user. */
export interface UserRow {
  /** Stable id (`usr_…`). */
  id: string;
  /** Email, unique in the tenant. */
  email: string;
  /** Display name. */
  displayName: string | null;
  /** `invited` until the sign-up link is used. */
  status: "active" | "invited" | "disabled";
  /** Creation time, ms. */
  createdAt: number;
}

/** A bearer token of a user, stored as a SHA-256 hash of its secret. */
export interface TokenRow {
  /** Token id (the public half of the token). */
  id: string;
  /** Owner. */
  userId: string;
  /** `api` (personal API token), `session` (dashboard) or `signup` (one-time link). */
  kind: "api" | "session" | "signup";
  /** Hex SHA-256 of the secret half. */
  hash: string;
  /** A label for the owner. */
  label: string | null;
  /** Creation time, ms. */
  createdAt: number;
  /** Expiry, ms, or null. */
  expiresAt: number | null;
  /** When a one-time token was used, ms. */
  usedAt: number | null;
  /** When the token was revoked, ms. */
  revokedAt: number | null;
}

/** Kinds of machine identities. */
export type IdentityKind = "agent" | "mcp";

/** An enrolled machine identity (host agent or MCP server) and one of its keys. */
export interface IdentityRow {
  /** Name, unique among the tenant's active identities (for agents: the host name). */
  name: string;
  /** `agent` or `mcp`. */
  kind: IdentityKind;
  /** Key id. */
  kid: string;
  /** base64url raw Ed25519 public key. */
  publicKey: string;
  /** For MCP identities: the email of the human operating it. */
  operator: string | null;
  /**
   * For agents: the environment the host was enrolled in (requests naming the host must be for
   * it). Null for MCP identities and for agents enrolled before it was recorded.
   */
  environment: string | null;
  /** For agents: the service the host was enrolled for, if any. */
  service: string | null;
  /** `active`; `rotated` or `revoked` keys are refused. */
  status: "active" | "revoked" | "rotated";
  /** Enrollment time, ms. */
  createdAt: number;
  /** When the key stopped being active, ms. */
  revokedAt: number | null;
}

/** A one-time enrollment token. */
export interface EnrollmentTokenRow {
  /** Token id. */
  id: string;
  /** Hex SHA-256 of the secret. */
  hash: string;
  /** The identity name it enrolls. */
  name: string;
  /** The identity kind it enrolls. */
  kind: IdentityKind;
  /** Operator recorded for an MCP identity. */
  operator: string | null;
  /** Environment recorded for an agent. */
  environment: string | null;
  /** Service recorded for an agent. */
  service: string | null;
  /** Who created it. */
  createdBy: string;
  /** Creation time, ms. */
  createdAt: number;
  /** Expiry, ms. */
  expiresAt: number;
  /** When used, ms. */
  usedAt: number | null;
}

/** A policy version, identified by its content hash. */
export interface PolicyRow {
  /** `sha256:<hex>` content hash. */
  hash: string;
  /** The policy text. */
  text: string;
  /** Life cycle. */
  status: "proposed" | "active" | "superseded" | "rejected";
  /** When stored, ms. */
  createdAt: number;
  /** Who proposed it. */
  createdBy: string;
  /** When it became active, ms. */
  activatedAt: number | null;
}

/** The states of a request. */
export type RequestStatus =
  | "denied"
  | "pending"
  | "allowed"
  | "approved"
  | "rejected"
  | "expired"
  | "executed"
  | "failed";

/** A request in the approval queue. */
export interface RequestRow {
  /** Id (`req_…`). */
  id: string;
  /** `action` (an operation on hosts) or `policy.activate`. */
  kind: "action" | "policy.activate";
  /** The exact action as requested (canonical JSON object). */
  action: Record<string, unknown>;
  /** Hex SHA-256 of the canonical action. */
  actionHash: string;
  /** Who asked: identity name or user id. */
  requester: string;
  /** What asked. */
  requesterKind: "agent" | "mcp" | "user";
  /** The human operating the requesting identity, if any (an email). */
  operator: string | null;
  /** The environment acted on. */
  environment: string | null;
  /** The service acted on. */
  service: string | null;
  /** Target hosts. */
  targets: string[];
  /** Current status. */
  status: RequestStatus;
  /** The policy decision (reasons etc.). */
  decision: Record<string, unknown>;
  /** Distinct approvals needed. */
  approvalsRequired: number;
  /** The policy hash the decision was made with. */
  policyHash: string | null;
  /** Break-glass session that let it through, if any. */
  breakGlass: string | null;
  /** Creation time, ms. */
  createdAt: number;
  /** Last change, ms. */
  updatedAt: number;
  /** When a pending request expires, ms. */
  expiresAt: number;
}

/** One human's vote on a request. */
export interface VoteRow {
  /** The request. */
  requestId: string;
  /** The voter. */
  userId: string;
  /** Approve or reject. */
  decision: "approve" | "reject";
  /** How the voter proved presence: `token` or the proof verifier's method (e.g. `passkey`). */
  method: string;
  /** Free text. */
  comment: string | null;
  /** When, ms. */
  createdAt: number;
  /** When the vote stops counting, ms. */
  expiresAt: number;
}

/** A signed approval issued for a request. */
export interface SignedApprovalRow {
  /** Id (`apv_…`), also the envelope's nonce. */
  id: string;
  /** The request. */
  requestId: string;
  /** The signed envelope, JSON text. */
  envelope: string;
  /** The action hash it is bound to. */
  actionHash: string;
  /** Expiry, ms. */
  expiresAt: number;
  /** Issue time, ms. */
  createdAt: number;
}

/** One target host's single-use claim of a signed approval. */
export interface ApprovalTargetRow {
  /** The signed approval. */
  approvalId: string;
  /** The host. */
  host: string;
  /** When claimed, ms; null until then. */
  usedAt: number | null;
  /** Key id of the claiming agent. */
  usedBy: string | null;
  /** Reported result. */
  resultStatus: "succeeded" | "failed" | null;
  /** Reported details. */
  result: unknown;
  /** When reported, ms. */
  reportedAt: number | null;
}

/** A host known from its heartbeats. */
export interface HostRow {
  /** Host (agent identity) name. */
  name: string;
  /** Agent version. */
  version: string;
  /** The policy hash the agent enforces. */
  policyHash: string | null;
  /** Health report as sent. */
  health: unknown;
  /** Last ledger anchor `SIZE:ROOT`. */
  anchor: string | null;
  /** Last countersigned checkpoint note. */
  checkpoint: string | null;
  /** First heartbeat, ms. */
  firstSeen: number;
  /** Last heartbeat, ms. */
  lastSeen: number;
}

/** One stored trace span. */
export interface SpanRow {
  /** W3C trace id (32 hex). */
  traceId: string;
  /** Span id (16 hex). */
  spanId: string;
  /** Parent span id. */
  parentSpanId: string | null;
  /** Host that shipped it. */
  host: string;
  /** Service. */
  service: string | null;
  /** Name (e.g. `GET /api`). */
  name: string;
  /** Start, ms. */
  startMs: number;
  /** Duration, ms. */
  durationMs: number;
  /** HTTP status or 0. */
  status: number;
  /** The span as shipped. */
  data: unknown;
}

/** A security finding, deduplicated per host and fingerprint. */
export interface FindingRow {
  /** Id (`fnd_…`). */
  id: string;
  /** Host that reported it. */
  host: string;
  /** Dedupe key. */
  fingerprint: string;
  /** Category (as in policy `block_categories`). */
  category: string;
  /** Severity. */
  severity: "low" | "medium" | "high" | "critical";
  /** Title. */
  title: string;
  /** Service. */
  service: string | null;
  /** `open` or `resolved`. */
  status: "open" | "resolved";
  /** Times reported. */
  count: number;
  /** First report, ms. */
  firstSeen: number;
  /** Last report, ms. */
  lastSeen: number;
  /** The finding as shipped. */
  data: unknown;
}

/** A break-glass session. */
export interface BreakGlassRow {
  /** Id (`bg_…`). */
  id: string;
  /** The holder (user id) who opened it. */
  holder: string;
  /** Why. */
  justification: string;
  /** What it covers (`environments` absent: a session opened before it existed, any). */
  scope: { actions: string[]; services: string[]; environments?: string[] };
  /** Opened, ms. */
  openedAt: number;
  /** Ends, ms. */
  expiresAt: number;
  /** Closed by hand, ms. */
  closedAt: number | null;
  /** Who closed it. */
  closedBy: string | null;
  /** Why it was closed. */
  closeReason: string | null;
  /** The post-review record. */
  review: string | null;
  /** When reviewed, ms. */
  reviewedAt: number | null;
  /** Who reviewed it. */
  reviewedBy: string | null;
}

/** An authority-graph group membership (a user or a nested group). */
export interface GroupMemberRow {
  /** The group. */
  group: string;
  /** `user` (id) or `group` (name). */
  memberKind: "user" | "group";
  /** The member. */
  member: string;
}

/** A role held by a user or a group. */
export interface RoleAssignmentRow {
  /** `user` (id) or `group` (name). */
  subjectKind: "user" | "group";
  /** The subject. */
  subject: string;
  /** The role. */
  role: string;
}

/** Which role may approve which actions on which environment and service (`*` = any). */
export interface GrantRow {
  /** Id (`grt_…`). */
  id: string;
  /** The role. */
  role: string;
  /** Action name or `*`. */
  action: string;
  /** Environment or `*`. */
  environment: string;
  /** Service or `*`. */
  service: string;
}

/** A time-limited delegation of a user's approval authority to another user. */
export interface DelegationRow {
  /** Id (`dlg_…`). */
  id: string;
  /** Who delegates. */
  fromUser: string;
  /** Who receives. */
  toUser: string;
  /** Only this role, or all of `fromUser`'s roles when null. */
  role: string | null;
  /** Expiry, ms. */
  expiresAt: number;
  /** Creation, ms. */
  createdAt: number;
  /** Revocation, ms. */
  revokedAt: number | null;
}

/** Everything the authority graph is made of, for one tenant. */
export interface AuthorityData {
  /** Users. */
  users: UserRow[];
  /** Group names. */
  groups: string[];
  /** Role names. */
  roles: string[];
  /** Memberships. */
  members: GroupMemberRow[];
  /** Role assignments. */
  assignments: RoleAssignmentRow[];
  /** Grants. */
  grants: GrantRow[];
  /** Delegations (including expired and revoked ones). */
  delegations: DelegationRow[];
}

/** A registered passkey (WebAuthn credential) of a user, used by the dashboard. */
export interface PasskeyRow {
  /** Credential id, base64url. */
  id: string;
  /** Owner (user id). */
  userId: string;
  /** COSE public key, base64url. */
  publicKey: string;
  /** Signature counter last seen. */
  counter: number;
  /** Transports the authenticator reported. */
  transports: string[];
  /** A name for the owner (e.g. "added at sign-up"). */
  label: string | null;
  /** Registration time, ms. */
  createdAt: number;
  /** Last successful use, ms. */
  lastUsedAt: number | null;
}

/** A verified passkey assertion kept as the proof of one vote. */
export interface ApprovalProofRow {
  /** The request voted on. */
  requestId: string;
  /** The voter (user id). */
  userId: string;
  /** `approve` or `reject`. */
  decision: "approve" | "reject";
  /** The request's action hash the challenge was bound to. */
  actionHash: string;
  /** The credential that signed. */
  credentialId: string;
  /** The server nonce (single use). */
  nonce: string;
  /** The challenge, base64url: SHA-256 over the binding (see docs/dashboard.md). */
  challenge: string;
  /** The assertion as sent by the browser (WebAuthn JSON), as text. */
  assertion: string;
  /** When verified, ms. */
  createdAt: number;
}

/** A countersigned ledger anchor of a host. */
export interface AnchorRow {
  /** Host. */
  host: string;
  /** Tree size. */
  size: number;
  /** Hex root. */
  root: string;
  /** The countersigned checkpoint note. */
  note: string;
  /** When countersigned, ms. */
  createdAt: number;
}

/** A page query: newest first, `before` is an opaque cursor value from the previous page. */
export interface PageQuery {
  /** Most rows (1–500). */
  limit: number;
  /** Continue after this key (from the previous page). */
  before?: [number, string];
}

/** Filters of a request listing. */
export interface RequestFilter extends PageQuery {
  /** Only this status. */
  status?: RequestStatus;
  /** Only this requester. */
  requester?: string;
}

/** Filters of a span query. */
export interface SpanFilter extends PageQuery {
  /** Only this host. */
  host?: string;
  /** Only this service. */
  service?: string;
  /** Only spans with status ≥ this. */
  minStatus?: number;
  /** Only spans starting at or after, ms. */
  since?: number;
  /** Only spans starting before, ms. */
  until?: number;
  /** Only spans whose name contains this text. */
  nameContains?: string;
}

/** An evidence record written with the change it records, not yet chained. */
export interface PendingEvidenceRow {
  /** Insertion order: grows with every insert. */
  id: number;
  /** When the change happened, ms. */
  ts: number;
  /** What happened, e.g. `request.decision`. */
  type: string;
  /** Who did it. */
  actor: string;
  /** Details, as JSON text. */
  data: string;
}

/** Filters of a finding query. */
export interface FindingFilter extends PageQuery {
  /** Only this host. */
  host?: string;
  /** Only this category. */
  category?: string;
  /** Only these severities. */
  severities?: FindingRow["severity"][];
  /** Only this status. */
  status?: FindingRow["status"];
}

/** What {@link StoreTx.requestChecks} reads. */
export interface RequestChecks {
  /** Rate-limit bucket. */
  bucket: string;
  /** Its window's start, ms. */
  windowStart: number;
  /** The action hash a pending request would fold on. */
  actionHash: string;
  /** Whether to read the open break-glass sessions. */
  breakGlass: boolean;
  /** The time, ms. */
  now: number;
  /** Target host names. */
  targets: string[];
}

/** What {@link StoreTx.requestChecks} returns. */
export interface RequestCheckResult {
  /** Hits in the window, this one included. */
  hits: number;
  /** The pending request with the action hash. */
  pending: RequestRow | null;
  /** Open break-glass sessions (empty unless asked for). */
  breakGlass: BreakGlassRow[];
  /** The active identity of each target, in order, or null. */
  hosts: (IdentityRow | null)[];
}

/**
 * One transaction. Every method but `getTenant` takes the tenant first.
 */
export interface StoreTx {
  /**
   * Runs `fn` under a savepoint: when it throws, its changes are undone and the error is
   * rethrown, while the transaction's earlier changes stay and can still commit.
   */
  nested<T>(fn: () => Promise<T>): Promise<T>;

  // Tenants ---------------------------------------------------------------------------------
  /** Looks a tenant up by name: the one method without a tenant parameter. */
  getTenant(name: string): Promise<TenantRow | null>;
  /** Creates a tenant (with an empty evidence log); false when it exists. */
  createTenant(tenant: string, row: Omit<TenantRow, "name">): Promise<boolean>;
  /** Replaces a tenant's settings. */
  setTenantSettings(tenant: string, settings: TenantSettings): Promise<void>;
  /** Sets the active policy hash. */
  setActivePolicy(tenant: string, hash: string): Promise<void>;

  // Users and tokens ----------------------------------------------------------------------------
  /** Adds a user; false when the email is taken. */
  insertUser(tenant: string, row: UserRow): Promise<boolean>;
  /** A user by id. */
  getUser(tenant: string, id: string): Promise<UserRow | null>;
  /** A user by email. */
  getUserByEmail(tenant: string, email: string): Promise<UserRow | null>;
  /** Sets a user's status. */
  setUserStatus(tenant: string, id: string, status: UserRow["status"]): Promise<void>;
  /** Stores a token. */
  insertToken(tenant: string, row: TokenRow): Promise<void>;
  /** A token by id. */
  getToken(tenant: string, id: string): Promise<TokenRow | null>;
  /** Marks a one-time token used; false when it was already used (atomic). */
  useToken(tenant: string, id: string, now: number): Promise<boolean>;
  /** Revokes a token. */
  revokeToken(tenant: string, id: string, now: number): Promise<void>;

  // Identities ----------------------------------------------------------------------------------
  /** Enrolls a key; false when the name already has an active key or the kid exists. */
  insertIdentity(tenant: string, row: IdentityRow): Promise<boolean>;
  /** An identity key by key id (any status). */
  getIdentityByKid(tenant: string, kid: string): Promise<IdentityRow | null>;
  /**
   * A tenant and one of its identity keys (any status; null when the kid is unknown) in one
   * statement: what every signed call looks up first. Null when the tenant does not exist.
   */
  getTenantAndKey(
    tenant: string,
    kid: string,
  ): Promise<{ tenant: TenantRow; identity: IdentityRow | null } | null>;
  /** The active key of an identity name. */
  getActiveIdentity(tenant: string, name: string): Promise<IdentityRow | null>;
  /** All identity keys of the tenant. */
  listIdentities(tenant: string): Promise<IdentityRow[]>;
  /** Moves an active key to `revoked` or `rotated`; false when it was not active. */
  deactivateIdentity(
    tenant: string,
    kid: string,
    status: "revoked" | "rotated",
    now: number,
  ): Promise<boolean>;
  /** Stores an enrollment token. */
  insertEnrollmentToken(tenant: string, row: EnrollmentTokenRow): Promise<void>;
  /** Claims an unused, unexpired enrollment token (atomic); null when not claimable. */
  claimEnrollmentToken(tenant: string, id: string, now: number): Promise<EnrollmentTokenRow | null>;

  // Replay protection and rate limits -----------------------------------------------------------
  /**
   * Records a nonce; false when the tenant has seen it with this `exp` (unique key: a replay
   * repeats the signed message, its `exp` included).
   */
  insertNonce(tenant: string, nonce: string, exp: number): Promise<boolean>;
  /**
   * {@link StoreTx.getTenantAndKey} and {@link StoreTx.insertNonce} together (one statement on
   * PostgreSQL). The nonce is recorded even when the tenant or the key is not found: the
   * caller must then not commit.
   */
  useNonceWithKey(
    tenant: string,
    kid: string,
    nonce: string,
    exp: number,
  ): Promise<
    { found: { tenant: TenantRow; identity: IdentityRow | null } | null; fresh: boolean }
  >;
  /** Forgets nonces whose `exp` is before `before` (seconds). */
  purgeNonces(tenant: string, before: number): Promise<number>;
  /**
   * Counts a hit in a fixed window and returns the window's count so far (a backend that
   * spreads a bucket over several rows may miss hits of transactions still in flight).
   */
  hitRateLimit(tenant: string, bucket: string, windowStart: number): Promise<number>;

  // Policies ------------------------------------------------------------------------------------
  /** Stores a policy version; false when that hash exists. */
  insertPolicy(tenant: string, row: PolicyRow): Promise<boolean>;
  /** A policy version. */
  getPolicy(tenant: string, hash: string): Promise<PolicyRow | null>;
  /** All versions, newest first (without text). */
  listPolicies(tenant: string): Promise<Omit<PolicyRow, "text">[]>;
  /** Sets a version's status. */
  setPolicyStatus(
    tenant: string,
    hash: string,
    status: PolicyRow["status"],
    activatedAt?: number,
  ): Promise<void>;

  // Requests and approvals ----------------------------------------------------------------------
  /** Adds a request; false when an identical pending request exists (fold). */
  insertRequest(tenant: string, row: RequestRow): Promise<boolean>;
  /**
   * What creating a request reads, and its rate-limit hit, together (one statement on
   * PostgreSQL): {@link StoreTx.hitRateLimit}, {@link StoreTx.getPendingRequest},
   * {@link StoreTx.activeBreakGlass} (only when `breakGlass`; empty otherwise) and
   * {@link StoreTx.getActiveIdentity} of each target, in order.
   */
  requestChecks(tenant: string, q: RequestChecks): Promise<RequestCheckResult>;
  /**
   * Adds a request and, only when it was added, the evidence record of its decision (one
   * statement on PostgreSQL); false, and nothing recorded, when an identical pending request
   * exists (fold). `last`: nothing follows in this transaction (see `commitGuard`).
   */
  insertRequestWithEvidence(
    tenant: string,
    row: RequestRow,
    evidence: Omit<PendingEvidenceRow, "id">,
    options?: { last?: boolean },
  ): Promise<boolean>;
  /**
   * Set by the transaction's caller: resolves true once everything the caller must know
   * before the transaction may commit is known and good. When it does, a statement flagged
   * `last` (nothing follows it) may be sent together with the COMMIT (PostgreSQL: one round
   * trip fewer); the statement then throws instead of returning false, and the whole
   * transaction is run again, as after a serialization failure.
   */
  commitReady?: Promise<boolean> | null;
  /** A request; `lock` takes a row lock until the transaction ends. */
  getRequest(tenant: string, id: string, lock?: boolean): Promise<RequestRow | null>;
  /** The pending request with this action hash. */
  getPendingRequest(tenant: string, actionHash: string): Promise<RequestRow | null>;
  /** Requests, newest first. */
  listRequests(tenant: string, filter: RequestFilter): Promise<RequestRow[]>;
  /** Changes a request's status. */
  setRequestStatus(tenant: string, id: string, status: RequestStatus, now: number): Promise<void>;
  /** Adds a vote; false when this user already voted on the request. */
  insertVote(tenant: string, row: VoteRow): Promise<boolean>;
  /** The votes on a request. */
  listVotes(tenant: string, requestId: string): Promise<VoteRow[]>;
  /** Stores a signed approval and one single-use claim per target host. */
  insertSignedApproval(tenant: string, row: SignedApprovalRow, hosts: string[]): Promise<void>;
  /** The signed approval of a request. */
  getSignedApprovalByRequest(tenant: string, requestId: string): Promise<SignedApprovalRow | null>;
  /** A signed approval. */
  getSignedApproval(tenant: string, id: string): Promise<SignedApprovalRow | null>;
  /** Unclaimed, unexpired signed approvals naming this host. */
  listClaimableApprovals(tenant: string, host: string, now: number): Promise<SignedApprovalRow[]>;
  /**
   * Claims one host's use of a signed approval: an atomic
   * `UPDATE … WHERE used_at IS NULL … RETURNING`; false when already used.
   */
  claimApprovalTarget(
    tenant: string,
    approvalId: string,
    host: string,
    now: number,
    by: string,
  ): Promise<boolean>;
  /** The claims of a signed approval. */
  listApprovalTargets(tenant: string, approvalId: string): Promise<ApprovalTargetRow[]>;
  /** Records a claimed target's result once; false when not claimed or already reported. */
  reportApprovalTarget(
    tenant: string,
    approvalId: string,
    host: string,
    status: "succeeded" | "failed",
    result: unknown,
    now: number,
  ): Promise<boolean>;

  // Authority graph -----------------------------------------------------------------------------
  /** The whole graph of the tenant. */
  loadAuthority(tenant: string): Promise<AuthorityData>;
  /** Creates a group (idempotent). */
  insertGroup(tenant: string, name: string): Promise<void>;
  /** Creates a role (idempotent). */
  insertRole(tenant: string, name: string): Promise<void>;
  /** Adds a member to a group (idempotent). */
  addGroupMember(tenant: string, row: GroupMemberRow): Promise<void>;
  /** Removes a member; false when absent. */
  removeGroupMember(tenant: string, row: GroupMemberRow): Promise<boolean>;
  /** Assigns a role (idempotent). */
  assignRole(tenant: string, row: RoleAssignmentRow): Promise<void>;
  /** Removes a role assignment; false when absent. */
  unassignRole(tenant: string, row: RoleAssignmentRow): Promise<boolean>;
  /** Adds a grant. */
  insertGrant(tenant: string, row: GrantRow): Promise<void>;
  /** Deletes a grant; false when absent. */
  deleteGrant(tenant: string, id: string): Promise<boolean>;
  /** Adds a delegation. */
  insertDelegation(tenant: string, row: DelegationRow): Promise<void>;
  /** Revokes a delegation; false when absent or already revoked. */
  revokeDelegation(tenant: string, id: string, now: number): Promise<boolean>;

  // Break-glass ---------------------------------------------------------------------------------
  /** Opens a session. */
  insertBreakGlass(tenant: string, row: BreakGlassRow): Promise<void>;
  /** A session; `lock` takes a row lock. */
  getBreakGlass(tenant: string, id: string, lock?: boolean): Promise<BreakGlassRow | null>;
  /** Sessions, newest first. */
  listBreakGlass(tenant: string, limit: number): Promise<BreakGlassRow[]>;
  /** Sessions open at `now`. */
  activeBreakGlass(tenant: string, now: number): Promise<BreakGlassRow[]>;
  /** Closes an open session by hand; false when already closed. */
  closeBreakGlass(
    tenant: string,
    id: string,
    by: string,
    reason: string,
    now: number,
  ): Promise<boolean>;
  /** Records the post-review; false when already reviewed. */
  reviewBreakGlass(
    tenant: string,
    id: string,
    by: string,
    review: string,
    now: number,
  ): Promise<boolean>;

  // Fleet, traces, findings ---------------------------------------------------------------------
  /** Inserts or updates a host from a heartbeat. */
  upsertHost(tenant: string, row: HostRow): Promise<void>;
  /** A host. */
  getHost(tenant: string, name: string): Promise<HostRow | null>;
  /** All hosts, by name. */
  listHosts(tenant: string): Promise<HostRow[]>;
  /** Stores spans, ignoring ones already stored; returns how many were new. */
  insertSpans(tenant: string, rows: SpanRow[]): Promise<number>;
  /** Spans, newest first. */
  querySpans(tenant: string, filter: SpanFilter): Promise<SpanRow[]>;
  /** Every span of one trace, by start time. */
  getTrace(tenant: string, traceId: string): Promise<SpanRow[]>;
  /** Inserts a finding, or bumps count and last_seen of the same host+fingerprint; true when new. */
  upsertFinding(tenant: string, row: FindingRow): Promise<boolean>;
  /** Findings, newest first. */
  queryFindings(tenant: string, filter: FindingFilter): Promise<FindingRow[]>;
  /** Stored span and finding counts. */
  getUsage(tenant: string): Promise<{ spans: number; findings: number }>;
  /** Adds to the stored counts. */
  addUsage(tenant: string, spans: number, findings: number): Promise<void>;
  /** Stores a countersigned anchor. */
  insertAnchor(tenant: string, row: AnchorRow): Promise<void>;
  /** The host's largest countersigned anchor. */
  latestAnchor(tenant: string, host: string): Promise<AnchorRow | null>;

  // Dashboard passkeys ------------------------------------------------------------------------
  /** Stores a passkey; false when that credential id is already registered in the tenant. */
  insertPasskey(tenant: string, row: PasskeyRow): Promise<boolean>;
  /** A passkey by credential id. */
  getPasskey(tenant: string, id: string): Promise<PasskeyRow | null>;
  /** A user's passkeys, oldest first. */
  listPasskeys(tenant: string, userId: string): Promise<PasskeyRow[]>;
  /** Deletes a passkey; false when absent. */
  deletePasskey(tenant: string, id: string): Promise<boolean>;
  /** Records a successful use of a passkey: the new counter and the time. */
  touchPasskey(tenant: string, id: string, counter: number, now: number): Promise<void>;
  /**
   * Records a passkey ceremony nonce as used (forgetting the tenant's expired ones first);
   * false when it was used before.
   */
  usePasskeyNonce(tenant: string, nonce: string, exp: number, now: number): Promise<boolean>;
  /** Stores the passkey proof of a vote. */
  insertApprovalProof(tenant: string, row: ApprovalProofRow): Promise<void>;
  /** The passkey proofs of a request's votes, oldest first. */
  listApprovalProofs(tenant: string, requestId: string): Promise<ApprovalProofRow[]>;

  // Evidence ------------------------------------------------------------------------------------
  /** Records one evidence record, to be chained by the sequencer (see `evidence.ts`). */
  insertPendingEvidence(tenant: string, row: Omit<PendingEvidenceRow, "id">): Promise<void>;
  /** The oldest pending evidence records, in insertion order. */
  listPendingEvidence(tenant: string, limit: number): Promise<PendingEvidenceRow[]>;
  /** The tenant's evidence log state (ledger `LedgerStateJson` text), locked until commit. */
  lockEvidenceHead(tenant: string): Promise<string | null>;
  /**
   * Where a backend that reuses one transaction object (SQLite) keeps the last parsed log
   * state per tenant, keyed by its text, so an unchanged head is not parsed again.
   */
  readonly evidenceStates?: Map<string, { text: string; state: LedgerState }>;
  /**
   * Appends chained lines from `seq` on (which must be the log's size), saves the new state and
   * deletes the pending records they were made from (`pendingIds`), all or nothing.
   */
  chainEvidence(
    tenant: string,
    seq: number,
    lines: string[],
    state: string,
    pendingIds: number[],
  ): Promise<void>;
  /** Chained lines from `fromSeq` on, in order. */
  readEvidence(tenant: string, fromSeq: number, limit: number): Promise<string[]>;
}

/** How a transaction may be run. */
export interface TxOptions {
  /**
   * May share its commit with other concurrent transactions flagged likewise (group commit,
   * SQLite: one writer, so transactions waiting for it are committed by one `COMMIT` and one
   * fsync). Each still runs alone under its own savepoint: one that throws undoes only its own
   * changes, and each settles only after the shared commit is durable. Default false.
   */
  group?: boolean;
}

/** A store: transactions over one database. */
export interface ControlStore {
  /** `sqlite` or `postgres`. */
  readonly backend: "sqlite" | "postgres";
  /**
   * Runs `fn` in a transaction: committed when it returns, rolled back when it throws. Safe
   * to call concurrently; the backend serializes or locks as needed. The promise settles only
   * once the outcome is durable (committed) or undone.
   */
  tx<T>(fn: (t: StoreTx) => Promise<T>, options?: TxOptions): Promise<T>;
  /** The applied migration versions. */
  migrations(): Promise<number[]>;
  /** Closes the database. */
  close(): Promise<void>;
}
