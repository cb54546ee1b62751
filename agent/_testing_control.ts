/**
 * A fake control plane behind the {@link ControlLink} interface, with an on/off switch, for
 * tests of the agent's loops that do not need the real one.
 *
 * @module
 */
import type { ActionReport } from "./action_runner.ts";
import type {
  ControlLink,
  EnrollInput,
  Heartbeat,
  HeartbeatResponse,
  PolicyDocumentText,
} from "./control_link.ts";
import { AgentError } from "./error.ts";
import { activePolicy, POLICY_TEXT } from "./_testing_approval.ts";

/** A fake control plane. */
export class FakeControl implements ControlLink {
  /** Whether it answers. */
  online = true;
  /** The token enrollment used. */
  enrolledWith: string | null = null;
  /** Heartbeats received. */
  heartbeats: Heartbeat[] = [];
  /** The active policy text. */
  policyText: string = POLICY_TEXT;
  /** Approvals to hand out (each once). */
  approvals: unknown[] = [];
  /** Reports received. */
  reports: ActionReport[] = [];
  /** Spans received. */
  spans: Record<string, unknown>[] = [];
  /** Findings received. */
  findings: Record<string, unknown>[] = [];
  /** Checkpoint notes and proofs received. */
  checkpoints: { note: string; proof: string[] }[] = [];

  #up(): void {
    if (!this.online) throw new AgentError("CONTROL_UNAVAILABLE", "connection refused (fake)");
  }
  enroll(input: EnrollInput): Promise<void> {
    this.#up();
    this.enrolledWith = input.token;
    return Promise.resolve();
  }
  heartbeat(h: Heartbeat): Promise<HeartbeatResponse> {
    this.#up();
    this.heartbeats.push(h);
    return Promise.resolve({ policy_hash: activePolicy(this.policyText).hash });
  }
  fetchPolicy(): Promise<PolicyDocumentText> {
    this.#up();
    return Promise.resolve({ text: this.policyText, hash: activePolicy(this.policyText).hash });
  }
  submitCheckpoint(note: string, proof: string[]): Promise<{ countersigned: string }> {
    this.#up();
    this.checkpoints.push({ note, proof });
    return Promise.resolve({ countersigned: note });
  }
  shipTraces(spans: unknown[]): Promise<void> {
    this.#up();
    this.spans.push(...spans as Record<string, unknown>[]);
    return Promise.resolve();
  }
  shipFindings(findings: unknown[]): Promise<void> {
    this.#up();
    this.findings.push(...findings as Record<string, unknown>[]);
    return Promise.resolve();
  }
  fetchApprovals(): Promise<unknown[]> {
    this.#up();
    return Promise.resolve(this.approvals.splice(0));
  }
  reportResult(report: ActionReport): Promise<void> {
    this.#up();
    this.reports.push(report);
    return Promise.resolve();
  }
}
