/**
 * The typed client that host agents and the MCP server use to talk to the control plane.
 *
 * Every call is a signed envelope (`POST /v1/t/{tenant}/signed/{type}`, body = envelope)
 * whose payload carries `type`, `tenant`, `aud = "infraveil-control"`, `iat`, `exp`, a fresh
 * `nonce` and `iss` (the identity name) plus the call's fields. Every response must be an
 * envelope signed by the pinned control-plane key, addressed to `<tenant>/<name>`, fresh,
 * not seen before, and echoing the request nonce as `in_reply_to`; anything else — unsigned,
 * forged, replayed, stale, misaddressed — throws a {@link ControlClientError}, never returns
 * data. The one other reply accepted is a signed error addressed to `<tenant>/unknown` with
 * `in_reply_to: null` — the control plane's refusal of a call it could not authenticate — and
 * it only ever throws (with the server's code, e.g. `UNKNOWN_KEY`). Signed approvals are verified (signature, binding to the action hash, this host
 * among the targets, single use) before they are returned.
 *
 * @example
 * ```ts
 * import { ControlClient } from "@infraveil/control/client";
 * import { generateKeyPair } from "@infraveil/trust";
 * const me = generateKeyPair();
 * const client = new ControlClient({
 *   baseUrl: "http://127.0.0.1:8700",
 *   identity: { tenant: "acme", name: "claude", kind: "mcp", kid: me.kid, privateKey: me.privateKey },
 *   controlPublicKey: generateKeyPair().publicKey,
 *   fetch: () => Promise.resolve(new Response("{}")),
 * });
 * await client.heartbeat({ version: "1" }).then(
 *   () => { throw new Error("an unsigned response must not be accepted"); },
 *   (e) => { if (e.code !== "BAD_RESPONSE") throw e; },
 * );
 * ```
 *
 * @module
 */
import {
  canonicalJson,
  decodeBase64Url,
  type Ed25519KeyPair,
  encodeBase64Url,
  keyId,
  keyPairFromSeed,
  memoryNonceStore,
  type MessagePayload,
  signEd25519,
  type SignedEnvelope,
  TrustError,
  verifyEnvelope,
} from "@infraveil/trust";
import {
  actionHash,
  APPROVAL_AUDIENCE,
  type ApprovalPayload,
  type ExactAction,
  type SignedApproval,
  verifySignedApproval,
} from "./approval.ts";
import { createEnvelopeSigner, type EnvelopeSigner } from "@infraveil/trust";

export { actionHash, APPROVAL_AUDIENCE, verifySignedApproval };
export type { ApprovalPayload, ExactAction, SignedApproval };

/** The audience of messages to the control plane. */
export const CONTROL_AUDIENCE = "infraveil-control";

/** Refusals of calls the control plane could not authenticate go to `<tenant>/unknown`. */
const UNAUTHENTICATED_AUDIENCE_NAME = "unknown";

/** A machine identity: who signs the calls. */
export interface ControlIdentity {
  /** Tenant. */
  tenant: string;
  /** Identity name (for agents: the host name). */
  name: string;
  /** `agent` or `mcp`. */
  kind: "agent" | "mcp";
  /** Key id of the private key. */
  kid: string;
  /** Raw 32-byte Ed25519 private seed. */
  privateKey: Uint8Array;
}

/** Options of {@link ControlClient}. */
export interface ControlClientOptions {
  /** Control-plane base URL, e.g. `http://127.0.0.1:8700`. */
  baseUrl: string;
  /** The identity that signs calls. */
  identity: ControlIdentity;
  /** The pinned control-plane public key (raw 32 bytes). */
  controlPublicKey: Uint8Array;
  /** `fetch` to use (default: global). */
  fetch?: typeof fetch;
  /** Clock, ms (default `Date.now`). */
  now?: () => number;
  /** Randomness for nonces (default WebCrypto). */
  random?: (buf: Uint8Array) => Uint8Array;
  /** Lifetime of each signed call, seconds (default 60). */
  lifetimeSeconds?: number;
  /** Records approval ids this host has used; default: in memory. */
  checkApprovalNonce?: (nonce: string, exp: number) => boolean | Promise<boolean>;
}

/** Client-side failure codes; server codes (e.g. `RATE_LIMITED`, `HUMAN_ONLY`) pass through. */
export type ControlClientErrorCode =
  | "NETWORK"
  | "BAD_RESPONSE"
  | "BAD_RESPONSE_SIGNATURE"
  | "REPLAYED_RESPONSE"
  | "STALE_RESPONSE"
  | "WRONG_REPLY"
  | "BAD_APPROVAL"
  | "BAD_IDENTITY_FILE"
  | (string & Record<never, never>);

/** A failed call: `code` is a server error code or one of the client-side codes. */
export class ControlClientError extends Error {
  /** What failed. */
  readonly code: ControlClientErrorCode;
  /** HTTP status, when a response arrived. */
  readonly status?: number;
  /** Server-provided details. */
  readonly details?: unknown;
  /**
   * @param code what failed
   * @param message what is wrong
   * @param options status, details, cause
   */
  constructor(
    code: ControlClientErrorCode,
    message: string,
    options?: ErrorOptions & { status?: number; details?: unknown },
  ) {
    super(message, options);
    this.name = "ControlClientError";
    this.code = code;
    if (options?.status !== undefined) this.status = options.status;
    if (options?.details !== undefined) this.details = options.details;
  }
}

/** One reason behind a policy decision. */
export interface PolicyReason {
  /** Rule id, e.g. `deploy.block_paths`. */
  rule: string;
  /** `allow`, `approval`, `deny` or `note`. */
  effect: string;
  /** Explanation. */
  message: string;
  /** Policy file. */
  file: string;
  /** Line. */
  line: number;
  /** Column. */
  col: number;
}

/** Heartbeat fields. */
export interface HeartbeatInput {
  /** Agent version. */
  version: string;
  /** Hash of the policy the agent enforces. */
  policy_hash?: string;
  /** Health report (JSON). */
  health?: unknown;
  /** Ledger anchor `SIZE:ROOT`. */
  anchor?: string;
  /** Latest signed checkpoint note. */
  checkpoint?: string;
}

/** Heartbeat reply. */
export interface HeartbeatResult {
  /** The tenant's active policy hash. */
  active_policy_hash: string | null;
  /** Whether the agent's policy hash is the active one. */
  policy_current: boolean;
  /** Server time (RFC 3339). */
  server_time: string;
  /** After this many seconds without a heartbeat a host is stale. */
  stale_after_seconds: number;
  /** Signed approvals waiting for this host. */
  approvals_waiting: number;
}

/** The active policy. */
export interface ActivePolicy {
  /** `sha256:<hex>` or null. */
  hash: string | null;
  /** Policy text or null. */
  text: string | null;
}

/** A checkpoint to countersign. */
export interface AnchorInput {
  /** C2SP signed note, signed by this agent's key. */
  checkpoint: string;
  /** Consistency proof from the previous countersigned anchor (hex or base64 hashes). */
  proof?: string[];
}

/** A countersigned checkpoint. */
export interface AnchorResult {
  /** `SIZE:ROOT`. */
  anchor: string;
  /** The note with the control plane's signature added. */
  countersigned: string;
  /** The previous anchor, or null. */
  previous: string | null;
}

/** One span to ship. */
export interface SpanInput {
  /** 32 lowercase hex. */
  trace_id: string;
  /** 16 lowercase hex. */
  span_id: string;
  /** Parent span id. */
  parent_span_id?: string;
  /** Name, e.g. `GET /api/users`. */
  name: string;
  /** Service. */
  service?: string;
  /** Start, Unix ms. */
  start_ms: number;
  /** Duration, ms. */
  duration_ms?: number;
  /** HTTP status. */
  status?: number;
  /** Attributes (≤ 8 KiB JSON). */
  attributes?: Record<string, unknown>;
}

/** One finding to ship. */
export interface FindingInput {
  /** Dedupe key. */
  fingerprint: string;
  /** Category (as in policy `block_categories`). */
  category: string;
  /** Severity. */
  severity: "low" | "medium" | "high" | "critical";
  /** Title. */
  title: string;
  /** Service. */
  service?: string;
  /** `open` (default) or `resolved`. */
  status?: "open" | "resolved";
  /** Related trace. */
  trace_id?: string;
  /** Details (≤ 8 KiB JSON). */
  detail?: unknown;
  /** When observed, Unix ms. */
  observed_ms?: number;
}

/** An action to request. */
export interface ActionRequest {
  /** Action name: deploy, rollback, restart, remediate, … */
  action: string;
  /** Environment (policy block). */
  environment?: string;
  /** Service. */
  service?: string;
  /** Target hosts (at least one). */
  targets: string[];
  /** Changed files (deploy, rollback). */
  files?: string[];
  /** Finding category (remediate). */
  category?: string;
  /** Free text for approvers. */
  reason?: string;
  /** Executor parameters, e.g. `{version: "1.4.2"}`. */
  params?: Record<string, unknown>;
}

/** The outcome of a request. */
export interface CreateRequestResult {
  /** Request id. */
  request_id: string;
  /** `denied` (see reasons), `pending` (approvals needed) or `allowed`. */
  status: "denied" | "pending" | "allowed";
  /** Why. */
  reasons: PolicyReason[];
  /** Distinct human approvals still needed. */
  approvals_needed: number;
  /** Where humans approve it. */
  dashboard_url: string;
  /** True when an identical pending request existed. */
  folded: boolean;
  /** Canonical hash of the exact action. */
  action_hash: string;
  /** Policy hash of the decision. */
  policy_hash: string | null;
  /** Break-glass session that let it through. */
  break_glass: string | null;
}

/** A request as the control plane shows it. */
export interface RequestView {
  /** Id. */
  request_id: string;
  /** `action` or `policy.activate`. */
  kind: string;
  /** denied, pending, allowed, approved, rejected, expired, executed, failed. */
  status: string;
  /** The exact action. */
  action: Record<string, unknown>;
  /** Its hash. */
  action_hash: string;
  /** Requester name. */
  requester: string;
  /** Requester kind. */
  requester_kind: string;
  /** Operator email. */
  operator: string | null;
  /** Environment. */
  environment: string | null;
  /** Service. */
  service: string | null;
  /** Targets. */
  targets: string[];
  /** Decision reasons. */
  reasons: PolicyReason[];
  /** Approvals required. */
  approvals_required: number;
  /** Approvals still needed. */
  approvals_needed: number;
  /** Votes. */
  votes: {
    user: string;
    decision: string;
    method: string;
    comment: string | null;
    at: string;
    expires_at: string;
  }[];
  /** Policy hash. */
  policy_hash: string | null;
  /** Break-glass session. */
  break_glass: string | null;
  /** Created (RFC 3339). */
  created_at: string;
  /** Updated. */
  updated_at: string;
  /** Pending until. */
  expires_at: string;
  /** Dashboard link. */
  dashboard_url: string;
  /** Signed approval state, when issued. */
  approval: {
    approval_id: string;
    expires_at: string;
    targets: {
      host: string;
      used_at: string | null;
      result: string | null;
      reported_at: string | null;
    }[];
  } | null;
}

/** A page of results. */
export interface Page<T> {
  /** Items, newest first. */
  items: T[];
  /** Pass as `cursor` for the next page; null at the end. */
  next_cursor: string | null;
}

/** A host in the fleet. */
export interface HostView {
  /** Host name. */
  name: string;
  /** Agent version. */
  version: string;
  /** Enforced policy hash. */
  policy_hash: string | null;
  /** Whether it is the active one. */
  policy_current: boolean;
  /** Health. */
  health: unknown;
  /** Ledger anchor. */
  anchor: string | null;
  /** Latest (countersigned) checkpoint. */
  checkpoint: string | null;
  /** First seen. */
  first_seen: string;
  /** Last heartbeat. */
  last_seen: string;
  /** No heartbeat for longer than the tenant's `stale_after_seconds`. */
  stale: boolean;
  /** `ok` or `stale`. */
  status: "ok" | "stale";
}

/** Fleet status. */
export interface FleetStatus {
  /** Active policy hash. */
  active_policy_hash: string | null;
  /** Hosts. */
  hosts: HostView[];
  /** Counts. */
  counts: { total: number; stale: number; policy_drift: number };
}

/** Finding filters. */
export interface FindingQuery {
  /** Host. */
  host?: string;
  /** Category. */
  category?: string;
  /** Severities. */
  severity?: FindingInput["severity"][];
  /** Status. */
  status?: "open" | "resolved";
  /** Page size (≤ 500). */
  limit?: number;
  /** Cursor from the previous page. */
  cursor?: string;
}

/** A finding. */
export interface FindingView {
  /** Id. */
  id: string;
  /** Host. */
  host: string;
  /** Fingerprint. */
  fingerprint: string;
  /** Category. */
  category: string;
  /** Severity. */
  severity: string;
  /** Title. */
  title: string;
  /** Service. */
  service: string | null;
  /** Status. */
  status: string;
  /** Times reported. */
  count: number;
  /** First seen. */
  first_seen: string;
  /** Last seen. */
  last_seen: string;
  /** Detail. */
  detail: unknown;
  /** Related trace. */
  trace_id: string | null;
}

/** Span filters. */
export interface TraceQuery {
  /** Host. */
  host?: string;
  /** Service. */
  service?: string;
  /** Status ≥. */
  min_status?: number;
  /** Start ≥, Unix ms. */
  since_ms?: number;
  /** Start <, Unix ms. */
  until_ms?: number;
  /** Name contains. */
  name?: string;
  /** Page size (≤ 500). */
  limit?: number;
  /** Cursor. */
  cursor?: string;
}

/** A stored span. */
export interface SpanView {
  /** Trace id. */
  trace_id: string;
  /** Span id. */
  span_id: string;
  /** Parent. */
  parent_span_id: string | null;
  /** Host. */
  host: string;
  /** Service. */
  service: string | null;
  /** Name. */
  name: string;
  /** Start, ms. */
  start_ms: number;
  /** Duration, ms. */
  duration_ms: number;
  /** Status. */
  status: number;
  /** Attributes. */
  attributes: Record<string, unknown> | null;
}

/** A dry-run decision. */
export interface PolicyCheckResult {
  /** The policy's decision. */
  decision: "allow" | "approval_required" | "deny";
  /** What a request would become. */
  status: "denied" | "pending" | "allowed";
  /** Why. */
  reasons: PolicyReason[];
  /** Approvals needed. */
  approvals_needed: number;
  /** Policy hash. */
  policy_hash: string | null;
  /** Action hash. */
  action_hash: string;
  /** A break-glass session that would let it through. */
  break_glass: string | null;
}

/** A verified signed approval. */
export interface FetchedApproval {
  /** The envelope as received (keep it as evidence). */
  envelope: SignedApproval;
  /** Its verified payload. */
  approval: ApprovalPayload;
}

/** An execution result. */
export interface ExecutionReport {
  /** The approval executed. */
  approval_id: string;
  /** Outcome. */
  status: "succeeded" | "failed";
  /** Output (≤ 64 KiB). */
  output?: string;
  /** The agent's ledger anchor after recording the execution. */
  ledger_anchor?: string;
  /** Start, Unix ms. */
  started_ms?: number;
  /** End, Unix ms. */
  finished_ms?: number;
}

/** The reply to an execution report. */
export interface ExecutionReportResult {
  /** Always true. */
  recorded: boolean;
  /** The request. */
  request_id: string;
  /** `executed`/`failed` once every target reported, else null. */
  request_status: string | null;
}

const TRUST_TO_CLIENT: Record<string, ControlClientErrorCode> = {
  MALFORMED: "BAD_RESPONSE",
  UNKNOWN_KEY: "BAD_RESPONSE_SIGNATURE",
  BAD_SIGNATURE: "BAD_RESPONSE_SIGNATURE",
  WRONG_AUDIENCE: "WRONG_REPLY",
  WRONG_TENANT: "WRONG_REPLY",
  BAD_LIFETIME: "STALE_RESPONSE",
  NOT_YET_VALID: "STALE_RESPONSE",
  EXPIRED: "STALE_RESPONSE",
  REPLAYED: "REPLAYED_RESPONSE",
};

/** The control-plane client of one identity. */
export class ControlClient {
  readonly #o: Required<Pick<ControlClientOptions, "baseUrl" | "identity" | "controlPublicKey">> & {
    fetch: typeof fetch;
    now: () => number;
    random: (b: Uint8Array) => Uint8Array;
    lifetime: number;
    checkApprovalNonce: (nonce: string, exp: number) => boolean | Promise<boolean>;
  };
  readonly #controlKid: string;
  readonly #seenReplies: (nonce: string, exp: number) => boolean;
  #signer: Promise<EnvelopeSigner> | null = null;

  /** @param options base URL, identity, pinned key, fetch, clock */
  constructor(options: ControlClientOptions) {
    const now = options.now ?? Date.now;
    this.#o = {
      baseUrl: options.baseUrl.replace(/\/+$/, ""),
      identity: options.identity,
      controlPublicKey: options.controlPublicKey,
      fetch: options.fetch ?? ((input, init) => fetch(input, init)),
      now,
      random: options.random ?? ((b) => crypto.getRandomValues(b)),
      lifetime: options.lifetimeSeconds ?? 60,
      checkApprovalNonce: options.checkApprovalNonce ?? memoryNonceStore({ now }),
    };
    this.#controlKid = keyId(options.controlPublicKey);
    this.#seenReplies = memoryNonceStore({ now });
  }

  /** The identity's `<tenant>/<name>`, the audience of replies. */
  get audience(): string {
    return `${this.#o.identity.tenant}/${this.#o.identity.name}`;
  }

  #getSigner(): Promise<EnvelopeSigner> {
    if (!this.#signer) {
      const id = this.#o.identity;
      const pair = keyPairFromSeed(id.privateKey);
      if (pair.kid !== id.kid) {
        throw new ControlClientError(
          "BAD_IDENTITY_FILE",
          `Identity key id ${id.kid} does not match its private key (${pair.kid})`,
        );
      }
      this.#signer = createEnvelopeSigner(pair);
    }
    return this.#signer;
  }

  /**
   * Sends one signed call and returns its verified result. The typed methods use it.
   *
   * @param type the message type, e.g. `heartbeat`
   * @param fields the call's fields
   * @returns the `result` of the verified reply
   * @throws {ControlClientError} for a server error or any reply that does not verify
   */
  async call<T>(type: string, fields: Record<string, unknown> = {}): Promise<T> {
    const id = this.#o.identity;
    const iat = Math.floor(this.#o.now() / 1000);
    const nonce = encodeBase64Url(this.#o.random(new Uint8Array(16)));
    const defined: Record<string, unknown> = {};
    // Optional fields left undefined are simply absent (JSON has no undefined).
    for (const [k, v] of Object.entries(fields)) if (v !== undefined) defined[k] = v;
    const payload: MessagePayload = {
      ...defined,
      type,
      tenant: id.tenant,
      aud: CONTROL_AUDIENCE,
      iat,
      exp: iat + this.#o.lifetime,
      nonce,
      iss: id.name,
    };
    const env = await (await this.#getSigner()).sign(payload);
    const path = type === "enroll" ? "enroll" : `signed/${encodeURIComponent(type)}`;
    return await this.#send<T>(
      `${this.#o.baseUrl}/v1/t/${encodeURIComponent(id.tenant)}/${path}`,
      env,
      type,
      nonce,
    );
  }

  async #send<T>(url: string, env: SignedEnvelope, type: string, nonce: string): Promise<T> {
    let res: Response;
    try {
      res = await this.#o.fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(env),
      });
    } catch (cause) {
      throw new ControlClientError(
        "NETWORK",
        `Cannot reach the control plane at ${url}: ${cause}`,
        { cause },
      );
    }
    const text = await res.text();
    let reply: MessagePayload;
    const verify = (audience: string) =>
      verifyEnvelope(text, {
        keys: (kid) => (kid === this.#controlKid ? this.#o.controlPublicKey : undefined),
        audience,
        tenant: this.#o.identity.tenant,
        now: this.#o.now,
        checkNonce: this.#seenReplies,
      });
    try {
      try {
        reply = await verify(this.audience);
      } catch (e) {
        if (!(e instanceof TrustError && e.code === "WRONG_AUDIENCE")) throw e;
        // The control plane could not authenticate the call (unknown or revoked key, bad
        // signature, replay, …): its signed refusal is addressed to `<tenant>/unknown` and
        // answers no nonce. Only an error is taken from it; it changes nothing here.
        reply = await verify(`${this.#o.identity.tenant}/${UNAUTHENTICATED_AUDIENCE_NAME}`)
          .catch(() => {
            throw e;
          });
        const err = (reply.error ?? {}) as { code?: string; message?: string; details?: unknown };
        if (reply.type !== "error" || reply.in_reply_to !== null || res.ok) throw e;
        throw new ControlClientError(
          err.code ?? "BAD_RESPONSE",
          `The control plane refused ${type} before authenticating it: ${err.message ?? "error"}`,
          { status: res.status, details: err.details },
        );
      }
    } catch (e) {
      if (e instanceof TrustError) {
        throw new ControlClientError(
          TRUST_TO_CLIENT[e.code] ?? "BAD_RESPONSE",
          `Rejected the control plane's reply (HTTP ${res.status}) to ${type}: ${e.message}`,
          { status: res.status, cause: e },
        );
      }
      throw e;
    }
    if (reply.in_reply_to !== nonce) {
      throw new ControlClientError("WRONG_REPLY", `Reply to ${type} answers another request`, {
        status: res.status,
      });
    }
    if (reply.type === "error") {
      const err = (reply.error ?? {}) as { code?: string; message?: string; details?: unknown };
      throw new ControlClientError(err.code ?? "BAD_RESPONSE", err.message ?? "error", {
        status: res.status,
        details: err.details,
      });
    }
    if (reply.type !== `${type}.result` || !res.ok) {
      throw new ControlClientError(
        "WRONG_REPLY",
        `Expected a ${type}.result reply, got ${reply.type}`,
        { status: res.status },
      );
    }
    return reply.result as T;
  }

  /** Sends a heartbeat; the reply carries the active policy hash. */
  heartbeat(input: HeartbeatInput): Promise<HeartbeatResult> {
    return this.call("heartbeat", { ...input });
  }
  /** Fetches the active policy text and hash. */
  getActivePolicy(): Promise<ActivePolicy> {
    return this.call("policy.active");
  }
  /** Submits a ledger checkpoint and consistency proof; returns it countersigned. */
  submitAnchor(input: AnchorInput): Promise<AnchorResult> {
    return this.call("anchor.submit", { ...input });
  }
  /** Ships a batch of spans (≤ the tenant's `batch_max`). */
  shipTraces(spans: SpanInput[]): Promise<{ accepted: number; duplicates: number }> {
    return this.call("traces.ingest", { spans });
  }
  /** Ships a batch of findings. */
  shipFindings(
    findings: FindingInput[],
  ): Promise<{ accepted: number; new: number; updated: number }> {
    return this.call("findings.ingest", { findings });
  }
  /** Requests an action. */
  createRequest(request: ActionRequest): Promise<CreateRequestResult> {
    return this.call("request.create", { ...request });
  }
  /** Requests a deploy. */
  requestDeploy(request: Omit<ActionRequest, "action">): Promise<CreateRequestResult> {
    return this.createRequest({ ...request, action: "deploy" });
  }
  /** Requests a rollback. */
  requestRollback(request: Omit<ActionRequest, "action">): Promise<CreateRequestResult> {
    return this.createRequest({ ...request, action: "rollback" });
  }
  /** Requests a restart. */
  requestRestart(request: Omit<ActionRequest, "action">): Promise<CreateRequestResult> {
    return this.createRequest({ ...request, action: "restart" });
  }
  /** Requests a remediation (give `category`). */
  requestRemediate(request: Omit<ActionRequest, "action">): Promise<CreateRequestResult> {
    return this.createRequest({ ...request, action: "remediate" });
  }
  /** One of this identity's requests. */
  getRequest(requestId: string): Promise<RequestView> {
    return this.call("request.status", { request_id: requestId });
  }
  /** This identity's requests. */
  listRequests(
    query: { status?: string; limit?: number; cursor?: string } = {},
  ): Promise<Page<RequestView>> {
    return this.call("request.list", { ...query });
  }
  /** Fleet status. */
  fleetStatus(): Promise<FleetStatus> {
    return this.call("fleet.status");
  }
  /** Findings. */
  listFindings(query: FindingQuery = {}): Promise<Page<FindingView>> {
    return this.call("findings.list", { ...query });
  }
  /** Spans. */
  queryTraces(query: TraceQuery = {}): Promise<Page<SpanView>> {
    return this.call("traces.query", { ...query });
  }
  /** One trace. */
  getTrace(traceId: string): Promise<{ trace_id: string; spans: SpanView[] }> {
    return this.call("trace.get", { trace_id: traceId });
  }
  /** Dry run of a request against the active policy. */
  checkPolicy(request: ActionRequest): Promise<PolicyCheckResult> {
    return this.call("policy.check", { ...request });
  }
  /**
   * Claims and verifies this host's signed approvals. Each is handed out once; each is
   * verified (pinned key, action hash, this host a target, not used before) before return.
   *
   * @returns the verified approvals
   * @throws {ControlClientError} `BAD_APPROVAL` when one does not verify
   */
  async fetchApprovedActions(): Promise<FetchedApproval[]> {
    const { approvals } = await this.call<{ approvals: unknown[] }>("approvals.fetch");
    const out: FetchedApproval[] = [];
    for (const envelope of approvals) {
      try {
        const approval = await verifySignedApproval(envelope, {
          controlPublicKey: this.#o.controlPublicKey,
          tenant: this.#o.identity.tenant,
          host: this.#o.identity.name,
          now: this.#o.now,
          checkNonce: this.#o.checkApprovalNonce,
        });
        out.push({ envelope: envelope as SignedApproval, approval });
      } catch (e) {
        throw new ControlClientError(
          "BAD_APPROVAL",
          `A signed approval did not verify: ${(e as Error).message}`,
          { cause: e },
        );
      }
    }
    return out;
  }
  /** Reports the result of an execution. */
  reportExecution(report: ExecutionReport): Promise<ExecutionReportResult> {
    return this.call("execution.report", { ...report });
  }
  /**
   * Replaces this identity's key: the call is signed by the current key and carries the new
   * key's proof of possession. Build a new client with the new key afterwards.
   *
   * @param next the new key pair
   * @returns the old and new key ids
   */
  async rotateKey(next: Ed25519KeyPair): Promise<{ name: string; old_kid: string; kid: string }> {
    // The proof binds tenant, name, both key ids and this call's nonce: reuse the nonce
    // generation of call() by signing inside a custom payload.
    const id = this.#o.identity;
    const iat = Math.floor(this.#o.now() / 1000);
    const nonce = encodeBase64Url(this.#o.random(new Uint8Array(16)));
    const proofMessage = new TextEncoder().encode(
      "infraveil-rotate/v1\n" +
        canonicalJson({
          name: id.name,
          new_kid: next.kid,
          nonce,
          old_kid: id.kid,
          tenant: id.tenant,
        }),
    );
    const payload: MessagePayload = {
      type: "identity.rotate",
      tenant: id.tenant,
      aud: CONTROL_AUDIENCE,
      iat,
      exp: iat + this.#o.lifetime,
      nonce,
      iss: id.name,
      new_public: encodeBase64Url(next.publicKey),
      proof: encodeBase64Url(signEd25519(next.privateKey, proofMessage)),
    };
    const env = await (await this.#getSigner()).sign(payload);
    return await this.#send(
      `${this.#o.baseUrl}/v1/t/${encodeURIComponent(id.tenant)}/signed/identity.rotate`,
      env,
      "identity.rotate",
      nonce,
    );
  }
}

/** Options of {@link enrollWithToken}. */
export interface EnrollOptions {
  /** Control-plane base URL. */
  baseUrl: string;
  /** Tenant. */
  tenant: string;
  /** Identity name the token was made for. */
  name: string;
  /** Identity kind the token was made for. */
  kind: "agent" | "mcp";
  /** The one-time enrollment token (`ive_…`). */
  token: string;
  /** The new key pair to enroll. */
  key: Ed25519KeyPair;
  /** The control plane's public key, obtained out of band with the token. */
  controlPublicKey: Uint8Array;
  /** `fetch` (default global). */
  fetch?: typeof fetch;
  /** Clock, ms. */
  now?: () => number;
}

/** What enrollment returns. */
export interface EnrollResult {
  /** Tenant. */
  tenant: string;
  /** Name. */
  name: string;
  /** Kind. */
  kind: "agent" | "mcp";
  /** Enrolled key id. */
  kid: string;
  /** Operator (MCP). */
  operator: string | null;
  /** The control plane's key id. */
  control_kid: string;
}

/**
 * Enrolls a new key with a one-time enrollment token: the call is signed by the new key
 * itself (proof of possession) and the reply is verified against the pinned control key.
 *
 * @param options base URL, tenant, name, kind, token, key, pinned control key
 * @returns the enrolled identity
 * @throws {ControlClientError} `TOKEN_USED` and other server codes, or reply failures
 */
export function enrollWithToken(options: EnrollOptions): Promise<EnrollResult> {
  const client = new ControlClient({
    baseUrl: options.baseUrl,
    identity: {
      tenant: options.tenant,
      name: options.name,
      kind: options.kind,
      kid: options.key.kid,
      privateKey: options.key.privateKey,
    },
    controlPublicKey: options.controlPublicKey,
    fetch: options.fetch,
    now: options.now,
  });
  return client.call<EnrollResult>("enroll", {
    token: options.token,
    name: options.name,
    kind: options.kind,
    public: encodeBase64Url(options.key.publicKey),
  });
}

/** The identity file the agent or MCP server reads (written 0600). */
export interface IdentityFile {
  /** `agent` or `mcp`. */
  kind: "agent" | "mcp";
  /** Identity name. */
  name: string;
  /** Tenant. */
  tenant: string;
  /** Key id. */
  kid: string;
  /** base64url private seed. */
  private: string;
  /** base64url public key. */
  public: string;
  /** Control-plane URL, if known. */
  control_url?: string;
  /** Pinned control-plane public key, base64url. */
  control_public_key: string;
  /** Control-plane key id. */
  control_kid: string;
}

/**
 * Parses an identity file strictly.
 *
 * @param text the file's contents
 * @param source the file name, for messages
 * @returns the identity, the pinned control key and the URL
 * @throws {ControlClientError} `BAD_IDENTITY_FILE` naming the problem
 */
export function parseIdentityFile(
  text: string,
  source = "identity file",
): {
  identity: ControlIdentity;
  controlPublicKey: Uint8Array;
  controlUrl?: string;
  publicKey: Uint8Array;
} {
  const bad = (why: string) =>
    new ControlClientError(
      "BAD_IDENTITY_FILE",
      `Cannot load ${source}: ${why}. Re-run \`infraveil control enroll\``,
    );
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(text);
  } catch {
    throw bad("not JSON");
  }
  if (typeof j !== "object" || j === null || Array.isArray(j)) throw bad("not a JSON object");
  for (
    const f of [
      "kind",
      "name",
      "tenant",
      "kid",
      "private",
      "public",
      "control_public_key",
      "control_kid",
    ]
  ) {
    if (typeof j[f] !== "string" || j[f] === "") {
      throw bad(`field "${f}" is missing or not a string`);
    }
  }
  if (j.kind !== "agent" && j.kind !== "mcp") throw bad(`field "kind" must be "agent" or "mcp"`);
  let seed: Uint8Array, pub: Uint8Array, control: Uint8Array;
  try {
    seed = decodeBase64Url(j.private as string);
    pub = decodeBase64Url(j.public as string);
    control = decodeBase64Url(j.control_public_key as string);
  } catch {
    throw bad("a key field is not base64url");
  }
  if (seed.length !== 32 || pub.length !== 32 || control.length !== 32) {
    throw bad("a key is not 32 bytes");
  }
  const pair = keyPairFromSeed(seed);
  if (pair.kid !== j.kid || encodeBase64Url(pair.publicKey) !== j.public) {
    throw bad("kid or public key does not match the private key");
  }
  if (keyId(control) !== j.control_kid) throw bad("control_kid does not match control_public_key");
  return {
    identity: {
      tenant: j.tenant as string,
      name: j.name as string,
      kind: j.kind,
      kid: pair.kid,
      privateKey: pair.privateKey,
    },
    controlPublicKey: control,
    controlUrl: typeof j.control_url === "string" ? j.control_url : undefined,
    publicKey: pair.publicKey,
  };
}
