/**
 * The agent's narrow view of the control plane: exactly the calls the agent makes. The
 * production implementation wraps `@infraveil/control/client` (which signs every call with the
 * host key and verifies every response against the pinned control-plane key); tests may pass
 * fakes. Failures are {@link AgentError}s: `CONTROL_UNAVAILABLE` (network, timeout, 5xx, 429:
 * retry later) or `CONTROL_REJECTED` (the control plane refused the call: retrying the same
 * call will not help).
 *
 * @module
 */
import type { ActionReport } from "./action_runner.ts";

/** What a heartbeat says. */
export interface Heartbeat {
  /** The agent's version (the bundle's). */
  version: string;
  /** Hash of the policy this host enforces, or null when it has none. */
  policy_hash: string | null;
  /** Health summary (worker states, queue depth, offline time). */
  health: Record<string, unknown>;
  /** The ledger head, `SIZE:ROOTHEX`. */
  ledger_anchor: string;
}

/** The control plane's answer to a heartbeat. */
export interface HeartbeatResponse {
  /** Hash of the tenant's active policy, or null when none is set. */
  policy_hash: string | null;
}

/** The active policy, as fetched. */
export interface PolicyDocumentText {
  /** The policy text. */
  text: string;
  /** Its hash as the control plane announces it (checked by the agent). */
  hash: string;
}

/** What enrollment sends. */
export interface EnrollInput {
  /** The one-time token. */
  token: string;
  /** This host's name. */
  host: string;
  /** The agent version. */
  version: string;
}

/** The agent's calls to the control plane. */
export interface ControlLink {
  /** Enrolls this host's key with a one-time token. */
  enroll(input: EnrollInput): Promise<void>;
  /** Sends a heartbeat. */
  heartbeat(heartbeat: Heartbeat): Promise<HeartbeatResponse>;
  /** Fetches the tenant's active policy. */
  fetchPolicy(): Promise<PolicyDocumentText>;
  /**
   * Sends a signed checkpoint note of the ledger as an anchor, with the consistency proof (hex
   * hashes) from the last countersigned anchor; returns the countersigned note.
   */
  submitCheckpoint(note: string, proof: string[]): Promise<{ countersigned: string }>;
  /** Ships a batch of spans (the proxy's format). */
  shipTraces(spans: unknown[]): Promise<void>;
  /** Ships a batch of findings (the proxy's format). */
  shipFindings(findings: unknown[]): Promise<void>;
  /** Fetches the signed approvals waiting for this host. */
  fetchApprovals(): Promise<unknown[]>;
  /** Reports what became of an approval. */
  reportResult(report: ActionReport): Promise<void>;
}
