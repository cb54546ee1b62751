/**
 * Test fixtures: a software WebAuthn authenticator (ES256, "none" attestation, user
 * verification always on) producing the JSON a browser sends, and a dashboard world on top
 * of the control plane's scenario world.
 *
 * @module
 */
import { encodeBase64Url, sha256, utf8 } from "@infraveil/trust";
import { Hono } from "hono";
import { sqliteBackend, type TestUser, type World, world } from "../_testing.ts";
import { createDashboard, isDashboardPath, passkeyConfig } from "./dashboard.tsx";
import { memoryPasskeyStore, type PasskeyStore } from "./passkey_store.ts";
import { passkeyApprovalVerifier, type PasskeyConfig } from "./webauthn.ts";
import { SESSION_COOKIE } from "./_session.ts";

// A minimal CBOR encoder: unsigned/negative ints, byte and text strings, maps.
type Cbor = number | string | Uint8Array | Map<Cbor, Cbor> | Cbor[];
function head(major: number, n: number): number[] {
  if (n < 24) return [(major << 5) | n];
  if (n < 256) return [(major << 5) | 24, n];
  if (n < 65536) return [(major << 5) | 25, n >> 8, n & 255];
  return [(major << 5) | 26, (n >>> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255];
}
function cbor(v: Cbor): number[] {
  if (typeof v === "number") return v >= 0 ? head(0, v) : head(1, -1 - v);
  if (typeof v === "string") {
    const b = utf8(v);
    return [...head(3, b.length), ...b];
  }
  if (v instanceof Uint8Array) return [...head(2, v.length), ...v];
  if (Array.isArray(v)) return [...head(4, v.length), ...v.flatMap(cbor)];
  return [...head(5, v.size), ...[...v].flatMap(([k, x]) => [...cbor(k), ...cbor(x)])];
}

function der(raw: Uint8Array): Uint8Array {
  const int = (b: Uint8Array) => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    const x = b.slice(i);
    return x[0] & 0x80 ? [0x02, x.length + 1, 0, ...x] : [0x02, x.length, ...x];
  };
  const body = [...int(raw.slice(0, 32)), ...int(raw.slice(32))];
  return Uint8Array.from([0x30, body.length, ...body]);
}

const be32 = (n: number) => [(n >>> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255];

/** One software credential. */
export interface SoftCredential {
  /** Credential id, base64url. */
  id: string;
  /** Owner handle (the user id). */
  userId: string;
  /** The signing key. */
  key: CryptoKeyPair;
  /** Signature counter. */
  counter: number;
}

/** A software authenticator bound to one origin. */
export class SoftAuthenticator {
  readonly origin: string;
  readonly rpId: string;
  readonly credentials: SoftCredential[] = [];

  /** @param origin the page origin it answers for */
  constructor(origin: string) {
    this.origin = origin;
    this.rpId = new URL(origin).hostname;
  }

  /**
   * Answers `navigator.credentials.create()` for creation options (JSON form).
   *
   * @param options creation options from the server
   * @param overrides tamper hooks for negative tests
   * @returns the registration response JSON
   */
  async create(
    options: { user: { id: string }; challenge: string },
    overrides: { origin?: string; challenge?: string } = {},
  ): Promise<Record<string, unknown>> {
    const key = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
      "sign",
      "verify",
    ]);
    const jwk = await crypto.subtle.exportKey("jwk", key.publicKey);
    const b64 = (s: string) =>
      Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
    const cose = Uint8Array.from(
      cbor(new Map<Cbor, Cbor>([[1, 2], [3, -7], [-1, 1], [-2, b64(jwk.x!)], [-3, b64(jwk.y!)]])),
    );
    const credId = crypto.getRandomValues(new Uint8Array(32));
    const userId = new TextDecoder().decode(b64(options.user.id));
    const cred: SoftCredential = { id: encodeBase64Url(credId), userId, key, counter: 0 };
    this.credentials.push(cred);
    const authData = Uint8Array.from([
      ...sha256(this.rpId),
      0x45, // UP | UV | AT
      ...be32(0),
      ...new Uint8Array(16),
      credId.length >> 8,
      credId.length & 255,
      ...credId,
      ...cose,
    ]);
    const attestationObject = Uint8Array.from(
      cbor(new Map<Cbor, Cbor>([["fmt", "none"], ["attStmt", new Map()], ["authData", authData]])),
    );
    const clientData = utf8(JSON.stringify({
      type: "webauthn.create",
      challenge: overrides.challenge ?? options.challenge,
      origin: overrides.origin ?? this.origin,
      crossOrigin: false,
    }));
    return {
      id: cred.id,
      rawId: cred.id,
      type: "public-key",
      clientExtensionResults: {},
      response: {
        clientDataJSON: encodeBase64Url(clientData),
        attestationObject: encodeBase64Url(attestationObject),
        transports: ["internal"],
      },
    };
  }

  /**
   * Answers `navigator.credentials.get()` for request options (JSON form).
   *
   * @param options request options from the server
   * @param overrides tamper hooks: another credential, challenge, origin, or user-verified flag off
   * @returns the assertion response JSON
   */
  async get(
    options: { challenge: string; allowCredentials?: { id: string }[] },
    overrides: {
      credential?: SoftCredential;
      challenge?: string;
      origin?: string;
      uv?: boolean;
      counter?: number;
    } = {},
  ): Promise<Record<string, unknown>> {
    const allowed: string[] = (options.allowCredentials ?? []).map((c: { id: string }) => c.id);
    const cred = overrides.credential ??
      this.credentials.find((c) => allowed.length === 0 || allowed.includes(c.id));
    if (!cred) throw new Error("no credential for these options");
    cred.counter++;
    const counter = overrides.counter ?? cred.counter;
    const authData = Uint8Array.from([
      ...sha256(this.rpId),
      overrides.uv === false ? 0x01 : 0x05,
      ...be32(counter),
    ]);
    const clientData = utf8(JSON.stringify({
      type: "webauthn.get",
      challenge: overrides.challenge ?? options.challenge,
      origin: overrides.origin ?? this.origin,
      crossOrigin: false,
    }));
    const signed = Uint8Array.from([...authData, ...sha256(clientData)]);
    const raw = new Uint8Array(
      await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, cred.key.privateKey, signed),
    );
    return {
      id: cred.id,
      rawId: cred.id,
      type: "public-key",
      clientExtensionResults: {},
      response: {
        clientDataJSON: encodeBase64Url(clientData),
        authenticatorData: encodeBase64Url(authData),
        signature: encodeBase64Url(der(raw)),
        userHandle: encodeBase64Url(utf8(cred.userId)),
      },
    };
  }
}

/** The origin the test dashboard answers for. */
export const ORIGIN = "http://localhost:8700";

/** A control-plane world with the dashboard in front. */
export interface DashWorld {
  /** The control plane's world (users, MCP client, agents, clock). */
  w: World;
  /** API + dashboard. */
  app: Hono;
  /** Passkeys. */
  passkeys: PasskeyStore;
  /** Passkey configuration. */
  cfg: PasskeyConfig;
  /** Request helper: sets Origin, cookie, CSRF and JSON as asked. */
  req(
    path: string,
    o?: {
      method?: string;
      cookie?: string;
      csrf?: string;
      json?: unknown;
      form?: Record<string, string>;
      origin?: string | null;
      headers?: Record<string, string>;
    },
  ): Promise<Response>;
  /** Signs a user in with a fresh software passkey; returns the cookie and CSRF token. */
  signIn(user: TestUser, auth?: SoftAuthenticator): Promise<Session>;
  /** Closes everything. */
  close(): Promise<void>;
}

/** A signed-in test session. */
export interface Session {
  /** `Cookie` header value. */
  cookie: string;
  /** CSRF token. */
  csrf: string;
  /** The authenticator holding the user's passkey. */
  auth: SoftAuthenticator;
}

/**
 * Builds a dashboard world (SQLite, fake clock, memory passkeys).
 *
 * @param options session lifetime
 * @returns the world
 */
export async function dashWorld(
  options: { sessionTtlSeconds?: number; tenant?: string } = {},
): Promise<DashWorld> {
  const passkeys = memoryPasskeyStore();
  const secret = crypto.getRandomValues(new Uint8Array(32));
  let clock: () => number = Date.now;
  const shared = { passkeys, origin: ORIGIN, secret, now: () => clock() };
  const cfg = passkeyConfig(shared);
  const w = await world(sqliteBackend, {
    tenant: options.tenant,
    deps: { verifyApprovalProof: passkeyApprovalVerifier(cfg), publicUrl: ORIGIN },
  });
  clock = w.clock.now;
  const ui = createDashboard({
    ...shared,
    store: w.store,
    api: (r) => w.app.fetch(r),
    sessionTtlSeconds: options.sessionTtlSeconds,
  });
  const app = new Hono();
  app.all("*", (c) => (isDashboardPath(c.req.path) ? ui.fetch(c.req.raw) : w.app.fetch(c.req.raw)));
  const req: DashWorld["req"] = (path, o = {}) => {
    const headers: Record<string, string> = { ...o.headers };
    if (o.origin !== null) headers.origin = o.origin ?? ORIGIN;
    if (o.cookie) headers.cookie = o.cookie;
    if (o.csrf) headers["x-csrf-token"] = o.csrf;
    let body: BodyInit | undefined;
    if (o.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(o.json);
    } else if (o.form) {
      headers["content-type"] = "application/x-www-form-urlencoded";
      body = new URLSearchParams(o.form).toString();
    }
    return Promise.resolve(
      app.request(`${ORIGIN}${path}`, {
        method: o.method ?? (body !== undefined ? "POST" : "GET"),
        headers,
        body,
      }),
    );
  };
  const base = () => `/dashboard/t/${w.tenant}`;
  async function signIn(user: TestUser, auth = new SoftAuthenticator(ORIGIN)): Promise<Session> {
    // Register a passkey for the user the way the Account page does, bypassing the browser.
    const opts = { user: { id: encodeBase64Url(utf8(user.id)) }, challenge: "x" };
    const reg = await auth.create(opts);
    const cred = auth.credentials.at(-1)!;
    const jwk = await crypto.subtle.exportKey("jwk", cred.key.publicKey);
    const b64 = (s: string) =>
      Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
    const cose = Uint8Array.from(
      cbor(new Map<Cbor, Cbor>([[1, 2], [3, -7], [-1, 1], [-2, b64(jwk.x!)], [-3, b64(jwk.y!)]])),
    );
    await passkeys.insertPasskey(w.tenant, {
      id: String(reg.id),
      userId: user.id,
      publicKey: encodeBase64Url(cose),
      counter: 0,
      transports: ["internal"],
      label: "test",
      createdAt: w.clock.now(),
      lastUsedAt: null,
    });
    const start = await (await req(`${base()}/login/options`, { json: {} })).json();
    const response = await auth.get(start.options, { credential: cred });
    const res = await req(`${base()}/login/verify`, { json: { state: start.state, response } });
    if (res.status !== 200) throw new Error(`sign-in failed: ${await res.text()}`);
    const cookie = cookieOf(res);
    const page = await (await req(`${base()}/account`, { cookie })).text();
    const csrf = /name="csrf-token" content="([^"]+)"/.exec(page)![1];
    return { cookie, csrf, auth };
  }
  return { w, app, passkeys, cfg, req, signIn, close: () => w.close() };
}

/**
 * The session cookie set by a response, as a `Cookie` header value.
 *
 * @param res the response
 * @returns `name=value`
 */
export function cookieOf(res: Response): string {
  const set = res.headers.get("set-cookie") ?? "";
  const m = new RegExp(`${SESSION_COOKIE}=([^;]*)`).exec(set);
  if (!m) throw new Error(`no session cookie in ${set}`);
  return `${SESSION_COOKIE}=${m[1]}`;
}
