/**
 * Host agent: release bundles and attestations, the self-verifying launcher, and the agent the
 * bundle runs — the supervisor of the sandboxed proxy, ledger and exec workers, the signed
 * control-plane link, and the runner that executes approved actions only (docs/agent.md).
 *
 * @example
 * ```ts
 * import { generateKeyPair } from "@infraveil/trust";
 * import { createBundle, generateTenantKey, verifyBundle } from "@infraveil/agent";
 * const releaseKey = generateKeyPair();
 * const tenantKey = generateTenantKey();
 * const bundle = await createBundle(
 *   [{ path: "main.ts", data: new TextEncoder().encode("export function start() {}") }],
 *   { entry: "main.ts", version: "1.0.0", expires: Date.now() + 86_400_000, releaseKey, tenantKey },
 * );
 * const verified = await verifyBundle(bundle, { trustedKeys: [releaseKey], tenantKey });
 * if (verified.manifest.version !== "1.0.0") throw new Error();
 * ```
 *
 * @module
 */
export * from "./error.ts";
export * from "./tenant_key.ts";
export * from "./bundle.ts";
export * from "./launcher.ts";
export * from "./attestation.ts";
export * from "./public_key.ts";
export * from "./launcher_config.ts";
export * from "./agent_config.ts";
export * from "./permissions.ts";
export * from "./supervisor.ts";
export * from "./action_runner.ts";
export * from "./control_link.ts";
export { type ControlLinkOptions, createControlLink, reportOutput } from "./control_client_link.ts";
export * from "./outbox.ts";
export * from "./state.ts";
export * from "./shipping.ts";
export * from "./agent.ts";
export type { ExecRequest, ExecResult } from "./exec_worker.ts";
export type { LedgerHead } from "./ledger_worker.ts";
export type { SandboxProbe, SandboxResult } from "./_sandbox_probe.ts";
