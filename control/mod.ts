/**
 * Control plane: tenants, machine identities and human users, the policy store, the approval
 * queue, the authority graph, the evidence store, break-glass and the fleet, as a Hono app
 * over one storage interface with two backends (SQLite by default, PostgreSQL to scale out).
 *
 * - {@link createControlApp}: the HTTP API (`main.ts` serves it).
 * - {@link openSqliteStore}, {@link openPostgresStore}: storage with versioned migrations.
 * - {@link initTenant} and friends: tenant administration for the CLI.
 * - `@infraveil/control/client`: the client agents and the MCP server use.
 *
 * This package never lets a machine identity approve, never trusts a message before its
 * signature, audience, tenant, time window and nonce are checked, and never changes state
 * without appending the evidence of the change in the same transaction.
 *
 * @example
 * ```ts
 * import { createControlApp, initTenant, openSqliteStore } from "@infraveil/control";
 * import { generateKeyPair } from "@infraveil/trust";
 * const store = await openSqliteStore(":memory:");
 * const { signupToken } = await initTenant(store, { tenant: "acme", adminEmail: "a@example.com" });
 * const app = createControlApp({ store, keys: generateKeyPair() });
 * const res = await app.request("/v1/signup", {
 *   method: "POST",
 *   body: JSON.stringify({ tenant: "acme", token: signupToken }),
 * });
 * const { token } = await res.json();
 * const me = await app.request("/v1/t/acme/me", { headers: { authorization: `Bearer ${token}` } });
 * if ((await me.json()).email !== "a@example.com") throw new Error();
 * await store.close();
 * ```
 *
 * @module
 */
export { type ControlDeps, createControlApp } from "./app.ts";
export type {
  ApprovalProofInput,
  ApprovalProofVerifier,
  ControlNotification,
  FaultHook,
} from "./_context.ts";
export * from "./error.ts";
export * from "./store.ts";
export { openSqliteStore, type SqliteStoreOptions } from "./sqlite_store.ts";
export { openPostgresStore, type PostgresStoreOptions } from "./postgres_store.ts";
export {
  appendEvidence,
  evidenceHead,
  type EvidenceInput,
  exportEvidence,
  flushEvidence,
  sequenceEvidence,
} from "./evidence.ts";
export {
  type ApprovalTarget,
  type Approver,
  AuthorityGraph,
  formatPath,
  grantCovers,
  type PathStep,
} from "./authority.ts";
export {
  addUser,
  createApiToken,
  createEnrollmentToken,
  DEFAULT_POLICY,
  enrollIdentity,
  initTenant,
  type InitTenantOptions,
  type InitTenantResult,
  redeemSignup,
  revokeIdentity,
} from "./tenant.ts";
export {
  actionHash,
  type ApprovalPayload,
  type ExactAction,
  verifySignedApproval,
} from "./approval.ts";
export { buildOpenApi } from "./openapi.ts";
export { type Migration, MIGRATIONS } from "./_migrations.ts";
