/**
 * Test fixtures: backend factories (SQLite in a temp dir, PostgreSQL from the test harness),
 * a fake clock, and a "world" — a tenant with users, tokens, machine identities, clients and
 * an app wired to `app.request()` — so scenarios are written once and run on both backends.
 *
 * @module
 */
import { type Ed25519KeyPair, generateKeyPair } from "@infraveil/trust";
import type { Hono } from "hono";
import { type ControlDeps, createControlApp } from "./app.ts";
import { ControlClient } from "./client.ts";
import type { ControlNotification } from "./_context.ts";
import { enrollIdentity, initTenant } from "./tenant.ts";
import { openSqliteStore } from "./sqlite_store.ts";
import { flushEvidence } from "./evidence.ts";
import { openPostgresStore } from "./postgres_store.ts";
import type { ControlStore } from "./store.ts";
import { IN_CI, type PgServer, postgresBinDir, startPostgres } from "./_pg_harness_test_util.ts";

/** A database opened for one test. */
export interface Opened {
  /** The store. */
  store: ControlStore;
  /** Opens another store on the same database (another instance). */
  another(): Promise<ControlStore>;
  /** Closes and deletes. */
  cleanup(): Promise<void>;
}

/** A backend to run scenarios on. */
export interface Backend {
  /** `sqlite` or `postgres`. */
  name: "sqlite" | "postgres";
  /** Why it cannot run, or null. */
  unavailable: string | null;
  /** Opens a fresh database. */
  open(now?: () => number): Promise<Opened>;
}

/** SQLite in a temporary directory. */
export const sqliteBackend: Backend = {
  name: "sqlite",
  unavailable: null,
  async open(now = Date.now): Promise<Opened> {
    const dir = await Deno.makeTempDir({ prefix: "infraveil-control-" });
    const path = `${dir}/control.db`;
    const opened: ControlStore[] = [];
    const store = await openSqliteStore(path, { now, synchronous: "NORMAL" });
    opened.push(store);
    return {
      store,
      async another() {
        const s = await openSqliteStore(path, { now, synchronous: "NORMAL" });
        opened.push(s);
        return s;
      },
      async cleanup() {
        for (const s of opened) await s.close().catch(() => {});
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      },
    };
  },
};

let server: Promise<PgServer> | null = null;

/** PostgreSQL: one server per test process, one database per test. */
export const postgresBackend: Backend = {
  name: "postgres",
  unavailable: postgresBinDir()
    ? null
    : "PostgreSQL binaries not found under /usr/lib/postgresql/*/bin",
  async open(now = Date.now): Promise<Opened> {
    if (!server) {
      server = startPostgres();
      const s = await server;
      globalThis.addEventListener("unload", () => s.stopSync());
    }
    const url = await (await server).createDatabase();
    const opened: ControlStore[] = [];
    const store = await openPostgresStore(url, { now, max: 4 });
    opened.push(store);
    return {
      store,
      async another() {
        const s = await openPostgresStore(url, { now, max: 4 });
        opened.push(s);
        return s;
      },
      async cleanup() {
        for (const s of opened) await s.close().catch(() => {});
      },
    };
  },
};

/** Stops the shared PostgreSQL server (register as the last test of a module). */
export async function stopPostgres(): Promise<void> {
  if (server) await (await server).stop();
  server = null;
}

/**
 * Registers a scenario test for a backend; skips visibly (fails under CI) when unavailable.
 *
 * @param backend the backend
 * @param name test name
 * @param fn the test body
 */
export function scenario(backend: Backend, name: string, fn: (b: Backend) => Promise<void>): void {
  const missing = backend.unavailable;
  if (missing && !IN_CI) {
    Deno.test({ name: `[${backend.name}] ${name}`, ignore: true, fn: () => {} });
    return;
  }
  Deno.test({
    name: `[${backend.name}] ${name}`,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      if (missing) throw new Error(`CI=true but ${missing}`);
      await fn(backend);
    },
  });
}

/** A controllable clock, ms. */
export class FakeClock {
  /** Current time, ms. */
  t: number;
  /** @param start start time, ms */
  constructor(start = Date.parse("2026-06-01T12:00:00Z")) {
    this.t = start;
  }
  /** The clock function. */
  readonly now = (): number => this.t;
  /** Moves forward. */
  advance(ms: number): void {
    this.t += ms;
  }
}

/** The test tenant's policy. */
export const TEST_POLICY = `policy "production" {
  version 1
  approvals 2
  deploy {
    require_approval true
    block_paths ".env", "secrets/**"
    max_files 50
  }
  agent "claude" {
    allow restart, deploy, rollback, remediate
    deny delete, db_migrate, drop_table
    blast_radius fleet
  }
  remediation {
    block_categories auth
    require_approval true
  }
  freeze "2030-01-01T00:00:00Z" .. "2030-01-02T00:00:00Z" "new year"
}
policy "staging" {
  version 1
  approvals 1
  deploy {
    require_approval true
  }
  agent "claude" {
    allow restart, deploy
    blast_radius fleet
  }
}
`;

/** The world's hosts. */
export type Host = "web-1" | "web-2" | "stage-1" | "db-1";

/** A signed-in human. */
export interface TestUser {
  /** User id. */
  id: string;
  /** Email. */
  email: string;
  /** Bearer token. */
  token: string;
}

/** Everything a scenario needs. */
export interface World {
  /** The backend's opened database. */
  db: Opened;
  /** The store. */
  store: ControlStore;
  /** The app. */
  app: Hono;
  /** The control plane's key. */
  keys: Ed25519KeyPair;
  /** The clock. */
  clock: FakeClock;
  /** Tenant name. */
  tenant: string;
  /** Notifications fired. */
  notifications: ControlNotification[];
  /** Users: admin, alice, bob (approvers), carol (no grant), dave (approver, operates claude), olga (break-glass holder). */
  users: Record<"admin" | "alice" | "bob" | "carol" | "dave" | "olga", TestUser>;
  /** MCP identity `claude` (operator dave). */
  mcp: ControlClient;
  /** Its key. */
  mcpKey: Ed25519KeyPair;
  /** Agents `web-1`, `web-2` (production, service api), `stage-1` (staging, api), `db-1`
   * (production, db): requests must match their targets' labels. */
  agents: Record<Host, ControlClient>;
  /** Their keys. */
  agentKeys: Record<Host, Ed25519KeyPair>;
  /** A fetch that goes to `app.request()`. */
  fetch: typeof fetch;
  /** Calls the human API. */
  api(
    method: string,
    path: string,
    user: TestUser | null,
    body?: unknown,
    // deno-lint-ignore no-explicit-any
  ): Promise<{ status: number; json: any }>;
  /** A client for another identity/key. */
  client(
    options: { name: string; kind: "agent" | "mcp"; key: Ed25519KeyPair; tenant?: string },
  ): ControlClient;
  /** Closes everything. */
  close(): Promise<void>;
}

/** The base URL the world's clients use. */
export const BASE = "http://control.test";

/**
 * Builds a world on a backend.
 *
 * @param backend the backend
 * @param options extra app deps and a second tenant
 * @returns the world
 */
export async function world(
  backend: Backend,
  options: {
    deps?: Partial<ControlDeps>;
    policy?: string;
    tenant?: string;
    db?: Opened;
    clock?: FakeClock;
  } = {},
): Promise<World> {
  const clock = options.clock ?? new FakeClock();
  const db = options.db ?? await backend.open(clock.now);
  const store = db.store;
  const tenant = options.tenant ?? "acme";
  const keys = options.deps?.keys ?? generateKeyPair();
  const { signupToken } = await initTenant(store, {
    tenant,
    adminEmail: `admin@${tenant}.test`,
    policyText: options.policy ?? TEST_POLICY,
    now: clock.now,
  });
  const notifications: ControlNotification[] = [];
  const app = createControlApp({
    store,
    keys,
    now: clock.now,
    notify: (e) => {
      notifications.push(e);
    },
    ...options.deps,
  });
  const fetchApp: typeof fetch = (input, init) =>
    Promise.resolve(app.request(input instanceof Request ? input : String(input), init));
  const api = async (method: string, path: string, user: TestUser | null, body?: unknown) => {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (user) headers.authorization = `Bearer ${user.token}`;
    const res = await app.request(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    // deno-lint-ignore no-explicit-any
    let json: any = text;
    try {
      json = JSON.parse(text);
    } catch {
      // keep text
    }
    return { status: res.status, json };
  };
  const signup = async (token: string): Promise<TestUser> => {
    const r = await api("POST", "/v1/signup", null, { tenant, token });
    if (r.status !== 200) throw new Error(`signup failed: ${JSON.stringify(r.json)}`);
    return { id: r.json.user_id, email: r.json.email, token: r.json.token };
  };
  const admin = await signup(signupToken);
  const add = async (name: string, roles: string[]) => {
    const r = await api("POST", `/v1/t/${tenant}/users`, admin, {
      email: `${name}@${tenant}.test`,
      roles,
    });
    if (r.status !== 201) throw new Error(`add user failed: ${JSON.stringify(r.json)}`);
    const token = new URL(r.json.signup_url).searchParams.get("token")!;
    return await signup(token);
  };
  const users = {
    admin,
    alice: await add("alice", ["approver"]),
    bob: await add("bob", ["approver"]),
    carol: await add("carol", []),
    dave: await add("dave", ["approver"]),
    olga: await add("olga", ["breakglass"]),
  };
  const mcpKey = generateKeyPair();
  const agentKeys: Record<Host, Ed25519KeyPair> = {
    "web-1": generateKeyPair(),
    "web-2": generateKeyPair(),
    "stage-1": generateKeyPair(),
    "db-1": generateKeyPair(),
  };
  await store.tx(async (t) => {
    await enrollIdentity(t, tenant, {
      name: "claude",
      kind: "mcp",
      publicKey: mcpKey.publicKey,
      operator: users.dave.email,
      actor: "control",
      now: clock.now(),
      via: "test",
    });
    // Hosts and their labels: web-1 and web-2 run api in production; stage-1 runs api in
    // staging and db-1 runs db in production (requests must match their targets' labels).
    const hosts: [Host, string, string][] = [
      ["web-1", "production", "api"],
      ["web-2", "production", "api"],
      ["stage-1", "staging", "api"],
      ["db-1", "production", "db"],
    ];
    for (const [name, environment, service] of hosts) {
      await enrollIdentity(t, tenant, {
        name,
        kind: "agent",
        publicKey: agentKeys[name].publicKey,
        operator: null,
        environment,
        service,
        actor: "control",
        now: clock.now(),
        via: "test",
      });
    }
    // Token approvals are off by default everywhere; the test tenant opts in for staging.
    const row = (await t.getTenant(tenant))!;
    await t.setTenantSettings(tenant, {
      ...row.settings,
      token_approvals: { ...row.settings.token_approvals, staging: true },
    });
  });
  const client = (
    o: { name: string; kind: "agent" | "mcp"; key: Ed25519KeyPair; tenant?: string },
  ) =>
    new ControlClient({
      baseUrl: BASE,
      identity: {
        tenant: o.tenant ?? tenant,
        name: o.name,
        kind: o.kind,
        kid: o.key.kid,
        privateKey: o.key.privateKey,
      },
      controlPublicKey: keys.publicKey,
      fetch: fetchApp,
      now: clock.now,
    });
  return {
    db,
    store,
    app,
    keys,
    clock,
    tenant,
    notifications,
    users,
    mcp: client({ name: "claude", kind: "mcp", key: mcpKey }),
    mcpKey,
    agents: {
      "web-1": client({ name: "web-1", kind: "agent", key: agentKeys["web-1"] }),
      "web-2": client({ name: "web-2", kind: "agent", key: agentKeys["web-2"] }),
      "stage-1": client({ name: "stage-1", kind: "agent", key: agentKeys["stage-1"] }),
      "db-1": client({ name: "db-1", kind: "agent", key: agentKeys["db-1"] }),
    },
    agentKeys,
    fetch: fetchApp,
    api,
    client,
    close: () => db.cleanup(),
  };
}

/**
 * Reads a tenant's chained evidence lines, after chaining every pending record.
 *
 * @param store the store
 * @param tenant the tenant
 * @returns the lines
 */
export async function evidenceLines(store: ControlStore, tenant: string): Promise<string[]> {
  await flushEvidence(store, tenant);
  return await store.tx((t) => t.readEvidence(tenant, 0, 100_000));
}

/**
 * Reads a tenant's evidence lines, parsed.
 *
 * @param store the store
 * @param tenant the tenant
 * @returns the entries
 */
export async function evidenceOf(
  store: ControlStore,
  tenant: string,
  // deno-lint-ignore no-explicit-any
): Promise<{ seq: number; type: string; actor: string; data: any }[]> {
  return (await evidenceLines(store, tenant)).map((l) => JSON.parse(l));
}
