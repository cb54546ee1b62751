/**
 * The approval queue: requests are decided against the active policy at once (denied,
 * pending, allowed), identical pending requests fold into one, humans vote, and an approved
 * request yields one signed approval bound to the exact action's canonical hash, its targets
 * and an expiry. Every decision and vote is appended to the evidence log in the same
 * transaction as the change it records.
 *
 * @module
 */
import {
  type CompiledPolicy,
  type Decision,
  evaluate,
  type PolicyAction,
  validateAction,
} from "@infraveil/policy";
import { canonicalJson, sha256Hex } from "@infraveil/trust";
import {
  actionHash,
  APPROVAL_AUDIENCE,
  type ApprovalPayload,
  type ExactAction,
} from "./approval.ts";
import { AuthorityGraph, type PathStep } from "./authority.ts";
import { activePolicy, compiledPolicy, compileText, type Ctx, iso } from "./_context.ts";
import { appendEvidence, evidenceRecord } from "./evidence.ts";
import { ControlError } from "./error.ts";
import { newId, newNonce } from "./_ids.ts";
import { NAME_HINT, NAME_RE, type Obj, object, optStr, optStrArray } from "./_validate.ts";
import { sessionCovers } from "./_breakglass.ts";
import type { JsonValue } from "@infraveil/ledger";
import type {
  BreakGlassRow,
  IdentityRow,
  RequestRow,
  StoreTx,
  TenantRow,
  UserRow,
} from "./store.ts";

/** Who is asking. */
export interface Requester {
  /** `mcp`, `agent` or `user`. */
  kind: "mcp" | "agent" | "user";
  /** Identity name or user id. */
  name: string;
  /** Evidence actor, e.g. `mcp:claude`. */
  actor: string;
  /** The human operating the identity (email), if any. */
  operator: string | null;
}

/** The fields of a request body. */
export const ACTION_FIELDS = [
  "action",
  "environment",
  "service",
  "targets",
  "files",
  "category",
  "reason",
  "params",
] as const;

/**
 * Reads an action from a request body and builds the exact action.
 *
 * @param agent the requesting identity's name (the policy's `agent`)
 * @param body the body (only {@link ACTION_FIELDS})
 * @returns the policy input and the exact action
 */
export function readAction(agent: string, body: Obj): { policy: PolicyAction; exact: ExactAction } {
  object(body, ACTION_FIELDS as unknown as string[]);
  const action = optStr(body, "action", { max: 64 });
  if (action === undefined) {
    throw new ControlError("BAD_REQUEST", 'Invalid field "action": required (e.g. "deploy")', {
      details: { field: "action" },
    });
  }
  const targets = optStrArray(body, "targets", {
    maxItems: 100,
    pattern: NAME_RE,
    patternHint: NAME_HINT,
  });
  if (!targets || targets.length === 0) {
    throw new ControlError(
      "BAD_REQUEST",
      'Invalid field "targets": name at least one target host',
      { details: { field: "targets" } },
    );
  }
  const policy: PolicyAction = { agent, action, targets: [...targets].sort() };
  for (const f of ["environment", "service", "category", "reason"] as const) {
    const v = optStr(body, f, { max: f === "reason" ? 2000 : 256 });
    if (v !== undefined) policy[f] = v;
  }
  const files = optStrArray(body, "files", { maxItems: 10_000, max: 4096 });
  if (files !== undefined) policy.files = files;
  const errors = validateAction(policy);
  if (errors.length > 0) {
    const e = errors[0];
    throw new ControlError("BAD_REQUEST", `Invalid action at ${e.path}: ${e.message}`, {
      details: { field: e.path.replace(/^\$\.?/, ""), errors: errors as unknown as JsonValue },
    });
  }
  const exact: ExactAction = { ...policy, targets: policy.targets! };
  if (body.params !== undefined && body.params !== null) {
    if (typeof body.params !== "object" || Array.isArray(body.params)) {
      throw new ControlError("BAD_REQUEST", 'Invalid field "params": must be an object', {
        details: { field: "params" },
      });
    }
    try {
      if (canonicalJson(body.params).length > 16_384) throw new Error("too large");
    } catch {
      throw new ControlError(
        "BAD_REQUEST",
        'Invalid field "params": plain JSON of at most 16 KiB',
        {
          details: { field: "params" },
        },
      );
    }
    exact.params = body.params as Record<string, unknown>;
  }
  return { policy, exact };
}

/** The result of creating a request. */
export interface CreateResult {
  /** Request id. */
  request_id: string;
  /** `denied`, `pending` or `allowed`. */
  status: "denied" | "pending" | "allowed";
  /** Why. */
  reasons: unknown[];
  /** Approvals still needed. */
  approvals_needed: number;
  /** Where humans approve it. */
  dashboard_url: string;
  /** True when an identical pending request already existed and this folded into it. */
  folded: boolean;
  /** Hash of the exact action. */
  action_hash: string;
  /** Policy hash used. */
  policy_hash: string | null;
  /** Break-glass session that let it through, if any. */
  break_glass: string | null;
}

const NO_POLICY_REASON = {
  rule: "control.no_policy",
  effect: "deny",
  message: "the tenant has no active policy: every action is denied",
  file: "control",
  line: 0,
  col: 0,
};

/**
 * The dashboard link of a request.
 *
 * @param ctx the context
 * @param tenant tenant
 * @param id request id
 * @returns the URL
 */
export function dashboardUrl(ctx: Ctx, tenant: string, id: string): string {
  return `${ctx.publicUrl}/dashboard/t/${encodeURIComponent(tenant)}/requests/${
    encodeURIComponent(id)
  }`;
}

/** A decision by the policy alone, before break-glass sessions are considered. */
interface Evaluated {
  compiled: CompiledPolicy | null;
  decision: Decision | null;
}

async function evaluateActive(
  ctx: Ctx,
  t: StoreTx,
  tenant: TenantRow,
  policy: PolicyAction,
  now: number,
): Promise<Evaluated> {
  const compiled = await activePolicy(ctx, t, tenant);
  return { compiled, decision: compiled ? evaluate(compiled, policy, { now }) : null };
}

/** Whether the decision could change with a break-glass session (so sessions must be read). */
function mayBreakGlass(e: Evaluated): boolean {
  return e.decision !== null && e.decision.decision !== "allow";
}

function decideWith(
  e: Evaluated,
  policy: PolicyAction,
  open: BreakGlassRow[],
  now: number,
): {
  status: CreateResult["status"];
  reasons: unknown[];
  approvals: number;
  policyHash: string | null;
  environment: string | null;
  session: BreakGlassRow | null;
} {
  const { compiled } = e;
  if (!compiled || !e.decision) {
    return {
      status: "denied",
      reasons: [NO_POLICY_REASON],
      approvals: 0,
      policyHash: null,
      environment: policy.environment ?? null,
      session: null,
    };
  }
  let d = e.decision;
  let session: BreakGlassRow | null = null;
  if (d.decision !== "allow") {
    const covering = open.find((s) => sessionCovers(s, policy, d.environment));
    if (covering) {
      const lifted = evaluate(compiled, policy, { now, breakGlass: true });
      if (lifted.decision !== "deny") {
        d = lifted;
        session = covering;
      }
    }
  }
  const status = d.decision === "deny"
    ? "denied"
    : d.decision === "allow" || session
    ? "allowed"
    : "pending";
  const reasons: unknown[] = [...d.reasons];
  if (session) {
    reasons.push({
      rule: "control.break_glass",
      effect: "allow",
      message:
        `break-glass session ${session.id} covers this action: approval skipped, evidence kept`,
      file: "control",
      line: 0,
      col: 0,
    });
  }
  return {
    status,
    reasons,
    approvals: status === "pending" ? Math.max(1, d.approvals) : 0,
    policyHash: compiled.hash,
    environment: d.environment,
    session,
  };
}

async function decide(
  ctx: Ctx,
  t: StoreTx,
  tenant: TenantRow,
  policy: PolicyAction,
  now: number,
): Promise<ReturnType<typeof decideWith>> {
  const e = await evaluateActive(ctx, t, tenant, policy, now);
  const open = mayBreakGlass(e) ? await t.activeBreakGlass(tenant.name, now) : [];
  return decideWith(e, policy, open, now);
}

/**
 * The active identities of a request's targets, in order (null where none).
 *
 * @param t the transaction
 * @param tenant the tenant
 * @param policy the action
 * @returns one row or null per target
 */
function targetHosts(
  t: StoreTx,
  tenant: string,
  policy: PolicyAction,
): Promise<(IdentityRow | null)[]> {
  return Promise.all((policy.targets ?? []).map((h) => t.getActiveIdentity(tenant, h)));
}

/**
 * Binds a request's labels to its hosts: every target must be an enrolled agent of the
 * tenant, enrolled in the request's environment (the action's, or the policy block the
 * evaluation selected) and, when the request names a service, for that service. The labels
 * are the requester's words; the hosts' are the enrolling admin's.
 *
 * @param hosts the targets' identities, as {@link targetHosts} returns them
 * @param tenant the tenant
 * @param policy the action
 * @param environment the environment the request is decided in, or null when none could be
 *   determined (the policy denies it then)
 * @throws {ControlError} `FORBIDDEN` naming the target, its labels and the request's
 */
export function bindTargets(
  hosts: (IdentityRow | null)[],
  tenant: string,
  policy: PolicyAction,
  environment: string | null,
): void {
  const targets = policy.targets ?? [];
  const label = (v: string | null) => (v === null ? "(none recorded)" : `"${v}"`);
  for (const [i, host] of hosts.entries()) {
    const target = targets[i];
    const details = {
      field: "targets",
      target,
      host_environment: host?.environment ?? null,
      host_service: host?.service ?? null,
      environment,
      service: policy.service ?? null,
    };
    if (!host || host.kind !== "agent") {
      throw new ControlError(
        "FORBIDDEN",
        `Target ${target} is not an enrolled host of tenant ${tenant}: enroll it first (infraveil control enroll --kind agent --environment ENV), then request again`,
        { details },
      );
    }
    if (environment !== null && host.environment !== environment) {
      throw new ControlError(
        "FORBIDDEN",
        `Target ${target} is enrolled in environment ${label(host.environment)} (service ${
          label(host.service)
        }), but the request is for environment "${environment}": a request may only name hosts of its own environment`,
        { details },
      );
    }
    if (policy.service !== undefined && host.service !== policy.service) {
      throw new ControlError(
        "FORBIDDEN",
        `Target ${target} is enrolled for service ${label(host.service)} (environment ${
          label(host.environment)
        }), but the request names service "${policy.service}": name only hosts of that service, or omit "service"`,
        { details },
      );
    }
  }
}

/**
 * Evaluates a request without storing anything (a dry run).
 *
 * @param ctx the context
 * @param t the transaction
 * @param tenant the tenant
 * @param requester who asks
 * @param body the action fields
 * @returns decision, reasons, approvals and hashes
 */
export async function checkRequest(
  ctx: Ctx,
  t: StoreTx,
  tenant: TenantRow,
  requester: Requester,
  body: Obj,
): Promise<Record<string, unknown>> {
  const { policy, exact } = readAction(requester.name, body);
  const [d, hosts] = await Promise.all([
    decide(ctx, t, tenant, policy, ctx.now()),
    targetHosts(t, tenant.name, policy),
  ]);
  bindTargets(hosts, tenant.name, policy, policy.environment ?? d.environment);
  return {
    decision: d.status === "denied"
      ? "deny"
      : d.status === "allowed"
      ? "allow"
      : "approval_required",
    status: d.status,
    reasons: d.reasons,
    approvals_needed: d.approvals,
    policy_hash: d.policyHash,
    action_hash: actionHash(exact),
    break_glass: d.session?.id ?? null,
  };
}

/**
 * Creates a request: rate limit, fold, decide, store, evidence, and (when allowed) issue the
 * signed approval.
 *
 * @param ctx the context
 * @param t the transaction
 * @param tenant the tenant
 * @param requester who asks
 * @param body the action fields
 * @returns the outcome
 */
export async function createRequest(
  ctx: Ctx,
  t: StoreTx,
  tenant: TenantRow,
  requester: Requester,
  body: Obj,
): Promise<CreateResult> {
  const now = ctx.now();
  const { policy, exact } = readAction(requester.name, body);
  const hash = actionHash(exact);
  const windowStart = Math.floor(now / 60_000) * 60_000;
  // The policy is evaluated first (in memory), so the rate limit, the fold check, the target
  // hosts and, when the decision could depend on one, the open break-glass sessions are read
  // together: one statement on PostgreSQL.
  const evaluated = await evaluateActive(ctx, t, tenant, policy, now);
  const { hits, pending: existing, breakGlass: open, hosts } = await t.requestChecks(
    tenant.name,
    {
      bucket: `request:${requester.kind}:${requester.name}`,
      windowStart,
      actionHash: hash,
      breakGlass: mayBreakGlass(evaluated),
      now,
      targets: policy.targets ?? [],
    },
  );
  if (hits > tenant.settings.rate_limit_per_minute) {
    throw new ControlError(
      "RATE_LIMITED",
      `Identity ${requester.name} made more than ${tenant.settings.rate_limit_per_minute} requests this minute; retry after ${
        iso(windowStart + 60_000)
      }`,
      { details: { retry_after: iso(windowStart + 60_000) } },
    );
  }
  bindTargets(
    hosts,
    tenant.name,
    policy,
    policy.environment ?? evaluated.decision?.environment ?? null,
  );
  const folded = existing && await foldInto(ctx, t, tenant, existing, requester, now);
  if (folded) return folded;

  const d = decideWith(evaluated, policy, open, now);
  const id = newId("req", ctx.random);
  const row: RequestRow = {
    id,
    kind: "action",
    action: exact as unknown as Record<string, unknown>,
    actionHash: hash,
    requester: requester.name,
    requesterKind: requester.kind,
    operator: requester.operator,
    environment: d.environment ?? policy.environment ?? null,
    service: policy.service ?? null,
    targets: exact.targets,
    status: d.status,
    decision: { reasons: d.reasons, approvals: d.approvals },
    approvalsRequired: d.approvals,
    policyHash: d.policyHash,
    breakGlass: d.session?.id ?? null,
    createdAt: now,
    updatedAt: now,
    expiresAt: now + tenant.settings.request_ttl_seconds * 1000,
  };
  // The decision's evidence is recorded only if the row goes in (one statement on PostgreSQL).
  const inserted = await t.insertRequestWithEvidence(
    tenant.name,
    row,
    evidenceRecord({
      type: "request.decision",
      actor: requester.actor,
      data: {
        request_id: id,
        status: d.status,
        action: exact as unknown as JsonValue,
        action_hash: hash,
        policy_hash: d.policyHash,
        approvals_needed: d.approvals,
        reasons: d.reasons as JsonValue,
        break_glass: d.session?.id ?? null,
        operator: requester.operator,
      },
    }, now),
    // Nothing follows unless an approval is to be issued: the insert may carry the COMMIT.
    { last: d.status !== "allowed" },
  );
  if (!inserted) {
    // A concurrent identical request won the fold race.
    const existing = await t.getPendingRequest(tenant.name, hash);
    const again = existing && await foldInto(ctx, t, tenant, existing, requester, now);
    if (again) return again;
    throw new ControlError("CONFLICT", "An identical request is being created; retry");
  }
  if (d.status === "allowed") {
    await issueApproval(ctx, t, tenant, row, d.session ? "break-glass" : "policy", []);
  }
  return {
    request_id: id,
    status: d.status,
    reasons: d.reasons,
    approvals_needed: d.approvals,
    dashboard_url: dashboardUrl(ctx, tenant.name, id),
    folded: false,
    action_hash: hash,
    policy_hash: d.policyHash,
    break_glass: d.session?.id ?? null,
  };
}

async function foldInto(
  ctx: Ctx,
  t: StoreTx,
  tenant: TenantRow,
  existing: RequestRow,
  requester: Requester,
  now: number,
): Promise<CreateResult | null> {
  const hash = existing.actionHash;
  if (await expireIfDue(ctx, t, tenant.name, existing, now)) return null;
  await appendEvidence(t, tenant.name, {
    type: "request.folded",
    actor: requester.actor,
    data: { request_id: existing.id, action_hash: hash },
  }, now);
  const votes = await t.listVotes(tenant.name, existing.id);
  const have = votes.filter((v) => v.decision === "approve" && v.expiresAt > now).length;
  return {
    request_id: existing.id,
    status: "pending",
    reasons: (existing.decision.reasons as unknown[]) ?? [],
    approvals_needed: Math.max(0, existing.approvalsRequired - have),
    dashboard_url: dashboardUrl(ctx, tenant.name, existing.id),
    folded: true,
    action_hash: hash,
    policy_hash: existing.policyHash,
    break_glass: null,
  };
}

/**
 * Expires a pending request whose time is up (recording it). Returns true when it expired.
 *
 * @param ctx the context
 * @param t the transaction
 * @param tenant tenant name
 * @param req the request
 * @param now the time, ms
 * @returns whether it is (now) expired
 */
export async function expireIfDue(
  _ctx: Ctx,
  t: StoreTx,
  tenant: string,
  req: RequestRow,
  now: number,
): Promise<boolean> {
  if (req.status !== "pending" || req.expiresAt > now) return false;
  await t.setRequestStatus(tenant, req.id, "expired", now);
  req.status = "expired";
  await appendEvidence(t, tenant, {
    type: "request.expired",
    actor: "control",
    data: { request_id: req.id, expired_at: iso(req.expiresAt) },
  }, now);
  return true;
}

/**
 * Signs and stores the approval of an approved or allowed action request.
 *
 * @param ctx the context
 * @param t the transaction
 * @param tenant the tenant
 * @param req the request
 * @param basis why it may run
 * @param approvedBy approvers' emails
 * @returns the approval id
 */
export async function issueApproval(
  ctx: Ctx,
  t: StoreTx,
  tenant: TenantRow,
  req: RequestRow,
  basis: ApprovalPayload["basis"],
  approvedBy: string[],
): Promise<string> {
  const now = ctx.now();
  const iat = Math.floor(now / 1000);
  const exp = iat + tenant.settings.signed_approval_ttl_seconds;
  const id = newId("apv", ctx.random);
  const payload: ApprovalPayload = {
    type: "approval",
    tenant: tenant.name,
    aud: APPROVAL_AUDIENCE,
    iat,
    exp,
    nonce: id,
    approval_id: id,
    request_id: req.id,
    action: req.action as unknown as ExactAction,
    action_hash: req.actionHash,
    targets: req.targets,
    policy_hash: req.policyHash,
    basis,
    approved_by: approvedBy,
    break_glass: req.breakGlass,
  };
  const envelope = await ctx.signer.sign(payload);
  await t.insertSignedApproval(tenant.name, {
    id,
    requestId: req.id,
    envelope: JSON.stringify(envelope),
    actionHash: req.actionHash,
    expiresAt: exp * 1000,
    createdAt: now,
  }, req.targets);
  await appendEvidence(t, tenant.name, {
    type: "approval.issued",
    actor: "control",
    data: {
      approval_id: id,
      request_id: req.id,
      action_hash: req.actionHash,
      targets: req.targets,
      basis,
      approved_by: approvedBy,
      break_glass: req.breakGlass,
      expires_at: iso(exp * 1000),
      sig: envelope.sig,
    },
  }, now);
  return id;
}

/**
 * What an approver approves for a request.
 *
 * @param req the request
 * @returns action, environment and service
 */
export function approvalTarget(
  req: RequestRow,
): { action: string; environment: string | null; service: string | null } {
  return req.kind === "policy.activate"
    ? { action: "policy.activate", environment: null, service: null }
    : { action: String(req.action.action), environment: req.environment, service: req.service };
}

/**
 * The users who may never approve a request: its requester and the requesting identity's
 * operator.
 *
 * @param graph the authority graph
 * @param req the request
 * @returns user ids
 */
export function excludedApprovers(graph: AuthorityGraph, req: RequestRow): Set<string> {
  const out = new Set<string>();
  if (req.requesterKind === "user") out.add(req.requester);
  if (req.operator) {
    // Emails match whatever their case: "Dave@x" operating an identity excludes "dave@x".
    const operator = req.operator.toLowerCase();
    for (const u of graph.data.users) if (u.email.toLowerCase() === operator) out.add(u.id);
  }
  return out;
}

/**
 * Whether token approvals (no presence proof) are allowed for an environment.
 *
 * @param tenant the tenant
 * @param environment the environment, or `policy` for policy activation
 * @returns true when allowed
 */
export function tokenApprovalsAllowed(tenant: TenantRow, environment: string | null): boolean {
  const key = environment ?? "*";
  const set = tenant.settings.token_approvals[key];
  if (set !== undefined) return set;
  // Off unless the tenant opted in: per environment (`token_approvals`), or for every
  // environment (`token_approvals_default`, false by default); policy activation only by name.
  if (key === "policy") return false;
  return tenant.settings.token_approvals_default === true;
}

/** A vote to cast. */
export interface VoteInput {
  /** Approve or reject. */
  decision: "approve" | "reject";
  /** Presence proof (e.g. a passkey assertion), verified by the pluggable verifier. */
  proof?: unknown;
  /** Free text. */
  comment?: string;
}

/** The outcome of a vote. */
export interface VoteResult {
  /** Request id. */
  request_id: string;
  /** Status after the vote. */
  status: string;
  /** Approvals still needed. */
  approvals_needed: number;
  /** The signed approval issued by this vote, if any. */
  approval_id: string | null;
}

/**
 * Casts a human vote. Refusals (self-approval, not eligible, proof missing) are recorded as
 * evidence before the error is returned.
 *
 * @param ctx the context
 * @param tenantName the tenant
 * @param userId the voter
 * @param requestId the request
 * @param input the vote
 * @returns the result
 */
export async function castVote(
  ctx: Ctx,
  tenantName: string,
  userId: string,
  requestId: string,
  input: VoteInput,
): Promise<VoteResult> {
  const outcome = await ctx.store.tx(async (t): Promise<VoteResult | ControlError> => {
    const now = ctx.now();
    const tenant = await t.getTenant(tenantName);
    if (!tenant) throw new ControlError("UNKNOWN_TENANT", `Tenant ${tenantName} not found`);
    const user = await t.getUser(tenantName, userId);
    if (!user || user.status !== "active") {
      throw new ControlError("UNAUTHENTICATED", "User is not active");
    }
    const req = await t.getRequest(tenantName, requestId, true);
    if (!req) throw new ControlError("NOT_FOUND", `Request ${requestId} not found`);
    const actor = `user:${user.email}`;
    const refuse = async (code: ControlError["code"], message: string) => {
      await appendEvidence(t, tenantName, {
        type: "approval.refused",
        actor,
        data: { request_id: req.id, decision: input.decision, code, reason: message },
      }, now);
      return new ControlError(code, message);
    };
    if (await expireIfDue(ctx, t, tenantName, req, now)) {
      return new ControlError("NOT_PENDING", `Request ${req.id} expired at ${iso(req.expiresAt)}`);
    }
    if (req.status !== "pending") {
      return new ControlError("NOT_PENDING", `Request ${req.id} is ${req.status}, not pending`);
    }
    const graph = new AuthorityGraph(await t.loadAuthority(tenantName));
    const excluded = excludedApprovers(graph, req);
    if (excluded.has(user.id)) {
      return await refuse(
        "SELF_APPROVAL",
        `${user.email} requested request ${req.id} (or operates the identity that did) and cannot vote on it`,
      );
    }
    const target = approvalTarget(req);
    const path = graph.explain(user.id, target, now);
    if (!path) {
      return await refuse(
        "NOT_ELIGIBLE",
        `${user.email} holds no grant for ${target.action} on ${target.environment ?? "*"}/${
          target.service ?? "*"
        }; see GET /v1/t/${tenantName}/requests/${req.id}/approvers`,
      );
    }
    let method = "token";
    if (input.proof !== undefined && input.proof !== null) {
      let ok: string | null = null;
      try {
        ok = ctx.verifyProof
          ? await ctx.verifyProof({
            tenant: tenantName,
            user,
            request: req,
            decision: input.decision,
            proof: input.proof,
          })
          : null;
      } catch {
        ok = null;
      }
      if (!ok) return await refuse("BAD_PROOF", "The approval proof did not verify");
      method = ok;
    } else if (
      !tokenApprovalsAllowed(tenant, req.kind === "policy.activate" ? "policy" : req.environment)
    ) {
      return await refuse(
        "PROOF_REQUIRED",
        `Tenant ${tenantName} does not accept token approvals for ${
          req.kind === "policy.activate"
            ? "policy activation"
            : `environment ${req.environment ?? "*"}`
        }: approve in the dashboard with a passkey`,
      );
    }
    const inserted = await t.insertVote(tenantName, {
      requestId: req.id,
      userId: user.id,
      decision: input.decision,
      method,
      comment: input.comment ?? null,
      createdAt: now,
      expiresAt: now + tenant.settings.approval_ttl_seconds * 1000,
    });
    if (!inserted) {
      return new ControlError("ALREADY_VOTED", `${user.email} already voted on request ${req.id}`);
    }
    await appendEvidence(t, tenantName, {
      type: input.decision === "approve" ? "request.approve" : "request.reject",
      actor,
      data: {
        request_id: req.id,
        action_hash: req.actionHash,
        method,
        comment: input.comment ?? null,
        path: path as unknown as JsonValue,
      },
    }, now);
    if (input.decision === "reject") {
      await t.setRequestStatus(tenantName, req.id, "rejected", now);
      await ctx.fault("vote.rejected");
      await appendEvidence(t, tenantName, {
        type: "request.rejected",
        actor,
        data: { request_id: req.id },
      }, now);
      return { request_id: req.id, status: "rejected", approvals_needed: 0, approval_id: null };
    }
    const votes = await t.listVotes(tenantName, req.id);
    const counted = votes.filter((v) =>
      v.decision === "approve" && v.expiresAt > now && !excluded.has(v.userId) &&
      graph.explain(v.userId, target, now) !== null
    );
    const needed = Math.max(0, req.approvalsRequired - counted.length);
    if (needed > 0) {
      return { request_id: req.id, status: "pending", approvals_needed: needed, approval_id: null };
    }
    await t.setRequestStatus(tenantName, req.id, "approved", now);
    await ctx.fault("vote.approved");
    const emails = counted.map((v) => graph.user(v.userId)?.email ?? v.userId);
    await appendEvidence(t, tenantName, {
      type: "request.approved",
      actor: "control",
      data: { request_id: req.id, action_hash: req.actionHash, approved_by: emails },
    }, now);
    let approvalId: string | null = null;
    if (req.kind === "policy.activate") {
      await activatePolicy(ctx, t, tenant, String(req.action.policy_hash), req.id, now);
    } else {
      approvalId = await issueApproval(ctx, t, tenant, req, "approvals", emails);
    }
    return { request_id: req.id, status: "approved", approvals_needed: 0, approval_id: approvalId };
  });
  if (outcome instanceof ControlError) throw outcome;
  return outcome;
}

/**
 * Makes a stored policy version the active one (after its activation request was approved,
 * or at tenant creation).
 *
 * @param ctx the context
 * @param t the transaction
 * @param tenant the tenant
 * @param hash the version
 * @param requestId the approved request, or null at bootstrap
 * @param now the time, ms
 */
export async function activatePolicy(
  ctx: Ctx,
  t: StoreTx,
  tenant: TenantRow,
  hash: string,
  requestId: string | null,
  now: number,
): Promise<void> {
  await compiledPolicy(ctx, t, tenant.name, hash); // must exist and compile
  if (tenant.activePolicyHash && tenant.activePolicyHash !== hash) {
    await t.setPolicyStatus(tenant.name, tenant.activePolicyHash, "superseded");
  }
  await t.setPolicyStatus(tenant.name, hash, "active", now);
  await t.setActivePolicy(tenant.name, hash);
  await appendEvidence(t, tenant.name, {
    type: "policy.activate",
    actor: "control",
    data: { policy_hash: hash, previous: tenant.activePolicyHash, request_id: requestId },
  }, now);
  tenant.activePolicyHash = hash;
}

/**
 * Proposes a policy version: stores it and opens its activation request, which needs the
 * tenant's `policy_activation_approvals` distinct human approvals.
 *
 * @param ctx the context
 * @param t the transaction
 * @param tenant the tenant
 * @param user the proposer
 * @param text the policy text
 * @returns the request and hash
 */
export async function proposePolicy(
  ctx: Ctx,
  t: StoreTx,
  tenant: TenantRow,
  user: UserRow,
  text: string,
): Promise<{ request_id: string; policy_hash: string; status: string; folded: boolean }> {
  const now = ctx.now();
  const compiled = compileText(text);
  const hash = compiled.hash;
  if (hash === tenant.activePolicyHash) {
    throw new ControlError("CONFLICT", `Policy ${hash} is already active`);
  }
  await t.insertPolicy(tenant.name, {
    hash,
    text,
    status: "proposed",
    createdAt: now,
    createdBy: user.id,
    activatedAt: null,
  });
  const action = { action: "policy.activate", policy_hash: hash };
  const aHash = "sha256:" + sha256Hex(canonicalJson(action));
  const existing = await t.getPendingRequest(tenant.name, aHash);
  if (existing && !(await expireIfDue(ctx, t, tenant.name, existing, now))) {
    return { request_id: existing.id, policy_hash: hash, status: "pending", folded: true };
  }
  const id = newId("req", ctx.random);
  const approvals = Math.max(1, tenant.settings.policy_activation_approvals);
  await t.insertRequest(tenant.name, {
    id,
    kind: "policy.activate",
    action,
    actionHash: aHash,
    requester: user.id,
    requesterKind: "user",
    operator: null,
    environment: null,
    service: null,
    targets: [],
    status: "pending",
    decision: { reasons: [], approvals },
    approvalsRequired: approvals,
    policyHash: tenant.activePolicyHash,
    breakGlass: null,
    createdAt: now,
    updatedAt: now,
    expiresAt: now + tenant.settings.request_ttl_seconds * 1000,
  });
  await appendEvidence(t, tenant.name, {
    type: "policy.propose",
    actor: `user:${user.email}`,
    data: { request_id: id, policy_hash: hash, approvals_needed: approvals },
  }, now);
  return { request_id: id, policy_hash: hash, status: "pending", folded: false };
}

/**
 * The API view of a request.
 *
 * @param ctx the context
 * @param t the transaction
 * @param tenant the tenant
 * @param req the request
 * @returns the view
 */
export async function requestView(
  ctx: Ctx,
  t: StoreTx,
  tenant: string,
  req: RequestRow,
): Promise<Record<string, unknown>> {
  const now = ctx.now();
  const votes = await t.listVotes(tenant, req.id);
  const approvals = votes.filter((v) => v.decision === "approve" && v.expiresAt > now).length;
  const signed = await t.getSignedApprovalByRequest(tenant, req.id);
  const targets = signed ? await t.listApprovalTargets(tenant, signed.id) : [];
  return {
    request_id: req.id,
    kind: req.kind,
    status: req.status,
    action: req.action,
    action_hash: req.actionHash,
    requester: req.requester,
    requester_kind: req.requesterKind,
    operator: req.operator,
    environment: req.environment,
    service: req.service,
    targets: req.targets,
    reasons: req.decision.reasons ?? [],
    approvals_required: req.approvalsRequired,
    approvals_needed: req.status === "pending" ? Math.max(0, req.approvalsRequired - approvals) : 0,
    votes: votes.map((v) => ({
      user: v.userId,
      decision: v.decision,
      method: v.method,
      comment: v.comment,
      at: iso(v.createdAt),
      expires_at: iso(v.expiresAt),
    })),
    policy_hash: req.policyHash,
    break_glass: req.breakGlass,
    created_at: iso(req.createdAt),
    updated_at: iso(req.updatedAt),
    expires_at: iso(req.expiresAt),
    dashboard_url: dashboardUrl(ctx, tenant, req.id),
    approval: signed
      ? {
        approval_id: signed.id,
        expires_at: iso(signed.expiresAt),
        targets: targets.map((x) => ({
          host: x.host,
          used_at: iso(x.usedAt),
          result: x.resultStatus,
          reported_at: iso(x.reportedAt),
        })),
      }
      : null,
  };
}

/**
 * Who can approve a request, with one path each (requester and operator excluded).
 *
 * @param t the transaction
 * @param tenant the tenant
 * @param req the request
 * @param now the time, ms
 * @returns approvers
 */
export async function whoCanApprove(
  t: StoreTx,
  tenant: string,
  req: RequestRow,
  now: number,
): Promise<{ user: string; email: string; path: PathStep[] }[]> {
  const graph = new AuthorityGraph(await t.loadAuthority(tenant));
  return graph.approvers(approvalTarget(req), now, excludedApprovers(graph, req)).map((a) => ({
    user: a.user.id,
    email: a.user.email,
    path: a.path,
  }));
}

/**
 * The random nonce of a response.
 *
 * @param ctx the context
 * @returns a nonce
 */
export function responseNonce(ctx: Ctx): string {
  return newNonce(ctx.random);
}
