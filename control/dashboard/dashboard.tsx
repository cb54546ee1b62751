/** @jsxImportSource hono/jsx */
/**
 * The dashboard as a Hono app: server-rendered pages under `/dashboard/…` plus the one-time
 * sign-up page at `/signup`, one static script and one stylesheet. It reads and changes
 * everything through the control-plane API in process (with the user's session token as the
 * bearer), so the dashboard obeys exactly the API's rules; only passkeys and sessions are
 * handled here.
 *
 * Security: every response carries a strict CSP (no inline code) and anti-framing headers;
 * sessions are `__Host-` cookies (`HttpOnly`, `Secure`, `SameSite=Strict`) backed by
 * expiring control-plane tokens; every state change needs an `Origin` equal to the
 * dashboard's own and, when signed in, the session's CSRF token; every page lives under
 * `/dashboard/t/{tenant}/` and only accepts a session of that tenant.
 *
 * @module
 */
import { Hono } from "hono";
import type { Context } from "hono";
import type { Child } from "hono/jsx";
import { ControlError } from "../error.ts";
import { createApiToken } from "../tenant.ts";
import { defaultRandom, parseToken, type Random, secretMatches } from "../_ids.ts";
import type { ControlStore, UserRow } from "../store.ts";
import { ApiCaller, type ApiFetch, query } from "./_api.ts";
import { type Flash, Page, type PageCtx, render } from "./_layout.tsx";
import { ChooserPage, ErrorPage, LoginPage, SignupPage } from "./_pages_auth.tsx";
import {
  QueuePage,
  type RequestContext,
  RequestPage,
  type RequestView,
} from "./_pages_requests.tsx";
import {
  FindingsPage,
  type FindingView,
  FleetPage,
  type FleetView,
  type SpanView,
  TracePage,
  TracesPage,
} from "./_pages_fleet.tsx";
import {
  AccountPage,
  type ApproversView,
  AuthorityPage,
  type AuthorityView,
  BreakGlassPage,
  BreakGlassSessionPage,
  type BreakGlassView,
  type EvidenceLine,
  EvidencePage,
  PoliciesPage,
  PolicyPage,
  type PolicyView,
  UsersPage,
  type WhyView,
} from "./_pages_admin.tsx";
import { APP_CSS, APP_JS } from "./_static.ts";
import {
  CLEAR_COOKIE,
  csrfMatches,
  csrfToken,
  readSessionCookie,
  sameOrigin,
  SECURITY_HEADERS,
  sessionCookie,
} from "./_session.ts";
import type { PasskeyStore } from "./passkey_store.ts";
import {
  beginApproval,
  beginLogin,
  beginRegistration,
  finishLogin,
  finishRegistration,
  type PasskeyConfig,
} from "./webauthn.ts";

/** What the dashboard needs. */
export interface DashboardDeps {
  /** The control plane's store (sessions, sign-up link checks). */
  store: ControlStore;
  /** Passkeys, ceremony nonces and vote proofs. */
  passkeys: PasskeyStore;
  /** The control-plane API, called in process (e.g. `(r) => controlApp.fetch(r)`). */
  api: ApiFetch;
  /** The dashboard's public origin, e.g. `https://control.example.com` or `http://localhost:8700`. */
  origin: string;
  /** Key sealing passkey ceremony state, ≥ 32 bytes, the same on every instance. */
  secret: Uint8Array;
  /** WebAuthn relying-party id (default: the origin's host name; must be a domain). */
  rpId?: string;
  /** Relying-party name shown by authenticators (default `infraveil`). */
  rpName?: string;
  /** Clock, ms. */
  now?: () => number;
  /** Randomness. */
  random?: Random;
  /** Session lifetime, seconds (default 8 hours). */
  sessionTtlSeconds?: number;
}

/**
 * The passkey configuration shared by the dashboard and the approval proof verifier.
 *
 * @param deps passkeys, origin, secret, relying party, clock, randomness
 * @returns the configuration
 */
export function passkeyConfig(
  deps: Pick<
    DashboardDeps,
    "passkeys" | "origin" | "secret" | "rpId" | "rpName" | "now" | "random"
  >,
): PasskeyConfig {
  const origin = new URL(deps.origin).origin;
  if (deps.secret.length < 32) {
    throw new ControlError("BAD_REQUEST", "The dashboard secret must be at least 32 bytes");
  }
  return {
    passkeys: deps.passkeys,
    origin,
    rpId: deps.rpId ?? new URL(origin).hostname,
    rpName: deps.rpName ?? "infraveil",
    secret: deps.secret,
    now: deps.now ?? Date.now,
    random: deps.random ?? defaultRandom,
  };
}

const TENANT_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** A signed-in session. */
interface Session extends PageCtx {
  token: string;
  tokenId: string;
  api: ApiCaller;
  expiresAt: number | null;
}

const FLASH: Record<string, string> = {
  approved: "Your approval was verified with your passkey and recorded.",
  rejected: "Your rejection was verified with your passkey and recorded; the request is rejected.",
  welcome: "Welcome: your passkey is registered and you are signed in.",
  "signed-out": "You are signed out.",
  expired: "Your session ended; sign in again.",
  "bg-opened": "Break-glass session opened; holders and admins were notified.",
  "bg-closed": "Break-glass session ended.",
  "bg-reviewed": "Review recorded.",
  proposed: "Policy version proposed; its activation request is in the approval queue.",
  "passkey-added": "Passkey added.",
  "passkey-removed": "Passkey removed.",
};

function flashOf(c: Context): Flash | null {
  const done = c.req.query("done");
  return done && FLASH[done] ? { text: FLASH[done] } : null;
}

function wantsJson(c: Context): boolean {
  return (c.req.header("content-type") ?? "").includes("application/json");
}

type Body = Record<string, string | string[]>;

async function readBody(c: Context): Promise<Body> {
  if (wantsJson(c)) {
    try {
      const v = await c.req.json();
      if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error();
      return v as Body;
    } catch {
      throw new ControlError("BAD_REQUEST", "Body must be a JSON object");
    }
  }
  const form = await c.req.parseBody({ all: true });
  const out: Body = {};
  for (const [k, v] of Object.entries(form)) {
    out[k] = Array.isArray(v) ? v.map(String) : String(v);
  }
  return out;
}

function one(b: Body, k: string): string {
  const v = b[k];
  return Array.isArray(v) ? String(v[0] ?? "") : typeof v === "string" ? v : "";
}

function many(b: Body, k: string): string[] {
  const v = b[k];
  return Array.isArray(v) ? v.map(String) : typeof v === "string" && v !== "" ? [v] : [];
}

/**
 * Builds the dashboard app. Mount it in front of the control-plane API for the paths
 * {@link isDashboardPath} accepts (see `createControlPlane`).
 *
 * @param deps store, passkeys, the API, origin, secret, clock, randomness
 * @returns the Hono app
 */
export function createDashboard(deps: DashboardDeps): Hono {
  const { store, passkeys, now = Date.now, random = defaultRandom, sessionTtlSeconds = 8 * 3600 } =
    deps;
  const cfg = passkeyConfig(deps);
  const app = new Hono();

  app.use("*", async (c, next) => {
    await next();
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) {
      if (k === "cache-control" && c.res.headers.has(k)) continue;
      c.res.headers.set(k, v);
    }
  });
  // Cross-site requests never change anything: state changes need our exact Origin.
  app.use("*", async (c, next) => {
    if (c.req.method !== "GET" && c.req.method !== "HEAD") {
      const origin = c.req.header("origin");
      if (!sameOrigin(cfg.origin, origin, c.req.header("sec-fetch-site"))) {
        return problem(
          c,
          new ControlError(
            "FORBIDDEN",
            `Cross-origin request refused (Origin ${origin ?? "missing"})`,
          ),
        );
      }
    }
    return await next();
  });
  app.onError((e, c) => problem(c, e));
  app.notFound(async (c) =>
    c.html(await render(<ErrorPage title="Not found" message={`No page at ${c.req.path}`} />), 404)
  );

  async function problem(c: Context, e: unknown, s?: Session): Promise<Response> {
    const err = e instanceof ControlError ? e : null;
    if (!err) console.error("dashboard: internal error", e);
    const status = (err?.status ?? 500) as 400;
    const message = err ? err.message : "Internal error; see the control plane's log";
    if (wantsJson(c) || (c.req.header("accept") ?? "").includes("application/json")) {
      return c.json({ error: { code: err?.code ?? "INTERNAL", message } }, status);
    }
    const node = s
      ? (
        <Page ctx={s} title="Something went wrong" active="" flash={{ text: message, error: true }}>
          <p>
            <a href={`${s.base}/`}>Back to the approval queue</a>
          </p>
        </Page>
      )
      : <ErrorPage title="Something went wrong" message={message} />;
    return c.html(await render(node), status);
  }

  // Static assets ------------------------------------------------------------------------------
  const asset = (body: string, type: string) => (c: Context) =>
    c.body(body, 200, { "content-type": type, "cache-control": "public, max-age=86400" });
  app.get("/dashboard/static/app.js", asset(APP_JS, "text/javascript; charset=utf-8"));
  app.get("/dashboard/static/app.css", asset(APP_CSS, "text/css; charset=utf-8"));

  // Sessions -----------------------------------------------------------------------------------
  async function startSession(tenant: string, userId: string): Promise<string> {
    const token = await store.tx(async (t) => {
      const user = await t.getUser(tenant, userId);
      if (!user || user.status !== "active") {
        throw new ControlError("UNAUTHENTICATED", "This user is not active");
      }
      return await createApiToken(t, tenant, user, {
        kind: "session",
        label: "dashboard",
        ttlSeconds: sessionTtlSeconds,
        now: now(),
        random,
      });
    });
    return sessionCookie({ tenant, token }, sessionTtlSeconds);
  }

  async function session(c: Context, tenant: string): Promise<Session | null> {
    const cookie = readSessionCookie(c.req.header("cookie"));
    if (!cookie || cookie.tenant !== tenant) return null;
    const parsed = parseToken(cookie.token, "ivt")!;
    const row = await store.tx((t) => t.getToken(tenant, parsed.id));
    if (!row || row.kind !== "session") return null;
    const api = new ApiCaller(deps.api, tenant, cookie.token);
    let me: { user_id: string; email: string; roles: string[] };
    try {
      me = await api.get("/me");
    } catch (e) {
      if (
        e instanceof ControlError && (e.code === "UNAUTHENTICATED" || e.code === "UNKNOWN_TENANT")
      ) return null;
      throw e;
    }
    return {
      tenant,
      base: `/dashboard/t/${tenant}`,
      userId: me.user_id,
      email: me.email,
      roles: me.roles,
      csrf: csrfToken(cookie.token),
      now: now(),
      token: cookie.token,
      tokenId: parsed.id,
      api,
      expiresAt: row.expiresAt,
    };
  }

  type Handler = (c: Context, s: Session) => Promise<Response>;
  /** A signed-in route: tenant-scoped session, CSRF on changes, errors as pages. */
  const signedIn = (h: Handler) => async (c: Context): Promise<Response> => {
    const tenant = c.req.param("tenant") ?? "";
    if (!TENANT_RE.test(tenant)) return c.notFound();
    const s = await session(c, tenant);
    if (!s) {
      const hadCookie = readSessionCookie(c.req.header("cookie")) !== null;
      if (c.req.method === "GET") {
        const next = encodeURIComponent(c.req.path);
        return c.redirect(
          `/dashboard/t/${tenant}/login?next=${next}${hadCookie ? "&done=expired" : ""}`,
          303,
        );
      }
      return problem(
        c,
        new ControlError(
          "UNAUTHENTICATED",
          "Sign in first (your session ended or belongs to another tenant)",
        ),
      );
    }
    try {
      if (c.req.method !== "GET" && c.req.method !== "HEAD") {
        const presented = c.req.header("x-csrf-token") ?? one(await readBody(c), "_csrf");
        if (!csrfMatches(s.token, presented)) {
          throw new ControlError(
            "FORBIDDEN",
            "Missing or wrong CSRF token; reload the page and try again",
          );
        }
      }
      return await h(c, s);
    } catch (e) {
      return problem(c, e, s);
    }
  };
  const html = async (c: Context, node: Child, status = 200) =>
    c.html(await render(node), status as 200);
  const T = "/dashboard/t/:tenant";

  // Entry, sign-up, sign-in ----------------------------------------------------------------------
  app.get("/dashboard", (c) => {
    const cookie = readSessionCookie(c.req.header("cookie"));
    return cookie ? c.redirect(`/dashboard/t/${cookie.tenant}/`, 303) : html(c, <ChooserPage />);
  });
  app.get("/", (c) => c.redirect("/dashboard", 303));
  app.get("/dashboard/", (c) => c.redirect("/dashboard", 303));
  app.get("/dashboard/login", (c) => {
    const tenant = c.req.query("tenant") ?? "";
    return TENANT_RE.test(tenant)
      ? c.redirect(`/dashboard/t/${tenant}/login`, 303)
      : html(c, <ChooserPage />, 400);
  });

  /** The invited user behind a sign-up token, without using the token. */
  async function invitee(tenant: string, token: string): Promise<UserRow> {
    const bad = new ControlError(
      "UNAUTHENTICATED",
      "Invalid, used or expired sign-up link; ask an admin for a new one",
    );
    const parsed = parseToken(token, "ivs");
    if (!parsed || !TENANT_RE.test(tenant)) throw bad;
    return await store.tx(async (t) => {
      const row = await t.getToken(tenant, parsed.id);
      if (!row || row.kind !== "signup" || !secretMatches(parsed.secret, row.hash)) throw bad;
      if (
        row.usedAt !== null || row.revokedAt !== null ||
        (row.expiresAt !== null && row.expiresAt <= now())
      ) throw bad;
      const user = await t.getUser(tenant, row.userId);
      if (!user || user.status === "disabled") throw bad;
      return user;
    });
  }

  app.get("/signup", async (c) => {
    const tenant = c.req.query("tenant") ?? "";
    const token = c.req.query("token") ?? "";
    const user = await invitee(tenant, token);
    return html(c, <SignupPage tenant={tenant} token={token} email={user.email} />);
  });
  app.post(`${T}/signup/options`, async (c) => {
    const tenant = c.req.param("tenant") ?? "";
    const body = await readBody(c);
    const user = await invitee(tenant, one(body, "token"));
    const existing = await passkeys.listPasskeys(tenant, user.id);
    const name = one(body, "display_name").trim().slice(0, 100) || user.email;
    return c.json(
      await beginRegistration(cfg, {
        tenant,
        userId: user.id,
        email: user.email,
        displayName: name,
        existing,
      }),
    );
  });
  app.post(`${T}/signup/verify`, async (c) => {
    const tenant = c.req.param("tenant") ?? "";
    const body = await readBody(c);
    const token = one(body, "token");
    const user = await invitee(tenant, token);
    const key = await finishRegistration(cfg, {
      tenant,
      userId: user.id,
      state: body.state,
      response: body.response,
      label: "added at sign-up",
    });
    if (!(await passkeys.insertPasskey(tenant, key))) {
      throw new ControlError("CONFLICT", "This passkey is already registered");
    }
    // Redeem the link through the API (activates the user, records the sign-up), then drop the
    // personal API token it returns: dashboard users sign in with passkeys only.
    let apiToken: string;
    try {
      const display = one(body, "display_name").trim().slice(0, 100);
      const out = await new ApiCaller(deps.api, tenant, null).post<{ token: string }>(
        "/v1/signup",
        {
          tenant,
          token,
          ...(display ? { display_name: display } : {}),
        },
      );
      apiToken = out.token;
    } catch (e) {
      await passkeys.deletePasskey(tenant, key.id);
      throw e;
    }
    await new ApiCaller(deps.api, tenant, apiToken).call(
      "DELETE",
      `/tokens/${parseToken(apiToken, "ivt")!.id}`,
    );
    c.header("set-cookie", await startSession(tenant, user.id));
    return c.json({ redirect: `/dashboard/t/${tenant}/?done=welcome`, message: "Signed up." });
  });

  app.get(`${T}/login`, (c) => {
    const tenant = c.req.param("tenant") ?? "";
    if (!TENANT_RE.test(tenant)) return c.notFound();
    const done = c.req.query("done");
    const flash = done && FLASH[done] ? { text: FLASH[done], error: done === "expired" } : null;
    const next = c.req.query("next") ?? "";
    const safe = next.startsWith(`/dashboard/t/${tenant}/`) && !next.includes("//", 1)
      ? next
      : undefined;
    return html(c, <LoginPage tenant={tenant} flash={flash} next={safe} />);
  });
  app.post(`${T}/login/options`, async (c) => {
    const tenant = c.req.param("tenant") ?? "";
    if (!TENANT_RE.test(tenant)) return c.notFound();
    return c.json(await beginLogin(cfg, tenant));
  });
  app.post(`${T}/login/verify`, async (c) => {
    const tenant = c.req.param("tenant") ?? "";
    if (!TENANT_RE.test(tenant)) return c.notFound();
    const body = await readBody(c);
    const { userId } = await finishLogin(cfg, {
      tenant,
      state: body.state,
      response: body.response,
    });
    c.header("set-cookie", await startSession(tenant, userId));
    const next = new URL(c.req.url).searchParams.get("next") ?? "";
    const safe = next.startsWith(`/dashboard/t/${tenant}/`) && !next.includes("//", 1)
      ? next
      : `/dashboard/t/${tenant}/`;
    return c.json({ redirect: safe, message: "Signed in." });
  });
  app.post(
    `${T}/logout`,
    signedIn(async (c, s) => {
      await s.api.call("DELETE", `/tokens/${s.tokenId}`);
      c.header("set-cookie", CLEAR_COOKIE);
      return c.redirect(`/dashboard/t/${s.tenant}/login?done=signed-out`, 303);
    }),
  );

  // Approval queue -----------------------------------------------------------------------------
  async function requestContext(s: Session): Promise<RequestContext> {
    const [graph, fleet, keys] = await Promise.all([
      s.api.get<AuthorityView>("/authority"),
      s.api.get<FleetView>("/fleet"),
      passkeys.listPasskeys(s.tenant, s.userId),
    ]);
    return {
      emails: new Map(graph.users.map((u) => [u.id, u.email])),
      hosts: new Map(
        fleet.hosts.map((h) => [h.name, { status: h.status, policy_current: h.policy_current }]),
      ),
      hasPasskey: keys.length > 0,
    };
  }

  app.get(
    `${T}/`,
    signedIn(async (c, s) => {
      const status = c.req.query("status") ?? "pending";
      const page = await s.api.get<{ items: RequestView[]; next_cursor: string | null }>(
        `/requests${
          query({
            status: status === "all" ? undefined : status,
            limit: 20,
            cursor: c.req.query("cursor"),
          })
        }`,
      );
      return html(
        c,
        <QueuePage
          ctx={s}
          items={page.items}
          status={status}
          rc={await requestContext(s)}
          next={page.next_cursor}
          flash={flashOf(c)}
        />,
      );
    }),
  );
  app.get(
    `${T}/requests/:id`,
    signedIn(async (c, s) => {
      const id = c.req.param("id") ?? "";
      const r = await s.api.get<RequestView>(`/requests/${encodeURIComponent(id)}`);
      const proofs = await passkeys.listProofs(s.tenant, r.request_id);
      return html(
        c,
        <RequestPage
          ctx={s}
          r={r}
          rc={await requestContext(s)}
          flash={flashOf(c)}
          proofs={proofs}
        />,
      );
    }),
  );
  app.post(
    `${T}/requests/:id/challenge`,
    signedIn(async (c, s) => {
      const body = await readBody(c);
      const decision = one(body, "decision");
      if (decision !== "approve" && decision !== "reject") {
        throw new ControlError("BAD_REQUEST", 'Invalid field "decision": "approve" or "reject"');
      }
      const r = await s.api.get<RequestView>(
        `/requests/${encodeURIComponent(c.req.param("id") ?? "")}`,
      );
      if (r.status !== "pending") {
        throw new ControlError(
          "NOT_PENDING",
          `Request ${r.request_id} is ${r.status}, not pending`,
        );
      }
      const start = await beginApproval(cfg, {
        tenant: s.tenant,
        userId: s.userId,
        requestId: r.request_id,
        actionHash: r.action_hash,
        decision,
        credentials: await passkeys.listPasskeys(s.tenant, s.userId),
      });
      return c.json({
        options: start.options,
        nonce: start.state,
        challenge: start.challenge,
        action_hash: r.action_hash,
      });
    }),
  );
  for (const decision of ["approve", "reject"] as const) {
    app.post(
      `${T}/requests/:id/${decision}`,
      signedIn(async (c, s) => {
        const id = c.req.param("id") ?? "";
        if (!wantsJson(c)) {
          throw new ControlError(
            "PROOF_REQUIRED",
            `To ${decision}, the page's script must get a passkey assertion from your authenticator; enable JavaScript and use a browser with passkey support`,
          );
        }
        const body = await readBody(c);
        const comment = one(body, "comment").trim();
        const out = await s.api.post<{ status: string; approvals_needed: number }>(
          `/requests/${encodeURIComponent(id)}/${decision}`,
          {
            proof: { type: "webauthn", nonce: body.nonce, response: body.response },
            ...(comment ? { comment: comment.slice(0, 2000) } : {}),
          },
        );
        return c.json({
          ...out,
          redirect: `${s.base}/requests/${encodeURIComponent(id)}?done=${
            decision === "approve" ? "approved" : "rejected"
          }`,
        });
      }),
    );
  }

  // Fleet, findings, traces --------------------------------------------------------------------
  app.get(
    `${T}/fleet`,
    signedIn(async (c, s) => {
      const [fleet, head] = await Promise.all([
        s.api.get<FleetView>("/fleet"),
        s.api.get<{ size: number; anchor: string }>("/evidence/head"),
      ]);
      return html(c, <FleetPage ctx={s} fleet={fleet} evidence={head} />);
    }),
  );
  app.get(
    `${T}/findings`,
    signedIn(async (c, s) => {
      const f: Record<string, string> = {};
      for (const k of ["host", "category", "status", "id"]) {
        const v = (c.req.query(k) ?? "").trim();
        if (v) f[k] = v.slice(0, 200);
      }
      const sev = (c.req.queries("sev") ?? []).filter((x) =>
        ["low", "medium", "high", "critical"].includes(x)
      );
      if (sev.length > 0) f.severity = sev.join(",");
      const cursor = c.req.query("cursor");
      const page = await s.api.get<{ items: FindingView[]; next_cursor: string | null }>(
        `/findings${
          query({
            host: f.host,
            category: f.category,
            status: f.status,
            severity: f.severity,
            cursor,
            limit: f.id ? 500 : 50,
          })
        }`,
      );
      const items = f.id ? page.items.filter((x) => x.id === f.id) : page.items;
      return html(
        c,
        <FindingsPage ctx={s} items={items} f={f} next={f.id ? null : page.next_cursor} />,
      );
    }),
  );
  const SINCE: Record<string, number> = {
    "15m": 900_000,
    "1h": 3_600_000,
    "24h": 86_400_000,
    "7d": 604_800_000,
  };
  app.get(
    `${T}/traces`,
    signedIn(async (c, s) => {
      const f: Record<string, string> = {};
      for (const k of ["host", "service", "name", "min_status", "since"]) {
        const v = (c.req.query(k) ?? "").trim();
        if (v) f[k] = v.slice(0, 200);
      }
      if (f.min_status && !/^\d{1,3}$/.test(f.min_status)) delete f.min_status;
      const since = f.since && SINCE[f.since] ? now() - SINCE[f.since] : undefined;
      const page = await s.api.get<{ items: SpanView[]; next_cursor: string | null }>(
        `/traces${
          query({
            host: f.host,
            service: f.service,
            name: f.name,
            min_status: f.min_status,
            since_ms: since,
            cursor: c.req.query("cursor"),
            limit: 50,
          })
        }`,
      );
      return html(c, <TracesPage ctx={s} items={page.items} f={f} next={page.next_cursor} />);
    }),
  );
  app.get(
    `${T}/traces/:id`,
    signedIn(async (c, s) => {
      const id = c.req.param("id") ?? "";
      const trace = await s.api.get<{ trace_id: string; spans: SpanView[] }>(
        `/traces/${encodeURIComponent(id)}`,
      );
      return html(c, <TracePage ctx={s} traceId={trace.trace_id} spans={trace.spans} />);
    }),
  );

  // Evidence -----------------------------------------------------------------------------------
  const EVIDENCE_PAGE = 50;
  app.get(
    `${T}/evidence`,
    signedIn(async (c, s) => {
      const head = await s.api.get<{ size: number; anchor: string }>("/evidence/head");
      const canExport = s.roles.includes("admin") || s.roles.includes("auditor");
      const asked = Number(c.req.query("from"));
      const from = Number.isInteger(asked) && asked >= 0
        ? Math.min(asked, Math.max(0, head.size - 1))
        : Math.max(0, head.size - EVIDENCE_PAGE);
      const type = (c.req.query("type") ?? "").trim().slice(0, 128);
      let lines: EvidenceLine[] = [];
      if (canExport) {
        const res = await s.api.raw("GET", `/evidence?from=${from}`);
        if (!res.ok) {
          throw new ControlError("FORBIDDEN", "The evidence log could not be read with your roles");
        }
        lines = (await res.text()).split("\n").filter(Boolean).slice(0, EVIDENCE_PAGE).map((l) =>
          JSON.parse(l)
        );
        if (type) {
          lines = lines.filter((l) => l.type.startsWith(type));
        }
        lines.reverse();
      }
      return html(
        c,
        <EvidencePage
          ctx={s}
          head={head}
          lines={lines}
          from={from}
          pageSize={EVIDENCE_PAGE}
          type={type}
          canExport={canExport}
        />,
      );
    }),
  );
  app.get(
    `${T}/evidence/export`,
    signedIn(async (_c, s) => {
      const res = await s.api.raw("GET", "/evidence");
      if (!res.ok) {
        throw new ControlError(
          "FORBIDDEN",
          "Exporting the evidence log needs the admin or auditor role",
        );
      }
      return new Response(res.body, {
        headers: {
          "content-type": "application/x-ndjson",
          "content-disposition": `attachment; filename="evidence-${s.tenant}.jsonl"`,
        },
      });
    }),
  );

  // Authority ----------------------------------------------------------------------------------
  app.get(
    `${T}/authority`,
    signedIn(async (c, s) => {
      const request = (c.req.query("request") ?? "").trim().slice(0, 100);
      const user = (c.req.query("user") ?? "").trim().slice(0, 200);
      const graph = await s.api.get<AuthorityView>("/authority");
      let approvers: ApproversView | null = null;
      let why: WhyView | null = null;
      let error: Flash | null = null;
      if (request) {
        try {
          approvers = await s.api.get<ApproversView>(
            `/requests/${encodeURIComponent(request)}/approvers`,
          );
          if (user) {
            why = await s.api.get<WhyView>(
              `/requests/${encodeURIComponent(request)}/why/${encodeURIComponent(user)}`,
            );
          }
        } catch (e) {
          if (!(e instanceof ControlError)) throw e;
          error = { text: e.message, error: true };
        }
      }
      return html(
        c,
        <AuthorityPage
          ctx={s}
          graph={graph}
          request={request}
          user={user}
          approvers={approvers}
          why={why}
          error={error}
        />,
      );
    }),
  );

  // Policies -----------------------------------------------------------------------------------
  async function activations(s: Session): Promise<Map<string, RequestView>> {
    const page = await s.api.get<{ items: RequestView[] }>("/requests?limit=200");
    const out = new Map<string, RequestView>();
    for (const r of page.items) {
      const hash = String(r.action.policy_hash ?? "");
      if (r.kind === "policy.activate" && !out.has(hash)) out.set(hash, r);
    }
    return out;
  }
  app.get(
    `${T}/policies`,
    signedIn(async (c, s) => {
      const [list, acts, graph] = await Promise.all([
        s.api.get<{ active: string | null; items: PolicyView[] }>("/policies"),
        activations(s),
        s.api.get<AuthorityView>("/authority"),
      ]);
      const emails = new Map(graph.users.map((u) => [u.id, u.email]));
      return html(
        c,
        <PoliciesPage
          ctx={s}
          active={list.active}
          items={list.items}
          activations={acts}
          emails={emails}
          flash={flashOf(c)}
        />,
      );
    }),
  );
  app.get(
    `${T}/policies/:hash`,
    signedIn(async (c, s) => {
      const hash = c.req.param("hash") ?? "";
      const [p, acts, graph] = await Promise.all([
        s.api.get<{ hash: string; status: string; text: string }>(
          `/policies/${encodeURIComponent(hash)}`,
        ),
        activations(s),
        s.api.get<AuthorityView>("/authority"),
      ]);
      const emails = new Map(graph.users.map((u) => [u.id, u.email]));
      return html(
        c,
        <PolicyPage
          ctx={s}
          hash={p.hash}
          status={p.status}
          text={p.text}
          activation={acts.get(p.hash)}
          emails={emails}
        />,
      );
    }),
  );
  app.post(
    `${T}/policies`,
    signedIn(async (c, s) => {
      const text = one(await readBody(c), "text");
      const out = await s.api.post<{ request_id: string }>("/policies", { text });
      return c.redirect(
        `${s.base}/requests/${encodeURIComponent(out.request_id)}?done=proposed`,
        303,
      );
    }),
  );

  // Break-glass --------------------------------------------------------------------------------
  async function emailsOf(s: Session): Promise<Map<string, string>> {
    const graph = await s.api.get<AuthorityView>("/authority");
    return new Map(graph.users.map((u) => [u.id, u.email]));
  }
  app.get(
    `${T}/breakglass`,
    signedIn(async (c, s) => {
      const [list, emails] = await Promise.all([
        s.api.get<{ items: BreakGlassView[] }>("/breakglass"),
        emailsOf(s),
      ]);
      return html(
        c,
        <BreakGlassPage ctx={s} items={list.items} emails={emails} flash={flashOf(c)} />,
      );
    }),
  );
  app.post(
    `${T}/breakglass`,
    signedIn(async (c, s) => {
      const b = await readBody(c);
      const split = (v: string) => v.split(",").map((x) => x.trim()).filter(Boolean);
      const minutes = Number(one(b, "minutes"));
      const out = await s.api.post<BreakGlassView>("/breakglass", {
        justification: one(b, "justification"),
        scope: {
          actions: split(one(b, "actions")),
          services: split(one(b, "services")),
          environments: split(one(b, "environments") || "*"),
        },
        ...(Number.isFinite(minutes) && minutes > 0
          ? { duration_seconds: Math.round(minutes * 60) }
          : {}),
      });
      return c.redirect(`${s.base}/breakglass/${encodeURIComponent(out.id)}?done=bg-opened`, 303);
    }),
  );
  app.get(
    `${T}/breakglass/:id`,
    signedIn(async (c, s) => {
      const id = c.req.param("id") ?? "";
      const [list, emails, reqs] = await Promise.all([
        s.api.get<{ items: BreakGlassView[] }>("/breakglass"),
        emailsOf(s),
        s.api.get<{ items: RequestView[] }>("/requests?limit=200"),
      ]);
      const bg = list.items.find((x) => x.id === id);
      if (!bg) throw new ControlError("NOT_FOUND", `Break-glass session ${id} not found`);
      const through = reqs.items.filter((r) => r.break_glass === id);
      return html(
        c,
        <BreakGlassSessionPage
          ctx={s}
          s={bg}
          requests={through}
          emails={emails}
          flash={flashOf(c)}
        />,
      );
    }),
  );
  app.post(
    `${T}/breakglass/:id/close`,
    signedIn(async (c, s) => {
      const id = c.req.param("id") ?? "";
      const reason = one(await readBody(c), "reason").trim() || "closed in the dashboard";
      await s.api.post(`/breakglass/${encodeURIComponent(id)}/close`, {
        reason: reason.slice(0, 2000),
      });
      return c.redirect(`${s.base}/breakglass/${encodeURIComponent(id)}?done=bg-closed`, 303);
    }),
  );
  app.post(
    `${T}/breakglass/:id/review`,
    signedIn(async (c, s) => {
      const id = c.req.param("id") ?? "";
      await s.api.post(`/breakglass/${encodeURIComponent(id)}/review`, {
        review: one(await readBody(c), "review"),
      });
      return c.redirect(`${s.base}/breakglass/${encodeURIComponent(id)}?done=bg-reviewed`, 303);
    }),
  );

  // Users and account --------------------------------------------------------------------------
  app.get(
    `${T}/users`,
    signedIn(async (c, s) => {
      const graph = await s.api.get<AuthorityView>("/authority");
      return html(c, <UsersPage ctx={s} graph={graph} invited={null} flash={null} />);
    }),
  );
  app.post(
    `${T}/users`,
    signedIn(async (c, s) => {
      const b = await readBody(c);
      const email = one(b, "email").trim();
      const out = await s.api.post<{ signup_url: string }>("/users", {
        email,
        roles: many(b, "roles"),
      });
      const graph = await s.api.get<AuthorityView>("/authority");
      return html(
        c,
        <UsersPage ctx={s} graph={graph} invited={{ email, url: out.signup_url }} flash={null} />,
        201,
      );
    }),
  );
  app.get(
    `${T}/account`,
    signedIn(async (c, s) => {
      const keys = await passkeys.listPasskeys(s.tenant, s.userId);
      const ends = s.expiresAt === null ? null : new Date(s.expiresAt).toISOString();
      return html(c, <AccountPage ctx={s} keys={keys} flash={flashOf(c)} sessionExpires={ends} />);
    }),
  );
  app.post(
    `${T}/account/passkeys/options`,
    signedIn(async (c, s) => {
      const existing = await passkeys.listPasskeys(s.tenant, s.userId);
      return c.json(
        await beginRegistration(cfg, {
          tenant: s.tenant,
          userId: s.userId,
          email: s.email,
          displayName: s.email,
          existing,
        }),
      );
    }),
  );
  app.post(
    `${T}/account/passkeys/verify`,
    signedIn(async (c, s) => {
      const b = await readBody(c);
      if (!wantsJson(c)) {
        throw new ControlError(
          "BAD_REQUEST",
          "Adding a passkey needs the page's script (JavaScript)",
        );
      }
      const key = await finishRegistration(cfg, {
        tenant: s.tenant,
        userId: s.userId,
        state: b.state,
        response: b.response,
        label: one(b, "label").trim().slice(0, 64) || "passkey",
      });
      if (!(await passkeys.insertPasskey(s.tenant, key))) {
        throw new ControlError("CONFLICT", "This passkey is already registered");
      }
      return c.json({
        redirect: `${s.base}/account?done=passkey-added`,
        message: "Passkey added.",
      });
    }),
  );
  app.post(
    `${T}/account/passkeys/:id/delete`,
    signedIn(async (c, s) => {
      const id = c.req.param("id") ?? "";
      const keys = await passkeys.listPasskeys(s.tenant, s.userId);
      if (!keys.some((k) => k.id === id)) {
        throw new ControlError("NOT_FOUND", "No such passkey of yours");
      }
      if (keys.length < 2) {
        throw new ControlError(
          "CONFLICT",
          "Keep at least one passkey: add another before removing this one",
        );
      }
      await passkeys.deletePasskey(s.tenant, id);
      return c.redirect(`${s.base}/account?done=passkey-removed`, 303);
    }),
  );

  return app;
}

/**
 * Whether a path belongs to the dashboard (the rest goes to the API).
 *
 * @param path the request path
 * @returns true for `/`, `/signup` and everything under `/dashboard`
 */
export function isDashboardPath(path: string): boolean {
  return path === "/" || path === "/signup" || path === "/dashboard" ||
    path.startsWith("/dashboard/");
}
