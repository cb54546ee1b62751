/**
 * The narrow view of the control plane the MCP tools use: exactly the signed calls they need
 * (`fleet.status`, `findings.list`, `traces.query`, `trace.get`, `policy.check`,
 * `request.create`, `request.status`, `request.list`), with the shapes the control plane
 * returns. The production implementation ({@link createControlApi} in `control_client.ts`)
 * wraps `@infraveil/control/client`, which signs every call and verifies every response
 * against the pinned control-plane key; tests pass fakes.
 *
 * There is deliberately no approve, reject, execute or break-glass call here: the MCP server
 * can read and request, never decide or apply.
 *
 * @module
 */

/** The actions an AI agent can request. */
export type RequestAction = "deploy" | "rollback" | "restart" | "remediate";

/** Status of a request as created: denied at once, waiting for humans, or allowed outright. */
export type CreatedStatus = "denied" | "pending" | "allowed";

/** Every state of a request. */
export type RequestStatus =
  | CreatedStatus
  | "approved"
  | "rejected"
  | "expired"
  | "executed"
  | "failed";

/** Finding severities, lowest first. */
export type Severity = "low" | "medium" | "high" | "critical";

/** One reason of a policy decision. */
export interface DecisionReason {
  /** Rule id, e.g. `deploy.block_paths`. */
  rule: string;
  /** What it contributed: allow, approval, deny or note. */
  effect: string;
  /** Explanation. */
  message: string;
  /** Policy file. */
  file?: string;
  /** Line of the rule. */
  line?: number;
  /** Column of the rule. */
  col?: number;
}

/** An action, in the policy's vocabulary (the `agent` is the signing identity, never a field). */
export interface ActionFields {
  /** The action name, e.g. `deploy`. */
  action: string;
  /** Selects the `policy "<environment>"` block; omitted when the policy has one. */
  environment?: string;
  /** The service acted on. */
  service?: string;
  /** The hosts acted on. */
  targets: string[];
  /** Changed files (deploy, rollback). */
  files?: string[];
  /** The finding category (remediate). */
  category?: string;
  /** Why, for the approvers. */
  reason?: string;
  /** Executor parameters (e.g. `{"version": "1.4.2"}`); part of what is approved. */
  params?: Record<string, unknown>;
}

/** The policy's verdict on an action, as the control plane enforces it. */
export interface PolicyCheck {
  /** allow, approval_required or deny. */
  decision: "allow" | "approval_required" | "deny";
  /** The status a request would get. */
  status?: CreatedStatus;
  /** Why. */
  reasons: DecisionReason[];
  /** Distinct human approvals a request would need. */
  approvals_needed: number;
  /** Content hash of the policy that decided (null: the tenant has no active policy). */
  policy_hash: string | null;
  /** Hash of the exact action. */
  action_hash?: string;
}

/** The control plane's receipt for a new request. */
export interface RequestReceipt {
  /** The request's id. */
  request_id: string;
  /** denied, pending (awaiting approvals) or allowed. */
  status: CreatedStatus;
  /** Why. */
  reasons: DecisionReason[];
  /** Approvals still needed before it can run. */
  approvals_needed: number;
  /** Where humans review it. */
  dashboard_url: string;
  /** True when an identical pending request existed and this one was folded into it. */
  folded?: boolean;
  /** Hash of the exact action. */
  action_hash?: string;
  /** Policy hash used. */
  policy_hash?: string | null;
}

/** A request and where it stands now (the control plane's request view). */
export interface RequestInfo {
  /** The request's id. */
  request_id: string;
  /** Where it stands. */
  status: string;
  /** The exact action requested. */
  action: Record<string, unknown>;
  /** Why. */
  reasons: DecisionReason[];
  /** Approvals still needed. */
  approvals_needed: number;
  /** Where humans review it. */
  dashboard_url: string;
  /** Other fields of the view (votes, times, approval). */
  [field: string]: unknown;
}

/** One host of the fleet (the control plane's host view). */
export interface HostInfo {
  /** Host name. */
  name: string;
  /** `ok` or `stale`. */
  status: string;
  /** Other fields (version, policy_hash, policy_current, health, anchor, last_seen, …). */
  [field: string]: unknown;
}

/** Fleet status. */
export interface FleetStatus {
  /** Hash of the active policy, if one is set. */
  active_policy_hash: string | null;
  /** Hosts. */
  hosts: HostInfo[];
  /** Totals. */
  counts: { total: number; stale: number; policy_drift: number };
}

/** A page of results. */
export interface Page<T> {
  /** The items. */
  items: T[];
  /** Pass as `cursor` for the next page; null at the end. */
  next_cursor: string | null;
}

/** A security finding (title, detail and the like came from traffic). */
export interface Finding {
  /** Finding id. */
  id: string;
  /** Severity. */
  severity: string;
  /** Category, e.g. sqli. */
  category: string;
  /** Title. */
  title: string;
  /** Other fields (host, service, status, count, first_seen, last_seen, detail, trace_id). */
  [field: string]: unknown;
}

/** A trace span (name and attributes came from traffic). */
export interface SpanInfo {
  /** Trace id. */
  trace_id: string;
  /** Span id. */
  span_id: string;
  /** Name. */
  name: string;
  /** Other fields (parent_span_id, host, service, start_ms, duration_ms, status, attributes). */
  [field: string]: unknown;
}

/** A whole trace. */
export interface TraceInfo {
  /** Trace id. */
  trace_id: string;
  /** Its spans. */
  spans: SpanInfo[];
}

/** Filters of `findings.list`. */
export interface FindingQuery {
  /** Only this host. */
  host?: string;
  /** Only this category. */
  category?: string;
  /** Only these severities. */
  severity?: Severity[];
  /** Only open or resolved findings. */
  status?: "open" | "resolved";
  /** At most this many. */
  limit?: number;
  /** From `next_cursor`. */
  cursor?: string;
}

/** Filters of `traces.query`. */
export interface TraceQuery {
  /** Only this host. */
  host?: string;
  /** Only this service. */
  service?: string;
  /** Only spans with HTTP status at least this. */
  min_status?: number;
  /** Started at or after, ms. */
  since_ms?: number;
  /** Started before, ms. */
  until_ms?: number;
  /** Span name contains this. */
  name?: string;
  /** At most this many. */
  limit?: number;
  /** From `next_cursor`. */
  cursor?: string;
}

/** Filters of `request.list`. */
export interface RequestQuery {
  /** Only this status. */
  status?: RequestStatus;
  /** At most this many. */
  limit?: number;
  /** From `next_cursor`. */
  cursor?: string;
}

/** Options of one call. */
export interface CallOptions {
  /** Aborts the call (the MCP client cancelled). */
  signal?: AbortSignal;
}

/**
 * What the MCP tools need from the control plane. Every method signs its call and verifies the
 * response before returning; a failure throws (a {@link GovernedMcpError}, or an error with a
 * `code`) and never returns unverified data.
 */
export interface ControlApi {
  /** `fleet.status`. */
  fleetStatus(options?: CallOptions): Promise<FleetStatus>;
  /** `findings.list`. */
  listFindings(query: FindingQuery, options?: CallOptions): Promise<Page<Finding>>;
  /** `traces.query`. */
  queryTraces(query: TraceQuery, options?: CallOptions): Promise<Page<SpanInfo>>;
  /** `trace.get`; undefined when there is no such trace. */
  getTrace(traceId: string, options?: CallOptions): Promise<TraceInfo | undefined>;
  /** `policy.check`: a dry run, decided exactly as enforcement would. */
  checkPolicy(action: ActionFields, options?: CallOptions): Promise<PolicyCheck>;
  /** `request.create`: files a request and returns at once. */
  createRequest(action: ActionFields, options?: CallOptions): Promise<RequestReceipt>;
  /** `request.status`; undefined when there is no such request (of this identity). */
  getRequest(requestId: string, options?: CallOptions): Promise<RequestInfo | undefined>;
  /** `request.list`: this identity's requests, newest first. */
  listRequests(query: RequestQuery, options?: CallOptions): Promise<Page<RequestInfo>>;
}
