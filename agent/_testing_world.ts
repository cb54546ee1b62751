/**
 * Test helper: a real control plane (`@infraveil/control` over SQLite) served on loopback,
 * with a tenant, an admin, an approver, an MCP identity that requests actions and an
 * enrollment token for the host. It can be stopped and started again on the same port with
 * the same store, to take the control plane away and bring it back.
 *
 * @module
 */
import {
  type ControlStore,
  createControlApp,
  enrollIdentity,
  initTenant,
  openSqliteStore,
} from "@infraveil/control";
import { type ActionRequest, ControlClient } from "@infraveil/control/client";
import { type Ed25519KeyPair, generateKeyPair } from "@infraveil/trust";
import { POLICY_TEXT } from "./_testing_approval.ts";

/** The proof the test's passkey verifier accepts. */
const PASSKEY = "test-passkey-assertion";

/** A running control plane for tests. */
export interface ControlWorld {
  /** Base URL. */
  url: string;
  /** Its signing key. */
  keys: Ed25519KeyPair;
  /** The tenant. */
  tenant: string;
  /** A one-time enrollment token for `host`. */
  enrollmentToken: string;
  /** Requests an action as the MCP identity `deployer`. */
  request(action: ActionRequest): Promise<string>;
  /** Approves a request as the approver (passkey). */
  approve(requestId: string): Promise<void>;
  /** A request's view. */
  // deno-lint-ignore no-explicit-any
  requestStatus(requestId: string): Promise<any>;
  /** Calls the human API as the admin. */
  // deno-lint-ignore no-explicit-any
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }>;
  /** Stops serving (the store stays). */
  down(): Promise<void>;
  /** Serves again on the same port. */
  up(): void;
  /** Stops and removes everything. */
  close(): Promise<void>;
}

/**
 * Starts a control plane on 127.0.0.1 with an ephemeral port.
 *
 * @param host the host name the enrollment token is for
 * @returns the world
 */
export async function startControlWorld(host = "web-1"): Promise<ControlWorld> {
  const dir = await Deno.makeTempDir({ prefix: "iv-control-" });
  const store: ControlStore = await openSqliteStore(`${dir}/control.db`);
  const tenant = "acme";
  const keys = generateKeyPair();
  const { signupToken } = await initTenant(store, {
    tenant,
    adminEmail: "admin@acme.test",
    policyText: POLICY_TEXT,
  });
  const app = createControlApp({
    store,
    keys,
    verifyApprovalProof: ({ proof }) => (proof === PASSKEY ? "passkey" : null),
  });
  let server: Deno.HttpServer<Deno.NetAddr> = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    app.fetch,
  );
  const port = server.addr.port;
  const url = `http://127.0.0.1:${port}`;
  let serving = true;

  const call = async (
    method: string,
    path: string,
    token: string | null,
    body?: unknown,
    // deno-lint-ignore no-explicit-any
  ): Promise<{ status: number; json: any }> => {
    const res = await app.request(path, {
      method,
      headers: {
        "content-type": "application/json",
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let json: unknown = text;
    try {
      json = JSON.parse(text);
    } catch { /* text */ }
    return { status: res.status, json };
  };
  const signup = async (token: string): Promise<string> => {
    const r = await call("POST", "/v1/signup", null, { tenant, token });
    if (r.status !== 200) throw new Error(`signup: ${JSON.stringify(r.json)}`);
    return r.json.token;
  };
  const adminToken = await signup(signupToken);
  const added = await call("POST", `/v1/t/${tenant}/users`, adminToken, {
    email: "alice@acme.test",
    roles: ["approver"],
  });
  if (added.status !== 201) throw new Error(`add user: ${JSON.stringify(added.json)}`);
  const approverToken = await signup(new URL(added.json.signup_url).searchParams.get("token")!);
  // The host's labels, as the test agent config has them (environment production, service shop).
  const enroll = await call("POST", `/v1/t/${tenant}/enrollment-tokens`, adminToken, {
    name: host,
    kind: "agent",
    environment: "production",
    service: "shop",
  });
  if (enroll.status !== 201) throw new Error(`enrollment token: ${JSON.stringify(enroll.json)}`);

  const mcpKey = generateKeyPair();
  await store.tx((t) =>
    enrollIdentity(t, tenant, {
      name: "deployer",
      kind: "mcp",
      publicKey: mcpKey.publicKey,
      operator: "admin@acme.test",
      actor: "control",
      now: Date.now(),
      via: "test",
    })
  );
  const mcp = new ControlClient({
    baseUrl: url,
    identity: {
      tenant,
      name: "deployer",
      kind: "mcp",
      kid: mcpKey.kid,
      privateKey: mcpKey.privateKey,
    },
    controlPublicKey: keys.publicKey,
    fetch: async (input, init) => await app.request(String(input), init),
  });

  return {
    url,
    keys,
    tenant,
    enrollmentToken: enroll.json.token,
    async request(action) {
      const r = await mcp.createRequest(action);
      if (r.status !== "pending" && r.status !== "allowed") {
        throw new Error(`request ${r.status}: ${JSON.stringify(r.reasons)}`);
      }
      return r.request_id;
    },
    async approve(requestId) {
      const r = await call("POST", `/v1/t/${tenant}/requests/${requestId}/approve`, approverToken, {
        proof: PASSKEY,
      });
      if (r.status !== 200) throw new Error(`approve: ${JSON.stringify(r.json)}`);
    },
    async requestStatus(requestId) {
      const r = await call("GET", `/v1/t/${tenant}/requests/${requestId}`, adminToken);
      return r.json;
    },
    admin: (method, path, body) => call(method, path, adminToken, body),
    async down() {
      if (!serving) return;
      serving = false;
      await server.shutdown();
    },
    up() {
      if (serving) return;
      server = Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, app.fetch);
      serving = true;
    },
    async close() {
      if (serving) await server.shutdown();
      await store.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}
