/**
 * What every handler shares: the store, the control plane's signer, the clock, randomness,
 * hooks and the compiled-policy cache (policies are immutable per content hash, so the cache
 * is safe across instances).
 *
 * @module
 */
import { type CompiledPolicy, compilePolicy, parsePolicy, PolicyError } from "@infraveil/policy";
import type { Ed25519KeyPair } from "@infraveil/trust";
import type { EnvelopeSigner } from "@infraveil/trust";
import type { Random } from "./_ids.ts";
import type {
  ControlStore,
  IdentityRow,
  RequestRow,
  StoreTx,
  TenantRow,
  UserRow,
} from "./store.ts";
import { ControlError } from "./error.ts";

/** An event for the notification hook. */
export interface ControlNotification {
  /** What happened. */
  type: "breakglass.opened" | "breakglass.closed";
  /** Tenant. */
  tenant: string;
  /** The break-glass session id. */
  session: string;
  /** Holder's email. */
  holder: string;
  /** Justification. */
  justification: string;
  /** Scope. */
  scope: { actions: string[]; services: string[]; environments?: string[] };
  /** Ends at (RFC 3339). */
  expires_at: string;
}

/** What a proof verifier is told about an approval. */
export interface ApprovalProofInput {
  /** Tenant. */
  tenant: string;
  /** The approving user. */
  user: UserRow;
  /** The request. */
  request: RequestRow;
  /** `approve` or `reject`. */
  decision: "approve" | "reject";
  /** The proof from the request body (e.g. a WebAuthn assertion). */
  proof: unknown;
}

/**
 * Verifies the presence proof sent with an approval (the dashboard's passkey assertion).
 * Returns the method name to record (e.g. `passkey`) or throws/returns null to refuse.
 */
export type ApprovalProofVerifier = (
  input: ApprovalProofInput,
) => Promise<string | null> | string | null;

/** Fault injection for crash tests: throwing at a point aborts the transaction there. */
export type FaultHook = (point: string) => void | Promise<void>;

/** Shared state of one app instance. */
export interface Ctx {
  /** The store. */
  store: ControlStore;
  /** The control plane's key pair (for checkpoint co-signatures). */
  key: Ed25519KeyPair;
  /** The envelope signer over the same key. */
  signer: EnvelopeSigner;
  /** Clock, ms. */
  now: () => number;
  /** Randomness. */
  random: Random;
  /** Break-glass notification hook. */
  notify?: (event: ControlNotification) => void | Promise<void>;
  /** Approval proof verifier. */
  verifyProof?: ApprovalProofVerifier;
  /** Base URL of the dashboard links. */
  publicUrl: string;
  /** Allowed clock skew for envelopes, seconds. */
  skewSeconds: number;
  /** Fault injection. */
  fault: FaultHook;
  /** Compiled policies by `tenant\0hash`. */
  policies: Map<string, CompiledPolicy>;
  /**
   * The rows a signed call last authenticated against: tenants by name, identities by
   * `tenant\0kid`. Only a guess that lets the signature be checked before the transaction;
   * the transaction reads the rows again and the call is judged afresh unless they are
   * unchanged (`_signed.ts`).
   */
  seen: { tenants: Map<string, TenantRow>; identities: Map<string, IdentityRow> };
  /** Whether signed calls may share their commit with concurrent ones (SQLite). */
  groupCommit: boolean;
}

/**
 * The compiled active policy of a tenant (cached by hash), or null when it has none.
 *
 * @param ctx the context
 * @param t the transaction
 * @param tenant the tenant
 * @returns the compiled policy
 */
export async function activePolicy(
  ctx: Ctx,
  t: StoreTx,
  tenant: TenantRow,
): Promise<CompiledPolicy | null> {
  const hash = tenant.activePolicyHash;
  if (!hash) return null;
  return await compiledPolicy(ctx, t, tenant.name, hash);
}

/**
 * A compiled policy version (cached by hash).
 *
 * @param ctx the context
 * @param t the transaction
 * @param tenant the tenant
 * @param hash the content hash
 * @returns the compiled policy
 */
export async function compiledPolicy(
  ctx: Ctx,
  t: StoreTx,
  tenant: string,
  hash: string,
): Promise<CompiledPolicy> {
  const key = `${tenant}\0${hash}`;
  const hit = ctx.policies.get(key);
  if (hit) return hit;
  const row = await t.getPolicy(tenant, hash);
  if (!row) throw new ControlError("NOT_FOUND", `Policy ${hash} not found in tenant ${tenant}`);
  const compiled = compileText(row.text);
  if (ctx.policies.size > 256) ctx.policies.clear();
  ctx.policies.set(key, compiled);
  return compiled;
}

/**
 * Compiles policy text, mapping lint errors to `INVALID_POLICY`.
 *
 * @param text the policy text
 * @returns the compiled policy
 */
export function compileText(text: string): CompiledPolicy {
  try {
    return compilePolicy(parsePolicy(text, { file: "policy" }));
  } catch (e) {
    if (e instanceof PolicyError) {
      throw new ControlError("INVALID_POLICY", e.message, {
        cause: e,
        details: { diagnostics: e.diagnostics as unknown as Record<string, unknown>[] },
      });
    }
    throw e;
  }
}

/**
 * RFC 3339 of a time in ms, or null.
 *
 * @param ms the time
 * @returns the text
 */
export function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}
