/**
 * The OpenAPI 3.1 document served at `/openapi.json`, describing every endpoint: the public
 * ones, the signed machine endpoints (one path per message type) and the human ones. A test
 * checks that every route the app registers is described here and nothing else is.
 *
 * @module
 */
import { ERROR_STATUS } from "./error.ts";

type Schema = Record<string, unknown>;

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const obj = (properties: Record<string, Schema>, required: string[] = []): Schema => ({
  type: "object",
  properties,
  required,
  additionalProperties: false,
});
const s = (description?: string): Schema => ({
  type: "string",
  ...(description ? { description } : {}),
});
const int = (description?: string): Schema => ({
  type: "integer",
  ...(description ? { description } : {}),
});
const arr = (items: Schema): Schema => ({ type: "array", items });
const any = (description: string): Schema => ({ description });

const ACTION_FIELDS: Record<string, Schema> = {
  action: s("deploy, rollback, restart, remediate, scale, config_change, …"),
  environment: s("selects the policy block"),
  service: s(),
  targets: arr(s("host name")),
  files: arr(s("repository-relative path (deploy, rollback)")),
  category: s("finding category (remediate)"),
  reason: s("free text for approvers"),
  params: { type: "object", description: "executor parameters, part of the approved action" },
};

/** A signed message type: its call fields and its result. */
interface SignedDoc {
  summary: string;
  kinds: string;
  fields: Record<string, Schema>;
  required?: string[];
  result: Schema;
}

/** Every signed message type (the `{type}` of `/v1/t/{tenant}/signed/{type}`). */
export const SIGNED_DOCS: Readonly<Record<string, SignedDoc>> = {
  "heartbeat": {
    summary: "Agent heartbeat; the reply carries the active policy hash",
    kinds: "agent",
    fields: {
      version: s(),
      policy_hash: s(),
      health: any("JSON health report"),
      anchor: s("SIZE:ROOT"),
      checkpoint: s("signed note"),
    },
    required: ["version"],
    result: obj({
      active_policy_hash: s(),
      policy_current: { type: "boolean" },
      server_time: s(),
      stale_after_seconds: int(),
      approvals_waiting: int(),
    }),
  },
  "policy.active": {
    summary: "The active policy text and hash",
    kinds: "agent, mcp",
    fields: {},
    result: obj({ hash: s(), text: s() }),
  },
  "anchor.submit": {
    summary:
      "Submit a ledger checkpoint with a consistency proof from the previous anchor; returns it countersigned",
    kinds: "agent",
    fields: { checkpoint: s("C2SP signed note"), proof: arr(s("32-byte hash, hex or base64")) },
    required: ["checkpoint"],
    result: obj({ anchor: s(), countersigned: s(), previous: s() }),
  },
  "traces.ingest": {
    summary: "Ship a bounded batch of trace spans",
    kinds: "agent",
    fields: { spans: arr(ref("SpanInput")) },
    required: ["spans"],
    result: obj({ accepted: int(), duplicates: int() }),
  },
  "findings.ingest": {
    summary: "Ship a bounded batch of findings",
    kinds: "agent",
    fields: { findings: arr(ref("FindingInput")) },
    required: ["findings"],
    result: obj({ accepted: int(), new: int(), updated: int() }),
  },
  "request.create": {
    summary: "Request an action; decided at once: denied, pending or allowed",
    kinds: "mcp, agent",
    fields: ACTION_FIELDS,
    required: ["action", "targets"],
    result: ref("CreateResult"),
  },
  "policy.check": {
    summary: "Dry run: the decision the active policy would make",
    kinds: "mcp, agent",
    fields: ACTION_FIELDS,
    required: ["action", "targets"],
    result: obj({
      decision: s(),
      status: s(),
      reasons: arr(ref("Reason")),
      approvals_needed: int(),
      policy_hash: s(),
      action_hash: s(),
      break_glass: s(),
    }),
  },
  "request.status": {
    summary: "One of the identity's requests",
    kinds: "mcp, agent",
    fields: { request_id: s() },
    required: ["request_id"],
    result: ref("Request"),
  },
  "request.list": {
    summary: "The identity's requests, newest first",
    kinds: "mcp, agent",
    fields: { status: s(), limit: int(), cursor: s() },
    result: obj({ items: arr(ref("Request")), next_cursor: s() }),
  },
  "fleet.status": {
    summary: "Hosts, stale and policy-drift flags",
    kinds: "mcp, agent",
    fields: {},
    result: ref("Fleet"),
  },
  "findings.list": {
    summary: "Findings with filters and pagination",
    kinds: "mcp, agent",
    fields: {
      host: s(),
      category: s(),
      severity: arr(s()),
      status: s(),
      limit: int(),
      cursor: s(),
    },
    result: obj({ items: arr(ref("Finding")), next_cursor: s() }),
  },
  "traces.query": {
    summary: "Spans with filters and pagination",
    kinds: "mcp, agent",
    fields: {
      host: s(),
      service: s(),
      min_status: int(),
      since_ms: int(),
      until_ms: int(),
      name: s(),
      limit: int(),
      cursor: s(),
    },
    result: obj({ items: arr(ref("Span")), next_cursor: s() }),
  },
  "trace.get": {
    summary: "Every span of one trace",
    kinds: "mcp, agent",
    fields: { trace_id: s() },
    required: ["trace_id"],
    result: obj({ trace_id: s(), spans: arr(ref("Span")) }),
  },
  "approvals.fetch": {
    summary: "Claim this host's signed approvals (each usable once)",
    kinds: "agent",
    fields: {},
    result: obj({ approvals: arr(ref("Envelope")) }),
  },
  "execution.report": {
    summary: "Report the result of executing an approval",
    kinds: "agent",
    fields: {
      approval_id: s(),
      status: s("succeeded | failed"),
      output: s(),
      ledger_anchor: s(),
      started_ms: int(),
      finished_ms: int(),
    },
    required: ["approval_id", "status"],
    result: obj({ recorded: { type: "boolean" }, request_id: s(), request_status: s() }),
  },
  "identity.rotate": {
    summary: "Replace the identity's key (signed by the old key, with the new key's proof)",
    kinds: "agent, mcp",
    fields: { new_public: s("base64url"), proof: s("base64url signature by the new key") },
    required: ["new_public", "proof"],
    result: obj({ name: s(), old_kid: s(), kid: s() }),
  },
  "request.approve": {
    summary: "Always refused with HUMAN_ONLY: machine identities can never approve",
    kinds: "none",
    fields: { request_id: s() },
    result: {},
  },
  "request.reject": {
    summary: "Always refused with HUMAN_ONLY: machine identities can never reject",
    kinds: "none",
    fields: { request_id: s() },
    result: {},
  },
};

interface HumanDoc {
  method: "get" | "post" | "put" | "delete";
  path: string;
  summary: string;
  auth: "bearer" | "none" | "signed";
  body?: Schema;
  response?: Schema;
  query?: string[];
  status?: number;
}

const T = "/v1/t/{tenant}";

/** Every non-signed endpoint. */
export const HTTP_DOCS: readonly HumanDoc[] = [
  {
    method: "get",
    path: "/healthz",
    summary: "Liveness",
    auth: "none",
    response: obj({ ok: { type: "boolean" }, backend: s() }),
  },
  { method: "get", path: "/openapi.json", summary: "This document", auth: "none" },
  {
    method: "get",
    path: "/v1/control-key",
    summary: "The control plane's public key (pin it out of band)",
    auth: "none",
    response: obj({ kid: s(), public_key: s(), note_name: s() }),
  },
  {
    method: "post",
    path: "/v1/signup",
    summary: "Redeem a one-time sign-up token; returns a personal API token",
    auth: "none",
    body: obj({ tenant: s(), token: s(), display_name: s() }, ["tenant", "token"]),
    response: obj({ user_id: s(), email: s(), token: s() }),
  },
  {
    method: "post",
    path: `${T}/enroll`,
    summary: "Enroll a key with a one-time enrollment token (envelope signed by the new key)",
    auth: "signed",
    body: ref("Envelope"),
    response: ref("Envelope"),
  },
  { method: "get", path: `${T}/me`, summary: "The caller and their roles", auth: "bearer" },
  {
    method: "post",
    path: `${T}/tokens`,
    summary: "Create a personal API token",
    auth: "bearer",
    body: obj({ label: s(), ttl_seconds: int() }),
    status: 201,
  },
  { method: "delete", path: `${T}/tokens/{id}`, summary: "Revoke a token", auth: "bearer" },
  {
    method: "get",
    path: `${T}/requests`,
    summary: "Requests, newest first",
    auth: "bearer",
    query: ["status", "limit", "cursor"],
    response: obj({ items: arr(ref("Request")), next_cursor: s() }),
  },
  {
    method: "get",
    path: `${T}/requests/{id}`,
    summary: "One request with votes and approval state",
    auth: "bearer",
    response: ref("Request"),
  },
  {
    method: "post",
    path: `${T}/requests/{id}/approve`,
    summary: "Approve (humans only; proof = passkey assertion, or token where the tenant allows)",
    auth: "bearer",
    body: obj({ proof: any("presence proof"), comment: s() }),
    response: ref("VoteResult"),
  },
  {
    method: "post",
    path: `${T}/requests/{id}/reject`,
    summary: "Reject (humans only)",
    auth: "bearer",
    body: obj({ proof: any("presence proof"), comment: s() }),
    response: ref("VoteResult"),
  },
  {
    method: "get",
    path: `${T}/requests/{id}/approvers`,
    summary: "Who can approve this request, with a path each",
    auth: "bearer",
  },
  {
    method: "get",
    path: `${T}/requests/{id}/why/{user}`,
    summary: "Why a user can (or cannot) approve: the path through the authority graph",
    auth: "bearer",
  },
  { method: "get", path: `${T}/policies`, summary: "Policy versions", auth: "bearer" },
  {
    method: "get",
    path: `${T}/policies/{hash}`,
    summary: "One policy version (or `active`)",
    auth: "bearer",
  },
  {
    method: "post",
    path: `${T}/policies`,
    summary: "Propose a policy version (opens its approval-gated activation request)",
    auth: "bearer",
    body: obj({ text: s() }, ["text"]),
    status: 201,
  },
  {
    method: "post",
    path: `${T}/policies/check`,
    summary: "Dry run of an action for an agent name",
    auth: "bearer",
    body: obj({ agent: s(), ...ACTION_FIELDS }, ["agent", "action", "targets"]),
  },
  { method: "get", path: `${T}/settings`, summary: "Tenant settings", auth: "bearer" },
  {
    method: "put",
    path: `${T}/settings`,
    summary: "Change tenant settings (admin)",
    auth: "bearer",
  },
  {
    method: "post",
    path: `${T}/users`,
    summary: "Add a user; returns a one-time sign-up link (admin)",
    auth: "bearer",
    body: obj({ email: s(), roles: arr(s()) }, ["email"]),
    status: 201,
  },
  { method: "get", path: `${T}/identities`, summary: "Enrolled keys (admin)", auth: "bearer" },
  {
    method: "post",
    path: `${T}/identities/{name}/revoke`,
    summary: "Revoke an identity's key (admin)",
    auth: "bearer",
  },
  {
    method: "post",
    path: `${T}/enrollment-tokens`,
    summary: "Create a one-time enrollment token (admin)",
    auth: "bearer",
    body: obj({
      name: s(),
      kind: s(),
      operator: s(),
      environment: s(),
      service: s(),
      ttl_seconds: int(),
    }, ["name", "kind"]),
    status: 201,
  },
  { method: "get", path: `${T}/authority`, summary: "The authority graph", auth: "bearer" },
  {
    method: "post",
    path: `${T}/authority/groups`,
    summary: "Create a group (admin)",
    auth: "bearer",
    body: obj({ name: s() }, ["name"]),
  },
  {
    method: "post",
    path: `${T}/authority/roles`,
    summary: "Create a role (admin)",
    auth: "bearer",
    body: obj({ name: s() }, ["name"]),
  },
  {
    method: "post",
    path: `${T}/authority/members`,
    summary: "Add a user or group to a group (admin)",
    auth: "bearer",
    body: obj({ group: s(), member_kind: s(), member: s() }, ["group", "member_kind", "member"]),
  },
  {
    method: "delete",
    path: `${T}/authority/members`,
    summary: "Remove a membership (admin)",
    auth: "bearer",
    body: obj({ group: s(), member_kind: s(), member: s() }, ["group", "member_kind", "member"]),
  },
  {
    method: "post",
    path: `${T}/authority/assignments`,
    summary: "Assign a role to a user or group (admin)",
    auth: "bearer",
    body: obj({ subject_kind: s(), subject: s(), role: s() }, ["subject_kind", "subject", "role"]),
  },
  {
    method: "delete",
    path: `${T}/authority/assignments`,
    summary: "Remove a role assignment (admin)",
    auth: "bearer",
    body: obj({ subject_kind: s(), subject: s(), role: s() }, ["subject_kind", "subject", "role"]),
  },
  {
    method: "post",
    path: `${T}/authority/grants`,
    summary: "Let a role approve actions on an environment and service (admin)",
    auth: "bearer",
    body: obj({ role: s(), action: s(), environment: s(), service: s() }, [
      "role",
      "action",
      "environment",
      "service",
    ]),
  },
  {
    method: "delete",
    path: `${T}/authority/grants/{id}`,
    summary: "Remove a grant (admin)",
    auth: "bearer",
  },
  {
    method: "post",
    path: `${T}/authority/delegations`,
    summary: "Delegate your approval authority until an expiry",
    auth: "bearer",
    body: obj({ to: s(), role: s(), ttl_seconds: int() }, ["to", "ttl_seconds"]),
  },
  {
    method: "delete",
    path: `${T}/authority/delegations/{id}`,
    summary: "Revoke a delegation",
    auth: "bearer",
  },
  {
    method: "post",
    path: `${T}/breakglass`,
    summary: "Open a break-glass session (holders only)",
    auth: "bearer",
    body: obj({
      justification: s(),
      scope: obj({ actions: arr(s()), services: arr(s()), environments: arr(s()) }),
      duration_seconds: int(),
    }, ["justification", "scope"]),
    status: 201,
  },
  {
    method: "get",
    path: `${T}/breakglass`,
    summary: "Break-glass sessions (`?review=pending` for those awaiting review)",
    auth: "bearer",
    query: ["review"],
  },
  {
    method: "post",
    path: `${T}/breakglass/{id}/close`,
    summary: "End a session by hand",
    auth: "bearer",
    body: obj({ reason: s() }),
  },
  {
    method: "post",
    path: `${T}/breakglass/{id}/review`,
    summary: "Record the post-review (not by the holder)",
    auth: "bearer",
    body: obj({ review: s() }, ["review"]),
  },
  {
    method: "get",
    path: `${T}/fleet`,
    summary: "Fleet status",
    auth: "bearer",
    response: ref("Fleet"),
  },
  {
    method: "get",
    path: `${T}/findings`,
    summary: "Findings",
    auth: "bearer",
    query: ["host", "category", "severity", "status", "limit", "cursor"],
  },
  {
    method: "get",
    path: `${T}/traces`,
    summary: "Spans",
    auth: "bearer",
    query: ["host", "service", "min_status", "since_ms", "until_ms", "name", "limit", "cursor"],
  },
  { method: "get", path: `${T}/traces/{id}`, summary: "One trace", auth: "bearer" },
  {
    method: "get",
    path: `${T}/evidence/head`,
    summary: "Evidence log head (size, SIZE:ROOT anchor)",
    auth: "bearer",
  },
  {
    method: "get",
    path: `${T}/evidence`,
    summary: "Evidence log export as ledger JSONL (admin or auditor)",
    auth: "bearer",
    query: ["from"],
  },
];

const SCHEMAS: Record<string, Schema> = {
  Error: obj({
    error: obj({
      code: { type: "string", enum: Object.keys(ERROR_STATUS) },
      message: s(),
      details: { type: "object" },
    }, ["code", "message"]),
  }, ["error"]),
  Envelope: {
    type: "object",
    description:
      'Signed message {payload, kid, sig}: sig = Ed25519 over "infraveil-msg/v1\\n" + JCS(payload)',
    properties: {
      payload: { type: "object", required: ["type", "tenant", "aud", "iat", "exp", "nonce"] },
      kid: s(),
      sig: s("base64url"),
    },
    required: ["payload", "kid", "sig"],
  },
  Reason: {
    type: "object",
    properties: { rule: s(), effect: s(), message: s(), file: s(), line: int(), col: int() },
  },
  CreateResult: obj({
    request_id: s(),
    status: { type: "string", enum: ["denied", "pending", "allowed"] },
    reasons: arr(ref("Reason")),
    approvals_needed: int(),
    dashboard_url: s(),
    folded: { type: "boolean" },
    action_hash: s(),
    policy_hash: s(),
    break_glass: s(),
  }),
  Request: { type: "object", description: "A request with its votes and approval state" },
  VoteResult: obj({ request_id: s(), status: s(), approvals_needed: int(), approval_id: s() }),
  Fleet: {
    type: "object",
    properties: {
      active_policy_hash: s(),
      hosts: arr({ type: "object" }),
      counts: { type: "object" },
    },
  },
  SpanInput: obj({
    trace_id: s(),
    span_id: s(),
    parent_span_id: s(),
    name: s(),
    service: s(),
    start_ms: int(),
    duration_ms: int(),
    status: int(),
    attributes: { type: "object" },
  }, ["trace_id", "span_id", "name", "start_ms"]),
  Span: { type: "object" },
  FindingInput: obj({
    fingerprint: s(),
    category: s(),
    severity: { type: "string", enum: ["low", "medium", "high", "critical"] },
    title: s(),
    service: s(),
    status: s(),
    trace_id: s(),
    detail: any("JSON"),
    observed_ms: int(),
  }, ["fingerprint", "category", "severity", "title"]),
  Finding: { type: "object" },
};

function params(path: string, query: string[] = []): Schema[] {
  const out: Schema[] = [];
  for (const m of path.matchAll(/\{([a-z_]+)\}/g)) {
    out.push({ name: m[1], in: "path", required: true, schema: { type: "string" } });
  }
  for (const q of query) {
    out.push({ name: q, in: "query", required: false, schema: { type: "string" } });
  }
  return out;
}

const ERR = { description: "Error", content: { "application/json": { schema: ref("Error") } } };

/**
 * Builds the OpenAPI 3.1 document.
 *
 * @returns the document
 */
export function buildOpenApi(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const d of HTTP_DOCS) {
    const op: Record<string, unknown> = {
      summary: d.summary,
      parameters: params(d.path, d.query),
      security: d.auth === "bearer" ? [{ bearer: [] }] : [],
      responses: {
        [String(d.status ?? 200)]: {
          description: "OK",
          content: { "application/json": { schema: d.response ?? { type: "object" } } },
        },
        default: ERR,
      },
    };
    if (d.body) {
      op.requestBody = { required: true, content: { "application/json": { schema: d.body } } };
    }
    (paths[d.path] ??= {})[d.method] = op;
  }
  for (const [type, d] of Object.entries(SIGNED_DOCS)) {
    paths[`${T}/signed/${type}`] = {
      post: {
        summary: `${d.summary} (signed; callers: ${d.kinds})`,
        description:
          `Body: an Envelope whose payload has type "${type}", tenant, aud "infraveil-control", iat, exp, nonce, optional iss (the identity name) and these fields. ` +
          "The reply is an Envelope signed by the control plane: type `" + type +
          ".result` with `result`, or `error` with `error`; aud `<tenant>/<identity>`; `in_reply_to` = the request nonce.",
        parameters: params(T),
        "x-infraveil-fields": obj(d.fields, d.required ?? []),
        "x-infraveil-result": d.result,
        requestBody: {
          required: true,
          content: { "application/json": { schema: ref("Envelope") } },
        },
        responses: {
          "200": {
            description: "Signed result",
            content: { "application/json": { schema: ref("Envelope") } },
          },
          default: {
            description: "Signed error",
            content: { "application/json": { schema: ref("Envelope") } },
          },
        },
      },
    };
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "infraveil control plane",
      version: "0.1.0",
      description:
        "Multi-tenant approval queue, authority graph, evidence store and break-glass. Machine identities send signed envelopes; humans use bearer tokens.",
    },
    paths,
    components: {
      schemas: SCHEMAS,
      securitySchemes: {
        bearer: {
          type: "http",
          scheme: "bearer",
          description: "ivt_… personal API or session token",
        },
      },
    },
  };
}
