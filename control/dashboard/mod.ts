/**
 * The control plane's web dashboard: humans sign up through one-time links, sign in and
 * approve with passkeys (WebAuthn), and see the approval queue, the fleet, findings, traces,
 * evidence, the authority graph, policy versions and break-glass sessions of their tenant.
 *
 * - {@link createControlPlane}: the API and the dashboard behind one `fetch` (what `main.ts` serves).
 * - {@link createDashboard}: the dashboard alone, calling an API given to it in process.
 * - {@link passkeyApprovalVerifier}: the approval proof verifier for `createControlApp`.
 * - {@link controlStorePasskeyStore} (in the control store's database),
 *   {@link memoryPasskeyStore}, {@link controlStorePasskeyStore}: passkey storage.
 *
 * The dashboard never holds rules of its own: reads and changes go through the control-plane
 * API with the signed-in user's session token, so approvals from the dashboard follow exactly
 * the API's rules (humans only, distinct approvers, never the requester, N of M, evidence).
 * Approve and reject each need a fresh passkey assertion whose challenge is bound to the
 * request's action hash and the decision; the verified assertion is stored as the vote's proof.
 *
 * @example
 * ```ts
 * import { createControlPlane, memoryPasskeyStore } from "./mod.ts";
 * import { initTenant, openSqliteStore } from "@infraveil/control";
 * import { generateKeyPair } from "@infraveil/trust";
 * const store = await openSqliteStore(":memory:");
 * const { signupToken } = await initTenant(store, { tenant: "acme", adminEmail: "a@example.com" });
 * const app = createControlPlane({
 *   store,
 *   keys: generateKeyPair(),
 *   passkeys: memoryPasskeyStore(),
 *   origin: "http://localhost:8700",
 * });
 * const res = await app.request(`/signup?tenant=acme&token=${signupToken}`);
 * if (!(await res.text()).includes("a@example.com")) throw new Error();
 * await store.close();
 * ```
 *
 * @module
 */
export { type ControlPlaneDeps, createControlPlane } from "./compose.ts";
export {
  createDashboard,
  type DashboardDeps,
  isDashboardPath,
  passkeyConfig,
} from "./dashboard.tsx";
export {
  approvalChallenge,
  beginApproval,
  beginLogin,
  beginRegistration,
  type CeremonyStart,
  type CeremonyState,
  finishLogin,
  finishRegistration,
  openState,
  passkeyApprovalVerifier,
  type PasskeyConfig,
  type PasskeyProof,
  sealState,
} from "./webauthn.ts";
export {
  type ApprovalProofRow,
  controlStorePasskeyStore,
  memoryPasskeyStore,
  type PasskeyRow,
  type PasskeyStore,
} from "./passkey_store.ts";
export { CSP, SESSION_COOKIE } from "./_session.ts";
export type { ApiFetch } from "./_api.ts";
export type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
} from "@simplewebauthn/server";
