/**
 * Signed approvals: what an agent needs to execute an action. The control plane signs, with
 * its own key, an envelope bound to the canonical hash of the exact action, its target hosts
 * and an expiry; the agent verifies it against the pinned control-plane key, checks that the
 * action it is about to run hashes to the same value and that it is one of the targets, and
 * uses it once (the control plane hands each host's copy out once).
 *
 * @module
 */
import {
  canonicalJson,
  keyId,
  type MessagePayload,
  sha256Hex,
  type SignedEnvelope,
  TrustError,
  verifyEnvelope,
} from "@infraveil/trust";

/** The audience of every signed approval. */
export const APPROVAL_AUDIENCE = "infraveil-agent";

/** The exact action a request asks for; its canonical JSON is what approvals are bound to. */
export interface ExactAction {
  /** The requesting identity (the policy's `agent`). */
  agent: string;
  /** Action name, e.g. `deploy`. */
  action: string;
  /** Environment (the policy block). */
  environment?: string;
  /** Service. */
  service?: string;
  /** Target hosts, sorted. */
  targets: string[];
  /** Changed files (deploy, rollback). */
  files?: string[];
  /** Finding category (remediate). */
  category?: string;
  /** Free text for approvers. */
  reason?: string;
  /** Executor parameters (e.g. `{"version": "1.4.2"}`), part of what is approved. */
  params?: Record<string, unknown>;
}

/** The payload of a signed approval. */
export interface ApprovalPayload extends MessagePayload {
  /** Always `approval`. */
  type: "approval";
  /** Id of this approval; also the envelope nonce. */
  approval_id: string;
  /** The request approved. */
  request_id: string;
  /** The exact action. */
  action: ExactAction;
  /** `sha256:<hex>` of the canonical action. */
  action_hash: string;
  /** Hosts that may each execute it once. */
  targets: string[];
  /** Policy hash the decision was made with. */
  policy_hash: string | null;
  /** Why it may run: human `approvals`, a policy `allow`, or a `break-glass` session. */
  basis: "approvals" | "policy" | "break-glass";
  /** Emails of the approvers (empty unless basis is `approvals`). */
  approved_by: string[];
  /** The break-glass session, when basis is `break-glass`. */
  break_glass: string | null;
}

/**
 * The canonical hash of an exact action: `sha256:` + hex SHA-256 of its RFC 8785 JSON.
 *
 * @param action the exact action
 * @returns the hash
 * @example
 * ```ts
 * import { actionHash } from "@infraveil/control/client";
 * const a = actionHash({ agent: "claude", action: "restart", targets: ["web-1"] });
 * const b = actionHash({ targets: ["web-1"], action: "restart", agent: "claude" });
 * if (a !== b || !a.startsWith("sha256:")) throw new Error();
 * ```
 */
export function actionHash(action: ExactAction): string {
  return "sha256:" + sha256Hex(canonicalJson(action));
}

/** Options of {@link verifySignedApproval}. */
export interface VerifyApprovalOptions {
  /** The pinned control-plane public key (raw 32 bytes). */
  controlPublicKey: Uint8Array;
  /** The tenant of the verifying agent. */
  tenant: string;
  /** The verifying host: it must be one of the targets. */
  host: string;
  /** Clock, ms. */
  now?: () => number;
  /** Records the approval id and refuses a second use (the agent's own single-use store). */
  checkNonce: (nonce: string, exp: number) => boolean | Promise<boolean>;
}

/**
 * Verifies a signed approval: signature by the pinned key, audience, tenant, time window,
 * single use, then the binding — the action hashes to `action_hash` and `host` is a target.
 *
 * @param envelope the signed approval
 * @param options pinned key, tenant, host, clock and single-use store
 * @returns the payload
 * @throws {TrustError} a trust code, or `MALFORMED` when the binding does not hold
 */
export async function verifySignedApproval(
  envelope: unknown,
  options: VerifyApprovalOptions,
): Promise<ApprovalPayload> {
  const { controlPublicKey, tenant, host, now = Date.now, checkNonce } = options;
  const kid = keyId(controlPublicKey);
  const payload = await verifyEnvelope(envelope, {
    keys: (k) => (k === kid ? controlPublicKey : undefined),
    audience: APPROVAL_AUDIENCE,
    tenant,
    now,
    maxLifetimeSeconds: 7 * 86_400,
    checkNonce,
  });
  const p = payload as ApprovalPayload;
  if (p.type !== "approval") {
    throw new TrustError("MALFORMED", `Message of type "${p.type}" is not an approval`);
  }
  if (typeof p.action !== "object" || p.action === null || !Array.isArray(p.targets)) {
    throw new TrustError("MALFORMED", "Approval lacks its action or targets");
  }
  if (actionHash(p.action) !== p.action_hash) {
    throw new TrustError("MALFORMED", "Approval's action does not hash to its action_hash");
  }
  if (canonicalJson(p.action.targets) !== canonicalJson(p.targets)) {
    throw new TrustError("MALFORMED", "Approval's targets differ from its action's targets");
  }
  if (!p.targets.includes(host)) {
    throw new TrustError("MALFORMED", `Approval does not name host "${host}" as a target`);
  }
  if (p.nonce !== p.approval_id) {
    throw new TrustError("MALFORMED", "Approval's nonce is not its approval_id");
  }
  return p;
}

/** A signed approval envelope. */
export type SignedApproval = SignedEnvelope<ApprovalPayload>;
