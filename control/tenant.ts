/**
 * Tenant administration used by the CLI and the API: create a tenant with its admin, first
 * policy and roles; add users with one-time sign-up links; personal API tokens; machine
 * identities enrolled directly by an operator or through one-time enrollment tokens; key
 * revocation. Every change is recorded in the tenant's evidence log.
 *
 * @module
 */
import {
  canonicalJson,
  decodeBase64Url,
  encodeBase64Url,
  isValidEd25519PublicKey,
  keyId,
} from "@infraveil/trust";
import { policyHash } from "@infraveil/policy";
import { appendEvidence } from "./evidence.ts";
import { ControlError } from "./error.ts";
import { defaultRandom, newId, newToken, parseToken, type Random, secretMatches } from "./_ids.ts";
import { compileText } from "./_context.ts";
import {
  type ControlStore,
  DEFAULT_SETTINGS,
  type IdentityKind,
  type IdentityRow,
  type StoreTx,
  type UserRow,
} from "./store.ts";

/** The policy a tenant starts with when none is given: everything is denied. */
export const DEFAULT_POLICY =
  `# Every action is denied until a policy version is proposed and approved.
policy "production" {
  version 1
}
`;

const TENANT_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;
const EMAIL_RE = /^[^\s@]{1,128}@[^\s@]{1,128}$/;
const IDENTITY_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** The audience of signed error replies to callers that could not be authenticated. */
const RESERVED_IDENTITY = "unknown";

/**
 * The canonical form of an email: lowercase, so matching (operators, duplicates) never
 * depends on how someone typed it.
 *
 * @param email the email as given
 * @returns the email, lowercased
 */
export function canonicalEmail(email: string): string {
  return email.toLowerCase();
}

/** Options of {@link initTenant}. */
export interface InitTenantOptions {
  /** Tenant name (lowercase letters, digits, `-`). */
  tenant: string;
  /** The admin's email. */
  adminEmail: string;
  /** The first active policy (default {@link DEFAULT_POLICY}). */
  policyText?: string;
  /** Clock, ms. */
  now?: () => number;
  /** Randomness. */
  random?: Random;
  /** How long the sign-up link is valid, seconds (default 7 days). */
  signupTtlSeconds?: number;
}

/** What {@link initTenant} created. */
export interface InitTenantResult {
  /** The admin's user id. */
  adminId: string;
  /** The one-time sign-up token (for `/signup?tenant=…&token=…`). */
  signupToken: string;
  /** The active policy hash. */
  policyHash: string;
}

/**
 * Creates a tenant: the tenant row and its evidence log, roles `admin`, `approver` and
 * `breakglass`, a grant letting `approver` approve everything, the admin (holding `admin`
 * and `approver`, status `invited` until sign-up), and the first active policy.
 *
 * @param store the store
 * @param options tenant, admin, policy, clock, randomness
 * @returns the admin's id, sign-up token and policy hash
 * @throws {ControlError} `CONFLICT` when the tenant exists, `BAD_REQUEST` for a bad name or
 *   email, `INVALID_POLICY` for a policy with lint errors
 */
export async function initTenant(
  store: ControlStore,
  options: InitTenantOptions,
): Promise<InitTenantResult> {
  const { tenant, adminEmail, now = Date.now, random = defaultRandom } = options;
  if (!TENANT_RE.test(tenant)) {
    throw new ControlError(
      "BAD_REQUEST",
      `Invalid tenant name "${tenant}": use lowercase letters, digits and '-', at most 63`,
    );
  }
  if (!EMAIL_RE.test(adminEmail)) {
    throw new ControlError("BAD_REQUEST", `Invalid admin email "${adminEmail}"`);
  }
  const text = options.policyText ?? DEFAULT_POLICY;
  compileText(text);
  const hash = policyHash(text);
  return await store.tx(async (t) => {
    const at = now();
    if (
      !(await t.createTenant(tenant, {
        createdAt: at,
        activePolicyHash: hash,
        settings: { ...DEFAULT_SETTINGS },
      }))
    ) {
      throw new ControlError("CONFLICT", `Tenant ${tenant} already exists`);
    }
    await appendEvidence(
      t,
      tenant,
      { type: "tenant.create", actor: "control", data: { tenant } },
      at,
    );
    for (const role of ["admin", "approver", "breakglass"]) await t.insertRole(tenant, role);
    await t.insertGrant(tenant, {
      id: newId("grt", random),
      role: "approver",
      action: "*",
      environment: "*",
      service: "*",
    });
    const { user, signupToken } = await addUser(t, tenant, {
      email: adminEmail,
      roles: ["admin", "approver"],
      actor: "control",
      now: at,
      random,
      signupTtlSeconds: options.signupTtlSeconds,
    });
    await t.insertPolicy(tenant, {
      hash,
      text,
      status: "active",
      createdAt: at,
      createdBy: user.id,
      activatedAt: at,
    });
    await appendEvidence(t, tenant, {
      type: "policy.activate",
      actor: "control",
      data: { policy_hash: hash, previous: null, request_id: null, bootstrap: true },
    }, at);
    return { adminId: user.id, signupToken, policyHash: hash };
  });
}

/**
 * Adds a user (status `invited`) with roles and a one-time sign-up token, inside a
 * transaction.
 *
 * @param t the transaction
 * @param tenant the tenant
 * @param options email, roles, actor, clock, randomness
 * @returns the user and the sign-up token
 */
export async function addUser(
  t: StoreTx,
  tenant: string,
  options: {
    email: string;
    roles?: string[];
    actor: string;
    now: number;
    random: Random;
    signupTtlSeconds?: number;
  },
): Promise<{ user: UserRow; signupToken: string }> {
  const { roles = [], actor, now, random, signupTtlSeconds = 7 * 86_400 } = options;
  if (!EMAIL_RE.test(options.email)) {
    throw new ControlError("BAD_REQUEST", `Invalid email "${options.email}"`);
  }
  const email = canonicalEmail(options.email);
  const user: UserRow = {
    id: newId("usr", random),
    email,
    displayName: null,
    status: "invited",
    createdAt: now,
  };
  if (!(await t.insertUser(tenant, user))) {
    throw new ControlError("CONFLICT", `User ${email} already exists in tenant ${tenant}`);
  }
  for (const role of roles) {
    await t.insertRole(tenant, role);
    await t.assignRole(tenant, { subjectKind: "user", subject: user.id, role });
  }
  const tok = newToken("ivs", random);
  await t.insertToken(tenant, {
    id: tok.id,
    userId: user.id,
    kind: "signup",
    hash: tok.hash,
    label: "sign-up link",
    createdAt: now,
    expiresAt: now + signupTtlSeconds * 1000,
    usedAt: null,
    revokedAt: null,
  });
  await appendEvidence(t, tenant, {
    type: "user.create",
    actor,
    data: { user: user.id, email, roles },
  }, now);
  return { user, signupToken: tok.token };
}

/**
 * Redeems a one-time sign-up token: activates the user and returns a personal API token.
 *
 * @param t the transaction
 * @param tenant the tenant
 * @param token the sign-up token
 * @param options clock, randomness, display name
 * @returns the user and an API token
 */
export async function redeemSignup(
  t: StoreTx,
  tenant: string,
  token: string,
  options: { now: number; random: Random; displayName?: string },
): Promise<{ user: UserRow; apiToken: string }> {
  const parsed = parseToken(token, "ivs");
  const bad = new ControlError(
    "UNAUTHENTICATED",
    "Invalid, used or expired sign-up token; ask an admin for a new link",
  );
  if (!parsed) throw bad;
  const row = await t.getToken(tenant, parsed.id);
  if (!row || row.kind !== "signup" || !secretMatches(parsed.secret, row.hash)) throw bad;
  if (row.revokedAt !== null || (row.expiresAt !== null && row.expiresAt <= options.now)) throw bad;
  if (!(await t.useToken(tenant, row.id, options.now))) throw bad;
  const user = await t.getUser(tenant, row.userId);
  if (!user || user.status === "disabled") throw bad;
  await t.setUserStatus(tenant, user.id, "active");
  user.status = "active";
  const api = await createApiToken(t, tenant, user, {
    label: "sign-up",
    now: options.now,
    random: options.random,
  });
  await appendEvidence(t, tenant, {
    type: "user.signup",
    actor: `user:${user.email}`,
    data: { user: user.id },
  }, options.now);
  return { user, apiToken: api };
}

/**
 * Creates a personal API token (or a session token) for a user.
 *
 * @param t the transaction
 * @param tenant the tenant
 * @param user the owner
 * @param options label, kind, lifetime, clock, randomness
 * @returns the token text (shown once)
 */
export async function createApiToken(
  t: StoreTx,
  tenant: string,
  user: UserRow,
  options: {
    label?: string;
    kind?: "api" | "session";
    ttlSeconds?: number;
    now: number;
    random: Random;
  },
): Promise<string> {
  const { label = null, kind = "api", ttlSeconds, now, random } = options;
  const tok = newToken("ivt", random);
  await t.insertToken(tenant, {
    id: tok.id,
    userId: user.id,
    kind,
    hash: tok.hash,
    label,
    createdAt: now,
    expiresAt: ttlSeconds ? now + ttlSeconds * 1000 : null,
    usedAt: null,
    revokedAt: null,
  });
  await appendEvidence(t, tenant, {
    type: "token.create",
    actor: `user:${user.email}`,
    data: { token_id: tok.id, kind, label },
  }, now);
  return tok.token;
}

/**
 * Checks an identity name and kind.
 *
 * @param name the name
 * @param kind the kind
 * @param operator the operator email (required for MCP identities)
 */
export function checkIdentity(name: string, kind: string, operator: string | null): void {
  if (!IDENTITY_RE.test(name)) {
    throw new ControlError(
      "BAD_REQUEST",
      `Invalid identity name "${name}": use 1–128 letters, digits, '.', '_' or '-'`,
    );
  }
  if (kind !== "agent" && kind !== "mcp") {
    throw new ControlError("BAD_REQUEST", `Invalid identity kind "${kind}": "agent" or "mcp"`);
  }
  if (name === RESERVED_IDENTITY) {
    throw new ControlError(
      "BAD_REQUEST",
      `Invalid identity name "${name}": reserved (replies to unauthenticated calls go to <tenant>/${RESERVED_IDENTITY})`,
    );
  }
  if (kind === "mcp" && (operator === null || !EMAIL_RE.test(operator))) {
    throw new ControlError(
      "BAD_REQUEST",
      "An MCP identity needs --operator EMAIL: the human who operates it (they can never approve its requests)",
    );
  }
}

const LABEL_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** The environment and service a host is enrolled with. */
export interface HostLabels {
  /** The environment (required for agents, absent for MCP identities). */
  environment?: string | null;
  /** The service (optional for agents, absent for MCP identities). */
  service?: string | null;
}

/**
 * Checks the labels of an identity: an agent needs an environment and may have a service; an
 * MCP identity has neither.
 *
 * @param name the identity name
 * @param kind the kind
 * @param labels environment and service
 * @returns the labels, null where absent
 * @throws {ControlError} `BAD_REQUEST` naming the label and how to fix it
 */
export function checkHostLabels(
  name: string,
  kind: string,
  labels: HostLabels,
): { environment: string | null; service: string | null } {
  const environment = labels.environment ?? null;
  const service = labels.service ?? null;
  if (kind !== "agent") {
    if (environment !== null || service !== null) {
      throw new ControlError(
        "BAD_REQUEST",
        `${kind} identity ${name} takes no --environment or --service: only hosts (agents) are labelled`,
        { details: { field: environment !== null ? "environment" : "service" } },
      );
    }
    return { environment, service };
  }
  if (environment === null) {
    throw new ControlError(
      "BAD_REQUEST",
      `Agent identity ${name} needs --environment ENV (the "environment" field): the environment the host runs in, as the policy names it (e.g. production); requests naming the host must be for it`,
      { details: { field: "environment" } },
    );
  }
  for (const [field, v] of [["environment", environment], ["service", service]] as const) {
    if (v !== null && !LABEL_RE.test(v)) {
      throw new ControlError(
        "BAD_REQUEST",
        `Invalid ${field} "${v}" for agent ${name}: use 1–128 letters, digits, '.', '_' or '-'`,
        { details: { field } },
      );
    }
  }
  return { environment, service };
}

/**
 * Resolves an MCP identity's operator to an existing user of the tenant, ignoring case.
 *
 * @param t the transaction
 * @param tenant the tenant
 * @param operator the operator email as given
 * @returns the user's email as stored
 * @throws {ControlError} `BAD_REQUEST` when no user has that email
 */
export async function resolveOperator(
  t: StoreTx,
  tenant: string,
  operator: string,
): Promise<string> {
  const wanted = canonicalEmail(operator);
  const user = await t.getUserByEmail(tenant, wanted) ??
    (await t.loadAuthority(tenant)).users.find((u) => canonicalEmail(u.email) === wanted);
  if (!user) {
    throw new ControlError(
      "BAD_REQUEST",
      `Operator ${operator} is not a user of tenant ${tenant}: add them first (POST /v1/t/${tenant}/users), so that they can never approve this identity's requests`,
      { details: { field: "operator" } },
    );
  }
  return canonicalEmail(user.email);
}

/**
 * Enrolls a machine identity's public key (by an operator on the control plane's host, or
 * after an enrollment token was checked).
 *
 * @param t the transaction
 * @param tenant the tenant
 * @param options name, kind, key, operator (an existing user, for MCP identities), labels
 *   (environment required for agents), actor, clock
 * @returns the identity row
 * @throws {ControlError} `BAD_REQUEST` for a bad name, label, operator or key (a key that is
 *   not a valid Ed25519 point or is of small order is refused), `CONFLICT` when enrolled
 */
export async function enrollIdentity(
  t: StoreTx,
  tenant: string,
  options: {
    name: string;
    kind: IdentityKind;
    publicKey: Uint8Array;
    operator: string | null;
    environment?: string | null;
    service?: string | null;
    actor: string;
    now: number;
    via: string;
  },
): Promise<IdentityRow> {
  const { name, kind, publicKey, actor, now, via } = options;
  checkIdentity(name, kind, options.operator);
  const labels = checkHostLabels(name, kind, options);
  if (!isValidEd25519PublicKey(publicKey)) {
    throw new ControlError(
      "BAD_REQUEST",
      `Cannot enroll ${kind} ${name}: the public key is not a valid Ed25519 public key (32 bytes, a canonical curve point, not small-order; a small-order key would let anyone forge its signatures). Generate a new key`,
      { details: { field: "public" } },
    );
  }
  const operator = kind === "mcp" ? await resolveOperator(t, tenant, options.operator!) : null;
  const row: IdentityRow = {
    name,
    kind,
    kid: keyId(publicKey),
    publicKey: encodeBase64Url(publicKey),
    operator,
    environment: labels.environment,
    service: labels.service,
    status: "active",
    createdAt: now,
    revokedAt: null,
  };
  if (!(await t.insertIdentity(tenant, row))) {
    throw new ControlError(
      "CONFLICT",
      `Identity ${name} already has an active key (or key ${row.kid} is enrolled); revoke it first`,
    );
  }
  await appendEvidence(t, tenant, {
    type: "identity.enroll",
    actor,
    data: {
      name,
      kind,
      kid: row.kid,
      operator: row.operator,
      environment: row.environment,
      service: row.service,
      via,
    },
  }, now);
  return row;
}

/**
 * Creates a one-time enrollment token for an identity.
 *
 * @param t the transaction
 * @param tenant the tenant
 * @param options name, kind, operator (an existing user, for MCP identities), labels
 *   (environment required for agents), creator, lifetime, clock, randomness
 * @returns the token text (shown once)
 */
export async function createEnrollmentToken(
  t: StoreTx,
  tenant: string,
  options: {
    name: string;
    kind: IdentityKind;
    operator: string | null;
    environment?: string | null;
    service?: string | null;
    createdBy: string;
    ttlSeconds?: number;
    now: number;
    random: Random;
  },
): Promise<{ token: string; expiresAt: number }> {
  const { name, kind, createdBy, ttlSeconds = 3600, now, random } = options;
  checkIdentity(name, kind, options.operator);
  const labels = checkHostLabels(name, kind, options);
  const operator = kind === "mcp" ? await resolveOperator(t, tenant, options.operator!) : null;
  const tok = newToken("ive", random);
  const expiresAt = now + ttlSeconds * 1000;
  await t.insertEnrollmentToken(tenant, {
    id: tok.id,
    hash: tok.hash,
    name,
    kind,
    operator,
    environment: labels.environment,
    service: labels.service,
    createdBy,
    createdAt: now,
    expiresAt,
    usedAt: null,
  });
  await appendEvidence(t, tenant, {
    type: "identity.enrollment_token",
    actor: createdBy,
    data: {
      name,
      kind,
      token_id: tok.id,
      environment: labels.environment,
      service: labels.service,
      expires_at: new Date(expiresAt).toISOString(),
    },
  }, now);
  return { token: tok.token, expiresAt };
}

/**
 * Redeems an enrollment token for a public key whose possession the caller already proved.
 *
 * @param t the transaction
 * @param tenant the tenant
 * @param options token, claimed name and kind, key, clock
 * @returns the identity
 */
export async function redeemEnrollmentToken(
  t: StoreTx,
  tenant: string,
  options: { token: string; name: string; kind: string; publicKey: Uint8Array; now: number },
): Promise<IdentityRow> {
  const parsed = parseToken(options.token, "ive");
  const bad = new ControlError(
    "TOKEN_USED",
    "Invalid, used or expired enrollment token; create a new one",
  );
  if (!parsed) throw bad;
  const row = await t.claimEnrollmentToken(tenant, parsed.id, options.now);
  // A wrong secret throws, rolling the claim back with the transaction.
  if (!row || !secretMatches(parsed.secret, row.hash)) throw bad;
  if (row.name !== options.name || row.kind !== options.kind) {
    throw new ControlError(
      "FORBIDDEN",
      `Enrollment token is for ${row.kind} "${row.name}", not ${options.kind} "${options.name}"`,
    );
  }
  return await enrollIdentity(t, tenant, {
    name: row.name,
    kind: row.kind,
    publicKey: options.publicKey,
    operator: row.operator,
    environment: row.environment,
    service: row.service,
    actor: `${row.kind}:${row.name}`,
    now: options.now,
    via: `enrollment-token:${row.id}`,
  });
}

/**
 * Revokes the active key of an identity.
 *
 * @param t the transaction
 * @param tenant the tenant
 * @param name the identity name
 * @param actor who revokes
 * @param now the time, ms
 * @returns the revoked key id
 */
export async function revokeIdentity(
  t: StoreTx,
  tenant: string,
  name: string,
  actor: string,
  now: number,
): Promise<string> {
  const id = await t.getActiveIdentity(tenant, name);
  if (!id) throw new ControlError("NOT_FOUND", `Identity ${name} has no active key`);
  await t.deactivateIdentity(tenant, id.kid, "revoked", now);
  await appendEvidence(t, tenant, {
    type: "identity.revoke",
    actor,
    data: { name, kind: id.kind, kid: id.kid },
  }, now);
  return id.kid;
}

/** The message a new key signs to prove possession during rotation. */
export function rotationProofMessage(
  fields: { tenant: string; name: string; old_kid: string; new_kid: string; nonce: string },
): Uint8Array {
  return new TextEncoder().encode("infraveil-rotate/v1\n" + canonicalJson(fields));
}

/**
 * Decodes a base64url public key field, refusing anything but a valid Ed25519 public key (a
 * canonical curve point that is not small-order).
 *
 * @param text the field's value
 * @param field the field's name, for the message
 * @returns the raw key
 * @throws {ControlError} `BAD_REQUEST` naming the field
 */
export function decodePublicKey(text: unknown, field: string): Uint8Array {
  try {
    if (typeof text === "string") {
      const b = decodeBase64Url(text);
      if (isValidEd25519PublicKey(b)) return b;
    }
  } catch {
    // fall through
  }
  throw new ControlError(
    "BAD_REQUEST",
    `Invalid field "${field}": a base64url 32-byte Ed25519 public key (a canonical curve point, not small-order); generate a new key`,
    {
      details: { field },
    },
  );
}
