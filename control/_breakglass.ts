/**
 * Break-glass: named holders (role `breakglass`) open a time-boxed session with a
 * justification and a scope; inside it, requests in scope skip human approval but never the
 * evidence log. Opening fires the notification hook; the session ends on expiry or by hand; a
 * post-review by someone other than the holder is required and tracked.
 *
 * @module
 */
import type { PolicyAction } from "@infraveil/policy";
import { AuthorityGraph } from "./authority.ts";
import { type Ctx, iso } from "./_context.ts";
import { appendEvidence } from "./evidence.ts";
import { ControlError } from "./error.ts";
import { newId } from "./_ids.ts";
import { NAME_HINT, NAME_RE, type Obj, object, optInt, optStrArray, str } from "./_validate.ts";
import type { BreakGlassRow, UserRow } from "./store.ts";

/** The role that makes a user a break-glass holder. */
export const BREAKGLASS_ROLE = "breakglass";

/**
 * Whether a session's scope covers an action.
 *
 * @param s the session
 * @param a the action
 * @param environment the environment the request is decided in (the action's, or the policy
 *   block it selected), or null when none
 * @returns true when the action, its service and its environment are in scope
 */
export function sessionCovers(
  s: BreakGlassRow,
  a: PolicyAction,
  environment: string | null = a.environment ?? null,
): boolean {
  const actionOk = s.scope.actions.includes("*") || s.scope.actions.includes(a.action);
  const serviceOk = s.scope.services.includes("*") ||
    (a.service !== undefined && s.scope.services.includes(a.service));
  // Sessions opened before scopes named environments cover any (as they did then).
  const envs = s.scope.environments ?? ["*"];
  const environmentOk = envs.includes("*") ||
    (environment !== null && envs.includes(environment));
  return actionOk && serviceOk && environmentOk;
}

/**
 * The API view of a session.
 *
 * @param s the session
 * @param now the time, ms
 * @returns the view
 */
export function sessionView(s: BreakGlassRow, now: number): Record<string, unknown> {
  const ended = s.closedAt ?? (s.expiresAt <= now ? s.expiresAt : null);
  return {
    id: s.id,
    holder: s.holder,
    justification: s.justification,
    scope: s.scope,
    opened_at: iso(s.openedAt),
    expires_at: iso(s.expiresAt),
    active: ended === null,
    ended_at: iso(ended),
    ended_by: s.closedAt !== null ? "hand" : ended !== null ? "expiry" : null,
    closed_by: s.closedBy,
    close_reason: s.closeReason,
    review_required: ended !== null && s.reviewedAt === null,
    review: s.review,
    reviewed_at: iso(s.reviewedAt),
    reviewed_by: s.reviewedBy,
  };
}

/**
 * Opens a session. The caller must hold the `breakglass` role.
 *
 * @param ctx the context
 * @param tenantName the tenant
 * @param user the holder
 * @param body `{justification, scope: {actions, services, environments?}, duration_seconds?}`;
 *   `environments` defaults to `["*"]` (any)
 * @returns the session view
 */
export async function openBreakGlass(
  ctx: Ctx,
  tenantName: string,
  user: UserRow,
  body: Obj,
): Promise<Record<string, unknown>> {
  object(body, ["justification", "scope", "duration_seconds"]);
  const justification = str(body, "justification", { max: 4000 });
  if (justification.trim().length < 10) {
    throw new ControlError(
      "BAD_REQUEST",
      'Invalid field "justification": explain why in at least 10 characters',
      { details: { field: "justification" } },
    );
  }
  const scopeObj = object(body.scope ?? null, ["actions", "services", "environments"], "scope");
  const actions = optStrArray(scopeObj, "actions", { maxItems: 50, max: 64 });
  const services = optStrArray(scopeObj, "services", {
    maxItems: 100,
    pattern: /^(\*|[A-Za-z0-9][A-Za-z0-9._-]{0,127})$/,
    patternHint: `"*" or a service name (${NAME_HINT})`,
  });
  if (!actions || actions.length === 0 || !services || services.length === 0) {
    throw new ControlError(
      "BAD_REQUEST",
      'Invalid field "scope": name the actions and services it covers (use "*" for any service)',
      { details: { field: "scope" } },
    );
  }
  const environments = optStrArray(scopeObj, "environments", {
    maxItems: 50,
    pattern: /^(\*|[A-Za-z0-9][A-Za-z0-9._-]{0,127})$/,
    patternHint: `"*" or an environment name (${NAME_HINT})`,
  }) ?? ["*"];
  if (environments.length === 0) {
    throw new ControlError(
      "BAD_REQUEST",
      'Invalid field "scope.environments": name the environments it covers (use "*" for any)',
      { details: { field: "scope.environments" } },
    );
  }
  void NAME_RE;
  const session = await ctx.store.tx(async (t) => {
    const now = ctx.now();
    const tenant = await t.getTenant(tenantName);
    if (!tenant) throw new ControlError("UNKNOWN_TENANT", `Tenant ${tenantName} not found`);
    const duration = optInt(body, "duration_seconds", 60, tenant.settings.breakglass_max_seconds) ??
      tenant.settings.breakglass_default_seconds;
    const graph = new AuthorityGraph(await t.loadAuthority(tenantName));
    if (!graph.hasRole(user.id, BREAKGLASS_ROLE, now)) {
      await appendEvidence(t, tenantName, {
        type: "breakglass.refused",
        actor: `user:${user.email}`,
        data: { reason: "not a break-glass holder", justification },
      }, now);
      return new ControlError(
        "FORBIDDEN",
        `${user.email} is not a break-glass holder (role "${BREAKGLASS_ROLE}")`,
      );
    }
    const row: BreakGlassRow = {
      id: newId("bg", ctx.random),
      holder: user.id,
      justification,
      scope: { actions, services, environments },
      openedAt: now,
      expiresAt: now + duration * 1000,
      closedAt: null,
      closedBy: null,
      closeReason: null,
      review: null,
      reviewedAt: null,
      reviewedBy: null,
    };
    await t.insertBreakGlass(tenantName, row);
    await appendEvidence(t, tenantName, {
      type: "breakglass.open",
      actor: `user:${user.email}`,
      data: {
        session: row.id,
        justification,
        scope: row.scope,
        expires_at: iso(row.expiresAt),
      },
    }, now);
    return row;
  });
  if (session instanceof ControlError) throw session;
  await notify(ctx, tenantName, user, session, "breakglass.opened");
  return sessionView(session, ctx.now());
}

async function notify(
  ctx: Ctx,
  tenant: string,
  user: UserRow,
  s: BreakGlassRow,
  type: "breakglass.opened" | "breakglass.closed",
): Promise<void> {
  if (!ctx.notify) return;
  try {
    await ctx.notify({
      type,
      tenant,
      session: s.id,
      holder: user.email,
      justification: s.justification,
      scope: s.scope,
      expires_at: iso(s.expiresAt)!,
    });
  } catch (e) {
    await ctx.store.tx((t) =>
      appendEvidence(t, tenant, {
        type: "breakglass.notify_failed",
        actor: "control",
        data: { session: s.id, event: type, error: String(e).slice(0, 500) },
      }, ctx.now())
    );
  }
}

/**
 * Closes a session by hand (its holder or an admin).
 *
 * @param ctx the context
 * @param tenantName the tenant
 * @param user who closes it
 * @param id the session
 * @param reason why
 * @param isAdmin whether the user is an admin
 * @returns the session view
 */
export async function closeBreakGlass(
  ctx: Ctx,
  tenantName: string,
  user: UserRow,
  id: string,
  reason: string,
  isAdmin: boolean,
): Promise<Record<string, unknown>> {
  const s = await ctx.store.tx(async (t) => {
    const now = ctx.now();
    const s = await t.getBreakGlass(tenantName, id, true);
    if (!s) throw new ControlError("NOT_FOUND", `Break-glass session ${id} not found`);
    if (s.holder !== user.id && !isAdmin) {
      throw new ControlError(
        "FORBIDDEN",
        "Only the holder or an admin closes a break-glass session",
      );
    }
    if (!(await t.closeBreakGlass(tenantName, id, user.id, reason, now))) {
      throw new ControlError("CONFLICT", `Break-glass session ${id} already ended`);
    }
    await appendEvidence(t, tenantName, {
      type: "breakglass.close",
      actor: `user:${user.email}`,
      data: { session: id, reason },
    }, now);
    return (await t.getBreakGlass(tenantName, id))!;
  });
  await notify(ctx, tenantName, user, s, "breakglass.closed");
  return sessionView(s, ctx.now());
}

/**
 * Records the post-review of an ended session (by someone other than its holder).
 *
 * @param ctx the context
 * @param tenantName the tenant
 * @param user the reviewer
 * @param id the session
 * @param review the review text
 * @returns the session view
 */
export async function reviewBreakGlass(
  ctx: Ctx,
  tenantName: string,
  user: UserRow,
  id: string,
  review: string,
): Promise<Record<string, unknown>> {
  return await ctx.store.tx(async (t) => {
    const now = ctx.now();
    const s = await t.getBreakGlass(tenantName, id, true);
    if (!s) throw new ControlError("NOT_FOUND", `Break-glass session ${id} not found`);
    if (s.closedAt === null && s.expiresAt > now) {
      throw new ControlError("CONFLICT", `Break-glass session ${id} is still open; close it first`);
    }
    if (s.holder === user.id) {
      throw new ControlError("FORBIDDEN", "The holder cannot review their own break-glass session");
    }
    if (!(await t.reviewBreakGlass(tenantName, id, user.id, review, now))) {
      throw new ControlError("CONFLICT", `Break-glass session ${id} was already reviewed`);
    }
    await appendEvidence(t, tenantName, {
      type: "breakglass.review",
      actor: `user:${user.email}`,
      data: { session: id, review },
    }, now);
    return sessionView((await t.getBreakGlass(tenantName, id))!, now);
  });
}
