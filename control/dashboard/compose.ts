/**
 * The control plane with its dashboard: the API of `createControlApp` and the dashboard of
 * `createDashboard` behind one `fetch`, wired so that approvals carry passkey proofs verified
 * by {@link passkeyApprovalVerifier}.
 *
 * @module
 */
import { Hono } from "hono";
import { hmacSha256 } from "@infraveil/trust";
import { type ControlDeps, createControlApp } from "../app.ts";
import { createDashboard, isDashboardPath, passkeyConfig } from "./dashboard.tsx";
import type { PasskeyStore } from "./passkey_store.ts";
import { passkeyApprovalVerifier } from "./webauthn.ts";

/** What the control plane with its dashboard needs. */
export interface ControlPlaneDeps extends ControlDeps {
  /** Passkeys, ceremony nonces and vote proofs. */
  passkeys: PasskeyStore;
  /**
   * The dashboard's public origin (default: `publicUrl`, else `http://localhost:8700`). WebAuthn
   * needs a domain: use `localhost`, not `127.0.0.1`, on a workstation.
   */
  origin?: string;
  /** WebAuthn relying-party id (default: the origin's host name). */
  rpId?: string;
  /** Relying-party name (default `infraveil`). */
  rpName?: string;
  /** Key sealing passkey ceremony state (default: derived from the control plane's key). */
  dashboardSecret?: Uint8Array;
  /** Dashboard session lifetime, seconds (default 8 hours). */
  sessionTtlSeconds?: number;
}

/**
 * Builds the control plane with its dashboard.
 *
 * @param deps the API's deps plus passkey storage and the dashboard's origin
 * @returns one Hono app: `/`, `/signup` and `/dashboard/…` go to the dashboard, the rest to the API
 * @example
 * ```ts
 * import { createControlPlane, memoryPasskeyStore } from "./mod.ts";
 * import { openSqliteStore } from "@infraveil/control";
 * import { generateKeyPair } from "@infraveil/trust";
 * const store = await openSqliteStore(":memory:");
 * const app = createControlPlane({ store, keys: generateKeyPair(), passkeys: memoryPasskeyStore() });
 * const res = await app.request("/dashboard");
 * if (!res.headers.get("content-security-policy")?.includes("script-src 'self'")) throw new Error();
 * await store.close();
 * ```
 */
export function createControlPlane(deps: ControlPlaneDeps): Hono {
  const origin = new URL(deps.origin ?? deps.publicUrl ?? "http://localhost:8700").origin;
  const secret = deps.dashboardSecret ??
    hmacSha256(deps.keys.privateKey, "infraveil-dashboard-secret/v1");
  const shared = {
    passkeys: deps.passkeys,
    origin,
    secret,
    rpId: deps.rpId,
    rpName: deps.rpName,
    now: deps.now,
    random: deps.random,
  };
  const api = createControlApp({
    ...deps,
    publicUrl: deps.publicUrl ?? origin,
    verifyApprovalProof: passkeyApprovalVerifier(passkeyConfig(shared)),
  });
  const ui = createDashboard({
    ...shared,
    store: deps.store,
    api: (r) => api.fetch(r),
    sessionTtlSeconds: deps.sessionTtlSeconds,
  });
  const root = new Hono();
  root.all("*", (c) => (isDashboardPath(c.req.path) ? ui.fetch(c.req.raw) : api.fetch(c.req.raw)));
  return root;
}
