/**
 * The control-plane HTTP API as a Hono app: `createControlApp(deps)` builds it, `main.ts`
 * serves it. Machine identities (agents, MCP servers) speak signed envelopes to
 * `/v1/t/{tenant}/signed/{type}`; humans use bearer tokens (personal API tokens or dashboard
 * sessions) on the other `/v1/t/{tenant}/…` routes. Errors are JSON with stable codes:
 * `{"error": {"code", "message", "details"?}}`.
 *
 * This module must never let a machine identity approve: the approval routes accept bearer
 * tokens of human users only, and refuse (and record) any signed envelope sent to them.
 *
 * @module
 */
import { Hono } from "hono";
import type { Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { type Ed25519KeyPair, encodeBase64Url } from "@infraveil/trust";
import type { JsonValue } from "@infraveil/ledger";
import { AuthorityGraph, formatPath } from "./authority.ts";
import {
  type ApprovalProofVerifier,
  compiledPolicy,
  type ControlNotification,
  type Ctx,
  type FaultHook,
  iso,
} from "./_context.ts";
import { createEnvelopeSigner, type EnvelopeSigner } from "@infraveil/trust";
import { defaultRandom, parseToken, type Random, secretMatches } from "./_ids.ts";
import { ControlError } from "./error.ts";
import { appendEvidence, evidenceHead, exportEvidence } from "./evidence.ts";
import { handleEnroll, handleSigned } from "./_signed.ts";
import {
  approvalTarget,
  castVote,
  checkRequest,
  excludedApprovers,
  proposePolicy,
  requestView,
  whoCanApprove,
} from "./_requests.ts";
import { closeBreakGlass, openBreakGlass, reviewBreakGlass, sessionView } from "./_breakglass.ts";
import { fleetStatus, queryFindings, querySpans, spanView } from "./_fleet.ts";
import {
  decodeCursor,
  encodeCursor,
  NAME_HINT,
  NAME_RE,
  type Obj,
  object,
  optBool,
  optInt,
  optStr,
  str,
} from "./_validate.ts";
import {
  addUser,
  createApiToken,
  createEnrollmentToken,
  redeemSignup,
  revokeIdentity,
} from "./tenant.ts";
import { buildOpenApi } from "./openapi.ts";
import { newId } from "./_ids.ts";
import {
  type ControlStore,
  DEFAULT_SETTINGS,
  type RequestStatus,
  type StoreTx,
  type TenantRow,
  type TenantSettings,
  type UserRow,
} from "./store.ts";

/** What the app needs. */
export interface ControlDeps {
  /** Storage. */
  store: ControlStore;
  /** The control plane's own Ed25519 signing key. */
  keys: Ed25519KeyPair;
  /** Clock, ms (default `Date.now`). */
  now?: () => number;
  /** Randomness (default WebCrypto). */
  random?: Random;
  /** Break-glass notification hook (called after the opening is committed). */
  notify?: (event: ControlNotification) => void | Promise<void>;
  /** Verifies the `proof` of an approval (the dashboard's passkey assertion). */
  verifyApprovalProof?: ApprovalProofVerifier;
  /** Base URL for links to the dashboard (default `http://127.0.0.1:8700`). */
  publicUrl?: string;
  /** Allowed clock skew of signed messages, seconds (default 30). */
  skewSeconds?: number;
  /** Largest request body, bytes (default 4 MiB). */
  maxBodyBytes?: number;
  /** Fault injection for crash tests. */
  fault?: FaultHook;
  /**
   * Let signed calls that wait for the database together share one commit (SQLite group
   * commit; each is answered only once that commit is durable). Default true.
   */
  groupCommit?: boolean;
}

const REQUEST_STATUSES: readonly string[] = [
  "denied",
  "pending",
  "allowed",
  "approved",
  "rejected",
  "expired",
  "executed",
  "failed",
];

function errorResponse(c: Context, e: unknown): Response {
  if (e instanceof ControlError) {
    return c.json(
      { error: { code: e.code, message: e.message, ...(e.details ? { details: e.details } : {}) } },
      e.status as 400,
    );
  }
  console.error("control: internal error", e);
  return c.json({
    error: { code: "INTERNAL", message: "Internal error; see the control plane's log" },
  }, 500);
}

async function jsonBody(c: Context): Promise<Obj> {
  const text = await c.req.text();
  if (text.trim() === "") return {};
  try {
    const v = JSON.parse(text);
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error();
    return v as Obj;
  } catch {
    throw new ControlError("BAD_REQUEST", "Body must be a JSON object");
  }
}

function isEnvelope(v: Obj): boolean {
  return "payload" in v && "kid" in v && "sig" in v;
}

/** An authenticated human. */
interface Human {
  tenant: TenantRow;
  user: UserRow;
}

/**
 * Builds the control-plane app.
 *
 * @param deps store, key, clock, randomness, hooks
 * @returns the Hono app
 * @example
 * ```ts
 * import { createControlApp, openSqliteStore } from "@infraveil/control";
 * import { generateKeyPair } from "@infraveil/trust";
 * const store = await openSqliteStore(":memory:");
 * const app = createControlApp({ store, keys: generateKeyPair() });
 * const res = await app.request("/healthz");
 * if (res.status !== 200) throw new Error();
 * await store.close();
 * ```
 */
export function createControlApp(deps: ControlDeps): Hono {
  const {
    store,
    keys,
    now = Date.now,
    random = defaultRandom,
    publicUrl = "http://127.0.0.1:8700",
    skewSeconds = 30,
    maxBodyBytes = 4 << 20,
  } = deps;
  let signer: EnvelopeSigner | null = null;
  const signerReady = createEnvelopeSigner(keys).then((s) => (signer = s));
  const ctx: Ctx = {
    store,
    key: keys,
    get signer(): EnvelopeSigner {
      if (!signer) throw new Error("signer not ready");
      return signer;
    },
    now,
    random,
    notify: deps.notify,
    verifyProof: deps.verifyApprovalProof,
    publicUrl: publicUrl.replace(/\/+$/, ""),
    skewSeconds,
    fault: deps.fault ?? (() => {}),
    policies: new Map(),
    seen: { tenants: new Map(), identities: new Map() },
    groupCommit: deps.groupCommit ?? true,
  };

  const app = new Hono();
  app.use(
    "*",
    bodyLimit({
      maxSize: maxBodyBytes,
      onError: (c) =>
        c.json({
          error: { code: "PAYLOAD_TOO_LARGE", message: `Body larger than ${maxBodyBytes} bytes` },
        }, 413),
    }),
  );
  app.use("*", async (_c, next) => {
    if (!signer) await signerReady;
    await next();
  });
  app.onError((e, c) => errorResponse(c, e));
  app.notFound((c) =>
    c.json({ error: { code: "NOT_FOUND", message: `No route ${c.req.method} ${c.req.path}` } }, 404)
  );

  // Public -------------------------------------------------------------------------------------
  app.get("/healthz", (c) => c.json({ ok: true, backend: store.backend }));
  app.get("/openapi.json", (c) => c.json(buildOpenApi()));
  app.get(
    "/v1/control-key",
    (c) =>
      c.json({
        kid: keys.kid,
        public_key: encodeBase64Url(keys.publicKey),
        note_name: "infraveil-control",
      }),
  );
  app.post("/v1/signup", async (c) => {
    const body = object(await jsonBody(c), ["tenant", "token", "display_name"]);
    const tenant = str(body, "tenant", { max: 63 });
    const out = await store.tx(async (t) => {
      if (!(await t.getTenant(tenant))) {
        throw new ControlError("UNKNOWN_TENANT", `Tenant ${tenant} not found`);
      }
      return await redeemSignup(t, tenant, str(body, "token", { max: 200 }), {
        now: now(),
        random,
        displayName: optStr(body, "display_name"),
      });
    });
    return c.json({ user_id: out.user.id, email: out.user.email, token: out.apiToken });
  });

  // Machine identities ---------------------------------------------------------------------------
  app.post("/v1/t/:tenant/signed/:type", async (c) => {
    const reply = await handleSigned(ctx, c);
    return c.json(reply.body as Record<string, unknown>, reply.status as 200);
  });
  app.post("/v1/t/:tenant/enroll", async (c) => {
    const reply = await handleEnroll(ctx, c);
    return c.json(reply.body as Record<string, unknown>, reply.status as 200);
  });

  // Humans -----------------------------------------------------------------------------------
  async function human(c: Context, body?: Obj): Promise<Human> {
    const tenantName = c.req.param("tenant") ?? "";
    const header = c.req.header("authorization") ?? "";
    const m = /^Bearer (\S+)$/.exec(header);
    if (!m) {
      if (body && isEnvelope(body)) await refuseMachine(tenantName, c, body);
      throw new ControlError("UNAUTHENTICATED", "Send Authorization: Bearer <personal API token>");
    }
    const parsed = parseToken(m[1], "ivt");
    const bad = new ControlError("UNAUTHENTICATED", "Invalid, revoked or expired token");
    if (!parsed) throw bad;
    return await store.tx(async (t) => {
      const tenant = await t.getTenant(tenantName);
      if (!tenant) throw new ControlError("UNKNOWN_TENANT", `Tenant ${tenantName} not found`);
      const tok = await t.getToken(tenantName, parsed.id);
      if (
        !tok || (tok.kind !== "api" && tok.kind !== "session") ||
        !secretMatches(parsed.secret, tok.hash)
      ) {
        throw bad;
      }
      if (tok.revokedAt !== null || (tok.expiresAt !== null && tok.expiresAt <= now())) throw bad;
      const user = await t.getUser(tenantName, tok.userId);
      if (!user || user.status !== "active") throw bad;
      return { tenant, user };
    });
  }

  // A signed envelope sent where a human must act: refuse, and record who tried.
  async function refuseMachine(tenantName: string, c: Context, body: Obj): Promise<never> {
    const kid = typeof body.kid === "string" ? body.kid.slice(0, 64) : null;
    await store.tx(async (t) => {
      if (!(await t.getTenant(tenantName))) return;
      const identity = kid ? await t.getIdentityByKid(tenantName, kid) : null;
      await appendEvidence(t, tenantName, {
        type: "approval.refused",
        actor: identity ? `${identity.kind}:${identity.name}` : kid ? `key:${kid}` : "unknown",
        data: {
          code: "HUMAN_ONLY",
          path: c.req.path.slice(0, 200),
          reason: "a signed machine envelope was sent to a human-only endpoint",
        },
      }, now());
    });
    throw new ControlError(
      "HUMAN_ONLY",
      "Approvals come from humans only: agent and MCP identities can never approve or reject",
    );
  }

  async function requireRole(t: StoreTx, h: Human, roles: string[]): Promise<AuthorityGraph> {
    const graph = new AuthorityGraph(await t.loadAuthority(h.tenant.name));
    if (!roles.some((r) => graph.hasRole(h.user.id, r, now()))) {
      throw new ControlError("FORBIDDEN", `${h.user.email} needs role ${roles.join(" or ")}`);
    }
    return graph;
  }

  async function resolveUser(t: StoreTx, tenant: string, ref: string): Promise<UserRow> {
    const u = ref.includes("@")
      ? await t.getUserByEmail(tenant, ref)
      : await t.getUser(tenant, ref);
    if (!u) throw new ControlError("NOT_FOUND", `User ${ref} not found`);
    return u;
  }

  const T = "/v1/t/:tenant";

  app.get(`${T}/me`, async (c) => {
    const h = await human(c);
    const roles = await store.tx(async (
      t,
    ) => [
      ...new AuthorityGraph(await t.loadAuthority(h.tenant.name)).roles(h.user.id, now()).keys(),
    ]);
    return c.json({ user_id: h.user.id, email: h.user.email, tenant: h.tenant.name, roles });
  });

  app.post(`${T}/tokens`, async (c) => {
    const body = object(await jsonBody(c), ["label", "ttl_seconds"]);
    const h = await human(c);
    const token = await store.tx((t) =>
      createApiToken(t, h.tenant.name, h.user, {
        label: optStr(body, "label") ?? undefined,
        ttlSeconds: optInt(body, "ttl_seconds", 60, 366 * 86_400),
        now: now(),
        random,
      })
    );
    return c.json({ token, id: parseToken(token, "ivt")!.id }, 201);
  });
  app.delete(`${T}/tokens/:id`, async (c) => {
    const h = await human(c);
    const id = c.req.param("id");
    await store.tx(async (t) => {
      const tok = await t.getToken(h.tenant.name, id);
      if (!tok) throw new ControlError("NOT_FOUND", `Token ${id} not found`);
      if (tok.userId !== h.user.id) await requireRole(t, h, ["admin"]);
      await t.revokeToken(h.tenant.name, id, now());
      await appendEvidence(t, h.tenant.name, {
        type: "token.revoke",
        actor: `user:${h.user.email}`,
        data: { token_id: id },
      }, now());
    });
    return c.json({ revoked: id });
  });

  // Requests and approvals -----------------------------------------------------------------------
  app.get(`${T}/requests`, async (c) => {
    const h = await human(c);
    const q = c.req.query();
    const status = q.status;
    if (status !== undefined && !REQUEST_STATUSES.includes(status)) {
      throw new ControlError(
        "BAD_REQUEST",
        `Invalid query "status": one of ${REQUEST_STATUSES.join(", ")}`,
      );
    }
    const limit = Math.min(200, Math.max(1, Number(q.limit ?? 50) || 50));
    const out = await store.tx(async (t) => {
      const rows = await t.listRequests(h.tenant.name, {
        limit,
        status: status as RequestStatus | undefined,
        before: decodeCursor(q.cursor),
      });
      const items = [];
      for (const r of rows) items.push(await requestView(ctx, t, h.tenant.name, r));
      const last = rows.at(-1);
      return {
        items,
        next_cursor: rows.length === limit && last ? encodeCursor([last.createdAt, last.id]) : null,
      };
    });
    return c.json(out);
  });
  app.get(`${T}/requests/:id`, async (c) => {
    const h = await human(c);
    const out = await store.tx(async (t) => {
      const req = await t.getRequest(h.tenant.name, c.req.param("id"));
      if (!req) throw new ControlError("NOT_FOUND", `Request ${c.req.param("id")} not found`);
      return await requestView(ctx, t, h.tenant.name, req);
    });
    return c.json(out);
  });
  for (const decision of ["approve", "reject"] as const) {
    app.post(`${T}/requests/:id/${decision}`, async (c) => {
      const body = await jsonBody(c);
      const h = await human(c, body);
      object(body, ["proof", "comment"]);
      const out = await castVote(ctx, h.tenant.name, h.user.id, c.req.param("id"), {
        decision,
        proof: body.proof,
        comment: optStr(body, "comment", { max: 2000 }),
      });
      return c.json(out);
    });
  }
  app.get(`${T}/requests/:id/approvers`, async (c) => {
    const h = await human(c);
    const out = await store.tx(async (t) => {
      const req = await t.getRequest(h.tenant.name, c.req.param("id"));
      if (!req) throw new ControlError("NOT_FOUND", `Request ${c.req.param("id")} not found`);
      const approvers = await whoCanApprove(t, h.tenant.name, req, now());
      const view = await requestView(ctx, t, h.tenant.name, req);
      return {
        request_id: req.id,
        status: req.status,
        target: approvalTarget(req),
        approvals_required: req.approvalsRequired,
        approvals_needed: view.approvals_needed,
        approvers: approvers.map((a) => ({ ...a, path_text: formatPath(a.path) })),
      };
    });
    return c.json(out);
  });
  app.get(`${T}/requests/:id/why/:user`, async (c) => {
    const h = await human(c);
    const out = await store.tx(async (t) => {
      const req = await t.getRequest(h.tenant.name, c.req.param("id"));
      if (!req) throw new ControlError("NOT_FOUND", `Request ${c.req.param("id")} not found`);
      const user = await resolveUser(t, h.tenant.name, c.req.param("user"));
      const graph = new AuthorityGraph(await t.loadAuthority(h.tenant.name));
      const target = approvalTarget(req);
      const excluded = excludedApprovers(graph, req);
      const path = graph.explain(user.id, target, now());
      const reason = excluded.has(user.id)
        ? "requester or operator of the requesting identity: can never approve"
        : user.status !== "active"
        ? `user is ${user.status}`
        : path
        ? null
        : "no grant covers this action, environment and service";
      return {
        request_id: req.id,
        user: user.id,
        email: user.email,
        target,
        can_approve: reason === null,
        reason,
        path: path ?? [],
        path_text: path ? formatPath(path) : null,
      };
    });
    return c.json(out);
  });

  // Policies -----------------------------------------------------------------------------------
  app.get(`${T}/policies`, async (c) => {
    const h = await human(c);
    const items = await store.tx((t) => t.listPolicies(h.tenant.name));
    return c.json({
      active: h.tenant.activePolicyHash,
      items: items.map((p) => ({
        ...p,
        createdAt: undefined,
        activatedAt: undefined,
        created_at: iso(p.createdAt),
        activated_at: iso(p.activatedAt),
        created_by: p.createdBy,
        createdBy: undefined,
      })),
    });
  });
  app.get(`${T}/policies/:hash`, async (c) => {
    const h = await human(c);
    const hash = c.req.param("hash") === "active" ? h.tenant.activePolicyHash : c.req.param("hash");
    const p = hash ? await store.tx((t) => t.getPolicy(h.tenant.name, hash)) : null;
    if (!p) throw new ControlError("NOT_FOUND", `Policy ${c.req.param("hash")} not found`);
    return c.json({
      hash: p.hash,
      status: p.status,
      text: p.text,
      created_at: iso(p.createdAt),
      activated_at: iso(p.activatedAt),
    });
  });
  app.post(`${T}/policies`, async (c) => {
    const body = object(await jsonBody(c), ["text"]);
    const h = await human(c);
    const text = str(body, "text", { max: 1 << 20 });
    const out = await store.tx((t) => proposePolicy(ctx, t, h.tenant, h.user, text));
    return c.json(out, 201);
  });
  app.post(`${T}/policies/check`, async (c) => {
    const body = await jsonBody(c);
    const h = await human(c);
    const agent = str(body, "agent", { pattern: NAME_RE, patternHint: NAME_HINT });
    const { agent: _a, ...rest } = body;
    const out = await store.tx((t) =>
      checkRequest(ctx, t, h.tenant, {
        kind: "mcp",
        name: agent,
        actor: `user:${h.user.email}`,
        operator: null,
      }, rest)
    );
    return c.json(out);
  });

  // Settings, users, identities --------------------------------------------------------------
  app.get(`${T}/settings`, async (c) => {
    const h = await human(c);
    return c.json(h.tenant.settings);
  });
  app.put(`${T}/settings`, async (c) => {
    const body = object(await jsonBody(c), Object.keys(DEFAULT_SETTINGS));
    const h = await human(c);
    const out = await store.tx(async (t) => {
      await requireRole(t, h, ["admin"]);
      const next = { ...h.tenant.settings } as Record<string, unknown>;
      for (const [k, v] of Object.entries(body)) {
        const def = (DEFAULT_SETTINGS as unknown as Record<string, unknown>)[k];
        if (k === "token_approvals") {
          const o = object(v, Object.keys(v ?? {}), "token_approvals");
          for (const env of Object.keys(o)) {
            if (typeof o[env] !== "boolean") {
              throw new ControlError(
                "BAD_REQUEST",
                `Invalid field "token_approvals.${env}": true or false`,
              );
            }
          }
          next[k] = o;
        } else if (typeof def === "boolean") {
          next[k] = optBool(body, k) ?? def;
        } else {
          next[k] = optInt(body, k, 1, 1e9) ?? def;
        }
      }
      if ((next.breakglass_default_seconds as number) > (next.breakglass_max_seconds as number)) {
        throw new ControlError(
          "BAD_REQUEST",
          "breakglass_default_seconds cannot exceed breakglass_max_seconds",
        );
      }
      await t.setTenantSettings(h.tenant.name, next as unknown as TenantSettings);
      await appendEvidence(t, h.tenant.name, {
        type: "tenant.settings",
        actor: `user:${h.user.email}`,
        data: { changed: body as JsonValue },
      }, now());
      return next;
    });
    return c.json(out);
  });
  app.post(`${T}/users`, async (c) => {
    const body = object(await jsonBody(c), ["email", "roles"]);
    const h = await human(c);
    const roles = Array.isArray(body.roles) ? body.roles.map(String) : [];
    for (const r of roles) {
      if (!NAME_RE.test(r)) throw new ControlError("BAD_REQUEST", `Invalid role "${r}"`);
    }
    const out = await store.tx(async (t) => {
      await requireRole(t, h, ["admin"]);
      return await addUser(t, h.tenant.name, {
        email: str(body, "email"),
        roles,
        actor: `user:${h.user.email}`,
        now: now(),
        random,
      });
    });
    return c.json({
      user_id: out.user.id,
      email: out.user.email,
      signup_url: `${ctx.publicUrl}/signup?tenant=${encodeURIComponent(h.tenant.name)}&token=${
        encodeURIComponent(out.signupToken)
      }`,
    }, 201);
  });
  app.get(`${T}/identities`, async (c) => {
    const h = await human(c);
    const out = await store.tx(async (t) => {
      await requireRole(t, h, ["admin"]);
      return (await t.listIdentities(h.tenant.name)).map((i) => ({
        name: i.name,
        kind: i.kind,
        kid: i.kid,
        public_key: i.publicKey,
        operator: i.operator,
        environment: i.environment,
        service: i.service,
        status: i.status,
        created_at: iso(i.createdAt),
        revoked_at: iso(i.revokedAt),
      }));
    });
    return c.json({ items: out });
  });
  app.post(`${T}/identities/:name/revoke`, async (c) => {
    const h = await human(c);
    const kid = await store.tx(async (t) => {
      await requireRole(t, h, ["admin"]);
      return await revokeIdentity(
        t,
        h.tenant.name,
        c.req.param("name"),
        `user:${h.user.email}`,
        now(),
      );
    });
    return c.json({ revoked: kid });
  });
  app.post(`${T}/enrollment-tokens`, async (c) => {
    const body = object(await jsonBody(c), [
      "name",
      "kind",
      "operator",
      "environment",
      "service",
      "ttl_seconds",
    ]);
    const h = await human(c);
    const out = await store.tx(async (t) => {
      await requireRole(t, h, ["admin"]);
      return await createEnrollmentToken(t, h.tenant.name, {
        name: str(body, "name"),
        kind: str(body, "kind") as "agent",
        operator: optStr(body, "operator") ?? null,
        environment: optStr(body, "environment", { max: 128 }) ?? null,
        service: optStr(body, "service", { max: 128 }) ?? null,
        createdBy: `user:${h.user.email}`,
        ttlSeconds: optInt(body, "ttl_seconds", 60, 7 * 86_400),
        now: now(),
        random,
      });
    });
    return c.json({
      token: out.token,
      expires_at: iso(out.expiresAt),
      control_kid: keys.kid,
      control_public_key: encodeBase64Url(keys.publicKey),
    }, 201);
  });

  // Authority graph ------------------------------------------------------------------------------
  app.get(`${T}/authority`, async (c) => {
    const h = await human(c);
    const data = await store.tx((t) => t.loadAuthority(h.tenant.name));
    return c.json({
      users: data.users.map((u) => ({ id: u.id, email: u.email, status: u.status })),
      groups: data.groups,
      roles: data.roles,
      members: data.members.map((m) => ({
        group: m.group,
        member_kind: m.memberKind,
        member: m.member,
      })),
      assignments: data.assignments.map((a) => ({
        subject_kind: a.subjectKind,
        subject: a.subject,
        role: a.role,
      })),
      grants: data.grants,
      delegations: data.delegations.map((d) => ({
        id: d.id,
        from: d.fromUser,
        to: d.toUser,
        role: d.role,
        expires_at: iso(d.expiresAt),
        revoked_at: iso(d.revokedAt),
        active: d.revokedAt === null && d.expiresAt > now(),
      })),
    });
  });

  async function authorityChange(
    c: Context,
    op: string,
    fields: string[],
    fn: (t: StoreTx, h: Human, body: Obj) => Promise<Record<string, unknown>>,
    roles: string[] = ["admin"],
  ): Promise<Response> {
    const body = object(await jsonBody(c), fields);
    const h = await human(c);
    const out = await store.tx(async (t) => {
      if (roles.length > 0) await requireRole(t, h, roles);
      const result = await fn(t, h, body);
      await appendEvidence(t, h.tenant.name, {
        type: "authority.change",
        actor: `user:${h.user.email}`,
        data: { op, ...result } as JsonValue,
      }, now());
      return result;
    });
    return c.json(out);
  }
  const name = (o: Obj, f: string) => str(o, f, { pattern: NAME_RE, patternHint: NAME_HINT });
  const subject = async (
    t: StoreTx,
    tenant: string,
    kind: string,
    ref: string,
  ): Promise<string> => {
    if (kind === "user") return (await resolveUser(t, tenant, ref)).id;
    if (kind === "group") return ref;
    throw new ControlError("BAD_REQUEST", `Invalid kind "${kind}": "user" or "group"`);
  };
  app.post(
    `${T}/authority/groups`,
    (c) =>
      authorityChange(c, "group.create", ["name"], async (t, h, b) => {
        const n = name(b, "name");
        await t.insertGroup(h.tenant.name, n);
        return { group: n };
      }),
  );
  app.post(
    `${T}/authority/roles`,
    (c) =>
      authorityChange(c, "role.create", ["name"], async (t, h, b) => {
        const n = name(b, "name");
        await t.insertRole(h.tenant.name, n);
        return { role: n };
      }),
  );
  for (const [method, op] of [["post", "member.add"], ["delete", "member.remove"]] as const) {
    app[method](
      `${T}/authority/members`,
      (c) =>
        authorityChange(c, op, ["group", "member_kind", "member"], async (t, h, b) => {
          const group = name(b, "group");
          const kind = str(b, "member_kind");
          const member = await subject(t, h.tenant.name, kind, str(b, "member"));
          const row = { group, memberKind: kind as "user", member };
          if (method === "post") {
            const data = await t.loadAuthority(h.tenant.name);
            if (!data.groups.includes(group)) {
              throw new ControlError("NOT_FOUND", `Group ${group} not found`);
            }
            if (kind === "group" && !data.groups.includes(member)) {
              throw new ControlError("NOT_FOUND", `Group ${member} not found`);
            }
            await t.addGroupMember(h.tenant.name, row);
          } else if (!(await t.removeGroupMember(h.tenant.name, row))) {
            throw new ControlError("NOT_FOUND", "No such membership");
          }
          return { group, member_kind: kind, member };
        }),
    );
  }
  for (const [method, op] of [["post", "role.assign"], ["delete", "role.unassign"]] as const) {
    app[method](
      `${T}/authority/assignments`,
      (c) =>
        authorityChange(c, op, ["subject_kind", "subject", "role"], async (t, h, b) => {
          const kind = str(b, "subject_kind");
          const subj = await subject(t, h.tenant.name, kind, str(b, "subject"));
          const role = name(b, "role");
          const row = { subjectKind: kind as "user", subject: subj, role };
          if (method === "post") {
            await t.insertRole(h.tenant.name, role);
            await t.assignRole(h.tenant.name, row);
          } else if (!(await t.unassignRole(h.tenant.name, row))) {
            throw new ControlError("NOT_FOUND", "No such role assignment");
          }
          return { subject_kind: kind, subject: subj, role };
        }),
    );
  }
  const pattern = (o: Obj, f: string) =>
    str(o, f, {
      pattern: /^(\*|[A-Za-z0-9][A-Za-z0-9._-]{0,127})$/,
      patternHint: `"*" or a name (${NAME_HINT})`,
    });
  app.post(
    `${T}/authority/grants`,
    (c) =>
      authorityChange(
        c,
        "grant.add",
        ["role", "action", "environment", "service"],
        async (t, h, b) => {
          const grant = {
            id: newId("grt", random),
            role: name(b, "role"),
            action: pattern(b, "action"),
            environment: pattern(b, "environment"),
            service: pattern(b, "service"),
          };
          await t.insertRole(h.tenant.name, grant.role);
          await t.insertGrant(h.tenant.name, grant);
          return grant;
        },
      ),
  );
  app.delete(
    `${T}/authority/grants/:id`,
    (c) =>
      authorityChange(c, "grant.remove", [], async (t, h) => {
        const id = c.req.param("id") ?? "";
        if (!(await t.deleteGrant(h.tenant.name, id))) {
          throw new ControlError("NOT_FOUND", `Grant ${id} not found`);
        }
        return { id };
      }),
  );
  app.post(
    `${T}/authority/delegations`,
    (c) =>
      authorityChange(c, "delegation.add", ["to", "role", "ttl_seconds"], async (t, h, b) => {
        const to = await resolveUser(t, h.tenant.name, str(b, "to"));
        if (to.id === h.user.id) {
          throw new ControlError("BAD_REQUEST", "Cannot delegate to yourself");
        }
        const ttl = optInt(b, "ttl_seconds", 60, 30 * 86_400);
        if (ttl === undefined) {
          throw new ControlError(
            "BAD_REQUEST",
            'Invalid field "ttl_seconds": required; delegations always expire',
          );
        }
        const row = {
          id: newId("dlg", random),
          fromUser: h.user.id,
          toUser: to.id,
          role: optStr(b, "role", { pattern: NAME_RE, patternHint: NAME_HINT }) ?? null,
          expiresAt: now() + ttl * 1000,
          createdAt: now(),
          revokedAt: null,
        };
        await t.insertDelegation(h.tenant.name, row);
        return {
          id: row.id,
          from: row.fromUser,
          to: row.toUser,
          role: row.role,
          expires_at: iso(row.expiresAt),
        };
      }, []),
  );
  app.delete(
    `${T}/authority/delegations/:id`,
    (c) =>
      authorityChange(c, "delegation.revoke", [], async (t, h) => {
        const id = c.req.param("id") ?? "";
        const d = (await t.loadAuthority(h.tenant.name)).delegations.find((x) => x.id === id);
        if (!d) throw new ControlError("NOT_FOUND", `Delegation ${id} not found`);
        if (d.fromUser !== h.user.id) await requireRole(t, h, ["admin"]);
        if (!(await t.revokeDelegation(h.tenant.name, id, now()))) {
          throw new ControlError("CONFLICT", `Delegation ${id} is already revoked`);
        }
        return { id };
      }, []),
  );

  // Break-glass ------------------------------------------------------------------------------
  app.post(`${T}/breakglass`, async (c) => {
    const body = await jsonBody(c);
    const h = await human(c);
    return c.json(await openBreakGlass(ctx, h.tenant.name, h.user, body), 201);
  });
  app.get(`${T}/breakglass`, async (c) => {
    const h = await human(c);
    const filter = c.req.query("review");
    const rows = await store.tx((t) => t.listBreakGlass(h.tenant.name, 200));
    let items = rows.map((r) => sessionView(r, now()));
    if (filter === "pending") items = items.filter((s) => s.review_required);
    return c.json({ items });
  });
  app.post(`${T}/breakglass/:id/close`, async (c) => {
    const body = object(await jsonBody(c), ["reason"]);
    const h = await human(c);
    const isAdmin = await store.tx(async (t) =>
      new AuthorityGraph(await t.loadAuthority(h.tenant.name)).hasRole(h.user.id, "admin", now())
    );
    return c.json(
      await closeBreakGlass(
        ctx,
        h.tenant.name,
        h.user,
        c.req.param("id"),
        optStr(body, "reason", { max: 2000 }) ?? "closed by hand",
        isAdmin,
      ),
    );
  });
  app.post(`${T}/breakglass/:id/review`, async (c) => {
    const body = object(await jsonBody(c), ["review"]);
    const h = await human(c);
    return c.json(
      await reviewBreakGlass(
        ctx,
        h.tenant.name,
        h.user,
        c.req.param("id"),
        str(body, "review", { max: 20_000 }),
      ),
    );
  });

  // Fleet, traces, findings ------------------------------------------------------------------
  app.get(`${T}/fleet`, async (c) => {
    const h = await human(c);
    return c.json(await store.tx((t) => fleetStatus(ctx, t, h.tenant)));
  });
  const numQuery = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  app.get(`${T}/findings`, async (c) => {
    const h = await human(c);
    const q = c.req.query();
    const query: Obj = {
      host: q.host,
      category: q.category,
      severity: q.severity?.split(","),
      status: q.status,
      limit: numQuery(q.limit),
      cursor: q.cursor,
    };
    return c.json(await store.tx((t) => queryFindings(t, h.tenant.name, query)));
  });
  app.get(`${T}/traces`, async (c) => {
    const h = await human(c);
    const q = c.req.query();
    const query: Obj = {
      host: q.host,
      service: q.service,
      min_status: numQuery(q.min_status),
      since_ms: numQuery(q.since_ms),
      until_ms: numQuery(q.until_ms),
      name: q.name,
      limit: numQuery(q.limit),
      cursor: q.cursor,
    };
    return c.json(await store.tx((t) => querySpans(t, h.tenant.name, query)));
  });
  app.get(`${T}/traces/:id`, async (c) => {
    const h = await human(c);
    const spans = await store.tx((t) => t.getTrace(h.tenant.name, c.req.param("id")));
    if (spans.length === 0) {
      throw new ControlError("NOT_FOUND", `Trace ${c.req.param("id")} not found`);
    }
    return c.json({ trace_id: c.req.param("id"), spans: spans.map(spanView) });
  });

  // Evidence -----------------------------------------------------------------------------------
  app.get(`${T}/evidence/head`, async (c) => {
    const h = await human(c);
    return c.json(await store.tx((t) => evidenceHead(t, h.tenant.name)));
  });
  app.get(`${T}/evidence`, async (c) => {
    const h = await human(c);
    await store.tx((t) => requireRole(t, h, ["admin", "auditor"]));
    const from = Math.max(0, Number(c.req.query("from") ?? 0) || 0);
    let text = "";
    for await (const chunk of exportEvidence(store, h.tenant.name, { from })) text += chunk;
    return c.body(text, 200, { "content-type": "application/x-ndjson" });
  });

  // Keep a policy compiled in the cache so the first request does not pay for it.
  void compiledPolicy;
  return app;
}
