/**
 * The signed endpoints: `POST /v1/t/{tenant}/signed/{type}` with a signed envelope as body,
 * from agents and MCP identities. Signature, audience, tenant, time window and nonce are
 * checked before anything else, and the nonce is consumed in the handler's transaction, the
 * handler running under a savepoint — so a message the handler refuses cannot be replayed —
 * and each failure is recorded as evidence. The signature may be checked just before the
 * transaction, against the key row seen last; the transaction then re-reads the rows and
 * judges the call afresh unless they are unchanged. Every response, errors included, is an envelope
 * signed by the control plane. A reply to an authenticated call is addressed to
 * `<tenant>/<identity>` and echoes the request's nonce as `in_reply_to`; a refusal before
 * authentication is addressed to `<tenant>/unknown` with `in_reply_to: null` (nothing the
 * caller claimed is echoed under the control plane's signature).
 *
 * @module
 */
import type { Context } from "hono";
import {
  decodeBase64Url,
  keyId,
  type MessagePayload,
  TrustError,
  verifyEd25519,
  verifyEnvelope,
} from "@infraveil/trust";
import type { JsonValue } from "@infraveil/ledger";
import { type Ctx, iso } from "./_context.ts";
import { appendEvidence } from "./evidence.ts";
import { ControlError, type ControlErrorCode } from "./error.ts";
import { newNonce } from "./_ids.ts";
import type { IdentityKind, IdentityRow, StoreTx, TenantRow } from "./store.ts";
import { checkRequest, createRequest, type Requester, requestView } from "./_requests.ts";
import {
  fleetStatus,
  heartbeat,
  ingestFindings,
  ingestSpans,
  queryFindings,
  querySpans,
  spanView,
  submitAnchor,
} from "./_fleet.ts";
import { decodeCursor, encodeCursor, type Obj, object, optInt, optStr, str } from "./_validate.ts";
import {
  decodePublicKey,
  enrollIdentity,
  redeemEnrollmentToken,
  rotationProofMessage,
} from "./tenant.ts";

/** The audience of every message to the control plane. */
export const CONTROL_AUDIENCE = "infraveil-control";

/**
 * The identity name replies to unauthenticated callers are addressed to (`<tenant>/unknown`,
 * `in_reply_to: null`); no identity may be enrolled under it.
 */
export const UNAUTHENTICATED = "unknown";

/** The claim fields removed before a handler sees the body. */
const CLAIMS = new Set(["type", "tenant", "aud", "iat", "exp", "nonce", "iss"]);

/** What a signed handler receives. */
export interface SignedCall {
  /** Context. */
  ctx: Ctx;
  /** The handler's transaction (the nonce was consumed before it began). */
  t: StoreTx;
  /** The tenant. */
  tenant: TenantRow;
  /** The verified identity. */
  identity: IdentityRow;
  /** The call's fields (the payload without its claims). */
  body: Obj;
  /** The verified payload. */
  payload: MessagePayload;
}

/** A signed endpoint. */
export interface SignedRoute {
  /** Identity kinds allowed to call it. */
  kinds: IdentityKind[];
  /** Handler: a result, or a ControlError to commit (evidence) and then return. */
  handler: (call: SignedCall) => Promise<unknown>;
}

function requester(identity: IdentityRow): Requester {
  return {
    kind: identity.kind,
    name: identity.name,
    actor: `${identity.kind}:${identity.name}`,
    operator: identity.operator,
  };
}

async function humanOnly(call: SignedCall): Promise<ControlError> {
  const now = call.ctx.now();
  await appendEvidence(call.t, call.tenant.name, {
    type: "approval.refused",
    actor: `${call.identity.kind}:${call.identity.name}`,
    data: {
      request_id: typeof call.body.request_id === "string"
        ? call.body.request_id.slice(0, 64)
        : null,
      code: "HUMAN_ONLY",
      reason: "approvals come from humans only; machine identities can never approve or reject",
    },
  }, now);
  return new ControlError(
    "HUMAN_ONLY",
    `${call.identity.kind} identity ${call.identity.name} cannot approve or reject: approvals come from humans only`,
  );
}

function ownRequestFilter(identity: IdentityRow): string {
  return identity.name;
}

/** Every signed endpoint by message type. */
export const SIGNED_ROUTES: Readonly<Record<string, SignedRoute>> = {
  "heartbeat": {
    kinds: ["agent"],
    handler: ({ ctx, t, tenant, identity, body }) => heartbeat(ctx, t, tenant, identity, body),
  },
  "policy.active": {
    kinds: ["agent", "mcp"],
    handler: async ({ t, tenant, body }) => {
      object(body, []);
      if (!tenant.activePolicyHash) return { hash: null, text: null };
      const p = await t.getPolicy(tenant.name, tenant.activePolicyHash);
      return { hash: tenant.activePolicyHash, text: p?.text ?? null };
    },
  },
  "anchor.submit": {
    kinds: ["agent"],
    handler: ({ ctx, t, tenant, identity, body }) => submitAnchor(ctx, tenant, identity, body, t),
  },
  "traces.ingest": {
    kinds: ["agent"],
    handler: ({ ctx, t, tenant, identity, body }) => ingestSpans(ctx, t, tenant, identity, body),
  },
  "findings.ingest": {
    kinds: ["agent"],
    handler: ({ ctx, t, tenant, identity, body }) => ingestFindings(ctx, t, tenant, identity, body),
  },
  "request.create": {
    kinds: ["mcp", "agent"],
    handler: ({ ctx, t, tenant, identity, body }) =>
      createRequest(ctx, t, tenant, requester(identity), body),
  },
  "policy.check": {
    kinds: ["mcp", "agent"],
    handler: ({ ctx, t, tenant, identity, body }) =>
      checkRequest(ctx, t, tenant, requester(identity), body),
  },
  "request.status": {
    kinds: ["mcp", "agent"],
    handler: async ({ ctx, t, tenant, identity, body }) => {
      object(body, ["request_id"]);
      const id = str(body, "request_id", { max: 64 });
      const req = await t.getRequest(tenant.name, id);
      const visible = req &&
        (req.requester === identity.name ||
          (identity.kind === "agent" && req.targets.includes(identity.name)));
      if (!req || !visible) throw new ControlError("NOT_FOUND", `Request ${id} not found`);
      return await requestView(ctx, t, tenant.name, req);
    },
  },
  "request.list": {
    kinds: ["mcp", "agent"],
    handler: async ({ ctx, t, tenant, identity, body }) => {
      object(body, ["status", "limit", "cursor"]);
      const limit = optInt(body, "limit", 1, 200) ?? 50;
      const rows = await t.listRequests(tenant.name, {
        limit,
        status: optStr(body, "status", { max: 16 }) as never,
        requester: ownRequestFilter(identity),
        before: decodeCursor(optStr(body, "cursor", { max: 400 })),
      });
      const items = [];
      for (const r of rows) items.push(await requestView(ctx, t, tenant.name, r));
      const last = rows.at(-1);
      return {
        items,
        next_cursor: rows.length === limit && last ? encodeCursor([last.createdAt, last.id]) : null,
      };
    },
  },
  "fleet.status": {
    kinds: ["mcp", "agent"],
    handler: ({ ctx, t, tenant, body }) => {
      object(body, []);
      return fleetStatus(ctx, t, tenant);
    },
  },
  "findings.list": {
    kinds: ["mcp", "agent"],
    handler: ({ t, tenant, body }) => queryFindings(t, tenant.name, body),
  },
  "traces.query": {
    kinds: ["mcp", "agent"],
    handler: ({ t, tenant, body }) => querySpans(t, tenant.name, body),
  },
  "trace.get": {
    kinds: ["mcp", "agent"],
    handler: async ({ t, tenant, body }) => {
      object(body, ["trace_id"]);
      const id = str(body, "trace_id", {
        pattern: /^[0-9a-f]{32}$/,
        patternHint: "32 lowercase hex digits",
      });
      const spans = await t.getTrace(tenant.name, id);
      if (spans.length === 0) throw new ControlError("NOT_FOUND", `Trace ${id} not found`);
      return { trace_id: id, spans: spans.map(spanView) };
    },
  },
  "approvals.fetch": {
    kinds: ["agent"],
    handler: async ({ ctx, t, tenant, identity, body }) => {
      object(body, []);
      const now = ctx.now();
      const out: unknown[] = [];
      for (const a of await t.listClaimableApprovals(tenant.name, identity.name, now)) {
        if (!(await t.claimApprovalTarget(tenant.name, a.id, identity.name, now, identity.kid))) {
          continue;
        }
        await appendEvidence(t, tenant.name, {
          type: "approval.claimed",
          actor: `agent:${identity.name}`,
          data: {
            approval_id: a.id,
            request_id: a.requestId,
            host: identity.name,
            kid: identity.kid,
          },
        }, now);
        out.push(JSON.parse(a.envelope));
      }
      return { approvals: out };
    },
  },
  "execution.report": {
    kinds: ["agent"],
    handler: async ({ ctx, t, tenant, identity, body }) => {
      object(body, [
        "approval_id",
        "status",
        "output",
        "ledger_anchor",
        "started_ms",
        "finished_ms",
      ]);
      const now = ctx.now();
      const approvalId = str(body, "approval_id", { max: 64 });
      const status = str(body, "status", { max: 16 });
      if (status !== "succeeded" && status !== "failed") {
        throw new ControlError("BAD_REQUEST", 'Invalid field "status": "succeeded" or "failed"', {
          details: { field: "status" },
        });
      }
      const output = optStr(body, "output", { max: 65_536 }) ?? null;
      const anchor = optStr(body, "ledger_anchor", { max: 100 }) ?? null;
      const approval = await t.getSignedApproval(tenant.name, approvalId);
      if (!approval) throw new ControlError("NOT_FOUND", `Approval ${approvalId} not found`);
      const result = {
        output,
        ledger_anchor: anchor,
        started_ms: optInt(body, "started_ms", 0, 8.64e15) ?? null,
        finished_ms: optInt(body, "finished_ms", 0, 8.64e15) ?? null,
      };
      if (
        !(await t.reportApprovalTarget(tenant.name, approvalId, identity.name, status, result, now))
      ) {
        throw new ControlError(
          "CONFLICT",
          `Host ${identity.name} has not claimed approval ${approvalId} or already reported it`,
        );
      }
      await appendEvidence(t, tenant.name, {
        type: "execution.report",
        actor: `agent:${identity.name}`,
        data: {
          approval_id: approvalId,
          request_id: approval.requestId,
          action_hash: approval.actionHash,
          host: identity.name,
          status,
          ledger_anchor: anchor,
          output: output === null ? null : output.slice(0, 4096),
        },
      }, now);
      const targets = await t.listApprovalTargets(tenant.name, approvalId);
      let requestStatus: string | null = null;
      if (targets.every((x) => x.reportedAt !== null)) {
        requestStatus = targets.every((x) => x.resultStatus === "succeeded")
          ? "executed"
          : "failed";
        await t.setRequestStatus(tenant.name, approval.requestId, requestStatus as never, now);
        await appendEvidence(t, tenant.name, {
          type: "request.executed",
          actor: "control",
          data: { request_id: approval.requestId, approval_id: approvalId, status: requestStatus },
        }, now);
      }
      return { recorded: true, request_id: approval.requestId, request_status: requestStatus };
    },
  },
  "identity.rotate": {
    kinds: ["agent", "mcp"],
    handler: async ({ ctx, t, tenant, identity, body, payload }) => {
      object(body, ["new_public", "proof"]);
      const now = ctx.now();
      const pub = decodePublicKey(body.new_public, "new_public");
      const newKid = keyId(pub);
      const message = rotationProofMessage({
        tenant: tenant.name,
        name: identity.name,
        old_kid: identity.kid,
        new_kid: newKid,
        nonce: payload.nonce,
      });
      let sig: Uint8Array;
      try {
        sig = decodeBase64Url(str(body, "proof", { max: 100 }));
      } catch {
        throw new ControlError("BAD_REQUEST", 'Invalid field "proof": base64url signature', {
          details: { field: "proof" },
        });
      }
      if (!verifyEd25519(pub, message, sig)) {
        throw new ControlError("BAD_PROOF", "The new key's proof of possession does not verify");
      }
      await t.deactivateIdentity(tenant.name, identity.kid, "rotated", now);
      await enrollIdentity(t, tenant.name, {
        name: identity.name,
        kind: identity.kind,
        publicKey: pub,
        operator: identity.operator,
        // A new key keeps the host's enrolled labels: rotation cannot relabel a host.
        environment: identity.environment,
        service: identity.service,
        actor: `${identity.kind}:${identity.name}`,
        now,
        via: `rotation:${identity.kid}`,
      });
      await appendEvidence(t, tenant.name, {
        type: "identity.rotate",
        actor: `${identity.kind}:${identity.name}`,
        data: { name: identity.name, old_kid: identity.kid, new_kid: newKid },
      }, now);
      return { name: identity.name, old_kid: identity.kid, kid: newKid };
    },
  },
  "request.approve": { kinds: ["agent", "mcp"], handler: humanOnly },
  "request.reject": { kinds: ["agent", "mcp"], handler: humanOnly },
};

/** A signed response. */
export interface SignedReply {
  /** HTTP status. */
  status: number;
  /** The envelope. */
  body: unknown;
}

function claimed(
  env: unknown,
): { nonce: string | null; iss: string | null; kid: string | null; type: string | null } {
  const e = env as { payload?: Record<string, unknown>; kid?: unknown } | null;
  const p = e && typeof e === "object" && e.payload && typeof e.payload === "object"
    ? e.payload
    : {};
  const s = (v: unknown, max: number) => (typeof v === "string" && v.length <= max ? v : null);
  return {
    nonce: s(p.nonce, 128),
    iss: s(p.iss, 128),
    kid: s(e && typeof e === "object" ? e.kid : null, 64),
    type: s(p.type, 64),
  };
}

/**
 * Signs a reply.
 *
 * @param ctx the context
 * @param tenant the tenant
 * @param to the identity name
 * @param inReplyTo the request nonce
 * @param type the reply type
 * @param fields `result` or `error`
 * @returns the envelope
 */
export async function signReply(
  ctx: Ctx,
  tenant: string,
  to: string,
  inReplyTo: string | null,
  type: string,
  fields: Record<string, unknown>,
): Promise<unknown> {
  const iat = Math.floor(ctx.now() / 1000);
  return await ctx.signer.sign({
    type,
    tenant,
    aud: `${tenant}/${to}`,
    iat,
    exp: iat + 120,
    nonce: newNonce(ctx.random),
    in_reply_to: inReplyTo,
    ...fields,
  });
}

function errorFields(
  e: unknown,
): {
  code: ControlErrorCode | TrustError["code"];
  status: number;
  message: string;
  details?: unknown;
} {
  if (e instanceof ControlError) {
    return { code: e.code, status: e.status, message: e.message, details: e.details };
  }
  if (e instanceof TrustError) {
    const status = e.code === "MALFORMED" ? 400 : 401;
    return { code: e.code, status, message: e.message };
  }
  console.error("control: internal error", e);
  return { code: "INTERNAL", status: 500, message: "Internal error; see the control plane's log" };
}

/**
 * Records an authentication failure as evidence (bounded: at most 600 records per tenant and
 * minute; the rest are counted in one `auth.failure.suppressed` record).
 *
 * @param ctx the context
 * @param tenantName the tenant named by the path
 * @param info what failed
 */
export async function recordAuthFailure(
  ctx: Ctx,
  tenantName: string,
  info: {
    code: string;
    message: string;
    kid: string | null;
    type: string | null;
    endpoint: string;
  },
): Promise<void> {
  try {
    await ctx.store.tx(async (t) => {
      if (!(await t.getTenant(tenantName))) return;
      const now = ctx.now();
      const window = Math.floor(now / 60_000) * 60_000;
      const hits = await t.hitRateLimit(tenantName, "auth-failure-evidence", window);
      if (hits > 601) return;
      const data = hits === 601 ? { suppressed_after: 600, window: iso(window) } : {
        code: info.code,
        endpoint: info.endpoint,
        kid: info.kid,
        type: info.type,
        message: info.message.slice(0, 300),
      };
      await appendEvidence(t, tenantName, {
        type: hits === 601 ? "auth.failure.suppressed" : "auth.failure",
        actor: info.kid ? `key:${info.kid}` : "unknown",
        data: data as unknown as JsonValue,
      }, now);
    });
  } catch (e) {
    console.error("control: cannot record an authentication failure", e);
  }
}

/**
 * The call's fields: the payload without its claims. Each is an own property, `__proto__`
 * included: on a runtime that keeps the `__proto__` accessor (Deno removes it, Node does
 * not), an assignment would set the body's prototype instead, hiding the field from the
 * handlers' unknown-field checks while they read through it.
 */
function callFields(payload: MessagePayload): Obj {
  const body: Obj = {};
  for (const k of Object.keys(payload)) {
    if (CLAIMS.has(k)) continue;
    Object.defineProperty(body, k, {
      value: payload[k],
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return body;
}

/** Thrown inside a transaction whose early verification no longer holds: judge afresh. */
const STALE = new Error("the rows an early verification relied on changed");

/** An envelope verified before its transaction, and the rows it was verified against. */
interface Early {
  tenant: TenantRow;
  identity: IdentityRow;
  payload: MessagePayload;
}

const MAX_SEEN = 4096;

function remember(ctx: Ctx, tenant: TenantRow, identity: IdentityRow): void {
  const { tenants, identities } = ctx.seen;
  if (identities.size >= MAX_SEEN) identities.clear();
  if (tenants.size >= MAX_SEEN) tenants.clear();
  tenants.set(tenant.name, tenant);
  identities.set(`${tenant.name}\0${identity.kid}`, identity);
}

function forget(ctx: Ctx, tenant: string, kid: string): void {
  ctx.seen.tenants.delete(tenant);
  ctx.seen.identities.delete(`${tenant}\0${kid}`);
}

function sameTenant(a: TenantRow, b: TenantRow): boolean {
  return a.name === b.name && a.createdAt === b.createdAt &&
    a.activePolicyHash === b.activePolicyHash &&
    JSON.stringify(a.settings) === JSON.stringify(b.settings);
}

function sameIdentity(a: IdentityRow, b: IdentityRow): boolean {
  return a.kid === b.kid && a.publicKey === b.publicKey && a.status === b.status &&
    a.name === b.name && a.kind === b.kind && a.operator === b.operator &&
    a.environment === b.environment && a.service === b.service &&
    a.createdAt === b.createdAt && a.revokedAt === b.revokedAt;
}

/**
 * Verifies an envelope before its transaction against the rows its tenant and key had when
 * last seen: signature, audience, tenant, time window (not the nonce: the transaction
 * consumes it). Null when they were not seen, or anything fails: the transaction then does
 * every check itself, and decides the error.
 */
async function verifyEarly(
  ctx: Ctx,
  tenantName: string,
  kid: string | null,
  env: unknown,
): Promise<Early | null> {
  if (kid === null) return null;
  const tenant = ctx.seen.tenants.get(tenantName);
  const identity = ctx.seen.identities.get(`${tenantName}\0${kid}`);
  if (!tenant || !identity || identity.status !== "active") return null;
  try {
    const payload = await verifyEnvelope(env, {
      keys: (k) => (k === kid ? decodeBase64Url(identity.publicKey) : undefined),
      audience: CONTROL_AUDIENCE,
      tenant: tenantName,
      now: ctx.now,
      skewSeconds: ctx.skewSeconds,
      checkNonce: () => true,
    });
    return { tenant, identity, payload };
  } catch {
    return null;
  }
}

async function readJson(c: Context): Promise<unknown> {
  const text = await c.req.text();
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * Handles `POST /v1/t/{tenant}/signed/{type}`.
 *
 * @param ctx the context
 * @param c the Hono context
 * @returns the signed reply
 */
export async function handleSigned(ctx: Ctx, c: Context): Promise<SignedReply> {
  const tenantName = c.req.param("tenant") ?? "";
  const type = c.req.param("type") ?? "";
  const env = await readJson(c);
  const claim = claimed(env);
  // Until the signature verifies, nothing in the envelope is the caller's: a refusal is
  // addressed to `<tenant>/unknown` and answers no nonce, so a forged envelope cannot get a
  // signed error addressed to someone else's identity in reply to someone else's call.
  let to = UNAUTHENTICATED;
  let inReplyTo: string | null = null;
  try {
    if (env === undefined) {
      throw new TrustError("MALFORMED", "Body is not JSON: send a signed envelope");
    }
    const route = Object.hasOwn(SIGNED_ROUTES, type) ? SIGNED_ROUTES[type] : undefined;
    if (!route) {
      throw new ControlError("NOT_FOUND", `Unknown signed endpoint "${type}"; see /openapi.json`);
    }
    // One transaction per call: authenticate and consume the nonce, then run the handler
    // under a savepoint. A message the handler refuses (validation, rate limit) or that was
    // sent to the wrong endpoint stays used: its nonce commits without the handler's changes,
    // so the same captured message cannot be sent again while it is fresh. A message that
    // fails authentication changes nothing, and neither does an internal error (the caller may
    // retry it). On PostgreSQL the nonce insert, the savepoint and the handler's first reads
    // share one round trip: the nonce's answer is awaited before anything can commit, and a
    // replay rolls back whatever the handler did.
    //
    // When the tenant and the key were seen before, the envelope is verified first, outside
    // the transaction, against the key bytes seen then; the transaction reads both rows again
    // (in the same round trip as the nonce and the handler's reads) and the call is judged
    // afresh, from the rows as they are now, unless they are unchanged: the signature was then
    // checked with exactly the key the database holds, and the handler saw the tenant as it is.
    const early = await verifyEarly(ctx, tenantName, claim.kid, env);
    const judge = (guess: Early | null) =>
      ctx.store.tx(async (t) => {
        // A rerun (a failed shared commit, a retried conflict) starts unauthenticated again.
        to = UNAUTHENTICATED;
        inReplyTo = null;
        let tenant: TenantRow;
        let who: IdentityRow;
        let payload: MessagePayload;
        let fresh: Promise<boolean>;
        let recheck: Promise<void> | null = null;
        if (guess) {
          ({ tenant, identity: who, payload } = guess);
          // The rows again and the nonce, in one statement.
          const read = t.useNonceWithKey(tenantName, who.kid, payload.nonce, payload.exp);
          recheck = read.then(({ found }) => {
            if (
              !found || !sameTenant(found.tenant, tenant) || !found.identity ||
              !sameIdentity(found.identity, who) ||
              payload.exp + ctx.skewSeconds <= Math.floor(ctx.now() / 1000)
            ) {
              throw STALE;
            }
          });
          recheck.catch(() => {}); // awaited below, before anything can commit
          fresh = read.then((r) => r.fresh);
          fresh.catch(() => {}); // awaited below, before anything commits
        } else {
          // The tenant and the key the envelope names, in one statement. The kid is not
          // trusted: it only picks the key the signature must verify with.
          const found = await t.getTenantAndKey(tenantName, claim.kid ?? "");
          if (!found) throw new ControlError("UNKNOWN_TENANT", `Tenant ${tenantName} not found`);
          const { identity: keyRow } = found;
          tenant = found.tenant;
          let identity: IdentityRow | null = null;
          fresh = Promise.resolve(false);
          payload = await verifyEnvelope(env, {
            keys: (kid) => {
              if (kid !== claim.kid || !keyRow || keyRow.status !== "active") return undefined;
              identity = keyRow;
              return decodeBase64Url(keyRow.publicKey);
            },
            audience: CONTROL_AUDIENCE,
            tenant: tenantName,
            now: ctx.now,
            skewSeconds: ctx.skewSeconds,
            checkNonce: (nonce, exp) => {
              fresh = t.insertNonce(tenantName, nonce, exp);
              fresh.catch(() => {}); // awaited below, before anything commits
              return true;
            },
          });
          who = identity as unknown as IdentityRow;
          remember(ctx, tenant, who);
        }
        // What must be known, and good, before this transaction may commit: a statement sent
        // with its COMMIT (PostgreSQL) goes out only once both are.
        t.commitReady = Promise.all([fresh, recheck]).then(([f]) => f, () => false);
        if (ctx.random(new Uint8Array(1))[0] === 0) {
          await t.purgeNonces(tenantName, Math.floor(ctx.now() / 1000) - ctx.skewSeconds - 60);
        }
        let refused: ControlError | null = null;
        if (payload.type !== type) {
          refused = new ControlError(
            "WRONG_TYPE",
            `Message of type "${payload.type}" sent to the "${type}" endpoint`,
          );
        } else if (!route.kinds.includes(who.kind)) {
          refused = new ControlError("FORBIDDEN", `${who.kind} identities cannot call "${type}"`);
        }
        let handled: { value: unknown } | { error: unknown } = { value: null };
        let internal: { error: unknown } | null = null;
        if (!refused) {
          const body = callFields(payload);
          try {
            handled = {
              value: await t.nested(() =>
                route.handler({ ctx, t, tenant, identity: who, body, payload })
              ),
            };
          } catch (e) {
            if (e instanceof ControlError || e instanceof TrustError) handled = { error: e };
            else internal = { error: e };
          }
        }
        if (recheck) await recheck;
        if (!(await fresh)) {
          throw new TrustError("REPLAYED", `Message nonce ${payload.nonce} was already used`);
        }
        to = who.name;
        inReplyTo = payload.nonce;
        if (internal) throw internal.error;
        return { refused, handled };
      }, { group: ctx.groupCommit });
    let outcome;
    try {
      outcome = await judge(early);
    } catch (e) {
      if (e !== STALE) throw e;
      // The rows changed (a key revoked or rotated, the tenant's settings or policy): forget
      // them, or every later call by this key would pay for an early check that cannot hold.
      forget(ctx, tenantName, early!.identity.kid);
      outcome = await judge(null);
    }
    if (outcome.refused) throw outcome.refused;
    if ("error" in outcome.handled) throw outcome.handled.error;
    const result = outcome.handled.value;
    if (result instanceof ControlError) throw result;
    return {
      status: 200,
      body: await signReply(ctx, tenantName, to, inReplyTo, `${type}.result`, { result }),
    };
  } catch (e) {
    const err = errorFields(e);
    if (e instanceof TrustError || (e instanceof ControlError && e.code === "WRONG_TYPE")) {
      await recordAuthFailure(ctx, tenantName, {
        code: err.code,
        message: err.message,
        kid: claim.kid,
        type: claim.type,
        endpoint: type,
      });
    }
    return {
      status: err.status,
      body: await signReply(ctx, tenantName, to, inReplyTo, "error", {
        error: {
          code: err.code,
          message: err.message,
          ...(err.details ? { details: err.details } : {}),
        },
      }),
    };
  }
}

/**
 * Handles `POST /v1/t/{tenant}/enroll`: an envelope signed by the new key, carrying the
 * one-time enrollment token, the identity's name and kind and the public key.
 *
 * @param ctx the context
 * @param c the Hono context
 * @returns the signed reply
 */
export async function handleEnroll(ctx: Ctx, c: Context): Promise<SignedReply> {
  const tenantName = c.req.param("tenant") ?? "";
  const env = await readJson(c);
  const claim = claimed(env);
  // The signature proves only that the sender holds the key it enrolls (any key): until the
  // token is redeemed, refusals go to `<tenant>/unknown` and answer no nonce.
  let to = UNAUTHENTICATED;
  let inReplyTo: string | null = null;
  try {
    if (env === undefined) {
      throw new TrustError("MALFORMED", "Body is not JSON: send a signed envelope");
    }
    const result = await ctx.store.tx(async (t) => {
      const tenant = await t.getTenant(tenantName);
      if (!tenant) throw new ControlError("UNKNOWN_TENANT", `Tenant ${tenantName} not found`);
      const p = (env as { payload?: Record<string, unknown> }).payload ?? {};
      let publicKey: Uint8Array | null = null;
      const payload = await verifyEnvelope(env, {
        // Proof of possession: the message must be signed by the key it enrolls.
        keys: (kid) => {
          try {
            const pub = decodePublicKey(p.public, "public");
            if (keyId(pub) !== kid) return undefined;
            publicKey = pub;
            return pub;
          } catch {
            return undefined;
          }
        },
        audience: CONTROL_AUDIENCE,
        tenant: tenantName,
        now: ctx.now,
        skewSeconds: ctx.skewSeconds,
        checkNonce: (nonce, exp) => t.insertNonce(tenantName, nonce, exp),
      });
      if (payload.type !== "enroll") {
        throw new ControlError(
          "WRONG_TYPE",
          `Message of type "${payload.type}" sent to the enroll endpoint`,
        );
      }
      const body = callFields(payload);
      object(body, ["token", "name", "kind", "public"]);
      const identity = await redeemEnrollmentToken(t, tenantName, {
        token: str(body, "token", { max: 200 }),
        name: str(body, "name", { max: 128 }),
        kind: str(body, "kind", { max: 8 }),
        publicKey: publicKey as unknown as Uint8Array,
        now: ctx.now(),
      });
      to = identity.name;
      inReplyTo = payload.nonce;
      return {
        tenant: tenantName,
        name: identity.name,
        kind: identity.kind,
        kid: identity.kid,
        operator: identity.operator,
        control_kid: ctx.signer.kid,
      };
    });
    return {
      status: 200,
      body: await signReply(ctx, tenantName, to, inReplyTo, "enroll.result", { result }),
    };
  } catch (e) {
    const err = errorFields(e);
    if (e instanceof TrustError || (e instanceof ControlError && e.code === "TOKEN_USED")) {
      await recordAuthFailure(ctx, tenantName, {
        code: err.code,
        message: err.message,
        kid: claim.kid,
        type: claim.type,
        endpoint: "enroll",
      });
    }
    return {
      status: err.status,
      body: await signReply(ctx, tenantName, to, inReplyTo, "error", {
        error: {
          code: err.code,
          message: err.message,
          ...(err.details ? { details: err.details } : {}),
        },
      }),
    };
  }
}
