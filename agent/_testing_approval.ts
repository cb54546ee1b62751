/**
 * Test helpers for approvals: a control-plane key, a policy, and signed approvals made the way
 * the control plane makes them (or deliberately wrong).
 *
 * @module
 */
import { compilePolicy, parsePolicy } from "@infraveil/policy";
import { type Ed25519KeyPair, keyPairFromSeed, signEnvelope } from "@infraveil/trust";
import {
  actionHash,
  type ActivePolicy,
  APPROVAL_AUDIENCE,
  type ApprovalPayload,
  type ExactAction,
} from "./action_runner.ts";

/** The control plane's key in tests. */
export const CONTROL_KEY: Ed25519KeyPair = keyPairFromSeed(new Uint8Array(32).fill(42));
/** Someone else's key. */
export const OTHER_KEY: Ed25519KeyPair = keyPairFromSeed(new Uint8Array(32).fill(43));

/** A production policy: deploy, restart and rollback need one approval. */
export const POLICY_TEXT = `policy "production" {
  version 1
  deploy {
    require_approval true
    block_paths ".env", "secrets/**"
  }
  agent "deployer" {
    allow restart, deploy, rollback
    deny delete, db_migrate, drop_table
  }
}
`;

/** The policy, compiled. */
export function activePolicy(text = POLICY_TEXT): ActivePolicy {
  const compiled = compilePolicy(parsePolicy(text, { file: "production.policy" }));
  return { hash: compiled.hash, compiled };
}

/** A deploy of `version` to web-1. */
export function deployAction(version = "1.4.2", targets = ["web-1"]): ExactAction {
  return {
    agent: "deployer",
    action: "deploy",
    environment: "production",
    service: "shop",
    targets,
    files: ["src/app.ts"],
    params: { version },
  };
}

let counter = 0;

/** A signed approval; `over` replaces payload fields after the binding is computed. */
export function signApproval(
  action: ExactAction,
  options: {
    key?: Ed25519KeyPair;
    now?: number;
    ttl?: number;
    policyHash?: string;
    over?: Partial<ApprovalPayload>;
  } = {},
): { payload: ApprovalPayload; kid: string; sig: string } {
  const now = Math.floor((options.now ?? Date.now()) / 1000);
  const id = `apv_${++counter}_${crypto.randomUUID().slice(0, 8)}`;
  const payload: ApprovalPayload = {
    type: "approval",
    tenant: "acme",
    aud: APPROVAL_AUDIENCE,
    iat: now,
    exp: now + (options.ttl ?? 600),
    nonce: id,
    approval_id: id,
    request_id: `req_${counter}`,
    action,
    action_hash: actionHash(action),
    targets: action.targets,
    policy_hash: options.policyHash ?? activePolicy().hash,
    basis: "approvals",
    approved_by: ["alice@example.com"],
    break_glass: null,
    ...options.over,
  };
  return signEnvelope(payload, options.key ?? CONTROL_KEY);
}
