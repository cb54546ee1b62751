/**
 * Test helpers: an in-memory {@link ControlApi} that records every call.
 *
 * @module
 */
import type {
  ActionFields,
  ControlApi,
  DecisionReason,
  Finding,
  FleetStatus,
  HostInfo,
  PolicyCheck,
  RequestInfo,
  RequestReceipt,
  SpanInfo,
} from "./control_api.ts";

/** A recorded call. */
export interface RecordedCall {
  /** Method name. */
  method: keyof ControlApi;
  /** Its first argument. */
  arg: unknown;
}

/** Fixed data and behaviour for the fake. */
export interface FakeControlOptions {
  /** Hosts returned by fleetStatus. */
  hosts?: HostInfo[];
  /** Findings returned. */
  findings?: Finding[];
  /** Spans returned by queryTraces and (by trace id) getTrace. */
  spans?: SpanInfo[];
  /** The verdict of checkPolicy and createRequest. */
  check?: PolicyCheck;
  /** Thrown by every call when set. */
  fail?: unknown;
}

/** An in-memory control plane. */
export interface FakeControl extends ControlApi {
  /** Every call, in order. */
  calls: RecordedCall[];
  /** Requests created. */
  requests: RequestInfo[];
}

/** A reason as the policy gives it. */
export function reason(message: string, rule = "deploy.require_approval"): DecisionReason {
  return { rule, effect: "approval", message, file: "infraveil.policy", line: 3, col: 5 };
}

/**
 * Creates a fake control plane.
 *
 * @param options canned data
 * @returns the fake
 */
export function fakeControl(options: FakeControlOptions = {}): FakeControl {
  const calls: RecordedCall[] = [];
  const requests: RequestInfo[] = [];
  const check: PolicyCheck = options.check ?? {
    decision: "approval_required",
    reasons: [reason("deploy needs 1 approval")],
    approvals_needed: 1,
    policy_hash: "sha256:00",
  };
  const spans = options.spans ?? [];
  const hosts = options.hosts ?? [];
  const record = (method: keyof ControlApi, arg: unknown): void => {
    calls.push({ method, arg });
    if (options.fail !== undefined) throw options.fail;
  };
  const fleet = (): FleetStatus => ({
    active_policy_hash: check.policy_hash,
    hosts,
    counts: {
      total: hosts.length,
      stale: hosts.filter((h) => h.status === "stale").length,
      policy_drift: 0,
    },
  });
  return {
    calls,
    requests,
    fleetStatus() {
      record("fleetStatus", undefined);
      return Promise.resolve(fleet());
    },
    listFindings(q) {
      record("listFindings", q);
      return Promise.resolve({ items: options.findings ?? [], next_cursor: null });
    },
    queryTraces(q) {
      record("queryTraces", q);
      return Promise.resolve({ items: spans, next_cursor: null });
    },
    getTrace(id) {
      record("getTrace", id);
      const mine = spans.filter((s) => s.trace_id === id);
      return Promise.resolve(mine.length > 0 ? { trace_id: id, spans: mine } : undefined);
    },
    checkPolicy(q) {
      record("checkPolicy", q);
      return Promise.resolve(check);
    },
    createRequest(r: ActionFields) {
      record("createRequest", r);
      const id = `req_${requests.length + 1}`;
      const status = check.decision === "allow"
        ? "allowed"
        : check.decision === "deny"
        ? "denied"
        : "pending";
      const receipt: RequestReceipt = {
        request_id: id,
        status,
        reasons: check.reasons,
        approvals_needed: status === "pending" ? check.approvals_needed : 0,
        dashboard_url: `https://control.test/dashboard/t/acme/requests/${id}`,
        folded: false,
      };
      requests.push({
        request_id: id,
        status,
        action: { agent: "claude", ...r },
        reasons: receipt.reasons,
        approvals_needed: receipt.approvals_needed,
        dashboard_url: receipt.dashboard_url,
      });
      return Promise.resolve(receipt);
    },
    getRequest(id) {
      record("getRequest", id);
      return Promise.resolve(requests.find((r) => r.request_id === id));
    },
    listRequests(q) {
      record("listRequests", q);
      return Promise.resolve({
        items: requests.filter((r) => !q.status || r.status === q.status),
        next_cursor: null,
      });
    },
  };
}
