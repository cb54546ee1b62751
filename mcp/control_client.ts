/**
 * The production {@link ControlApi}: `@infraveil/control/client` adapted to the tools. The
 * client signs every call with this MCP identity's key and verifies every reply — signature by
 * the pinned control-plane key, audience `<tenant>/<name>`, tenant, time window, a reply nonce
 * never seen before, and `in_reply_to` equal to the call's nonce — before returning anything.
 * This module maps its failures to {@link GovernedMcpError} codes the tools explain, and
 * otherwise passes the verified results through.
 *
 * It offers no approval, vote, break-glass or execution call: the client has them for host
 * agents, and this module never exposes them.
 *
 * The client takes no per-call abort signal, so a cancelled MCP call is not cut short here;
 * every call is bounded by `timeoutMs` instead.
 *
 * @module
 */
import { ControlClient, ControlClientError } from "@infraveil/control/client";
import type {
  ActionFields,
  ControlApi,
  Finding,
  FleetStatus,
  Page,
  PolicyCheck,
  RequestInfo,
  RequestReceipt,
  SpanInfo,
  TraceInfo,
} from "./control_api.ts";
import { GovernedMcpError, type GovernedMcpErrorCode } from "./error.ts";
import type { McpIdentity } from "./identity.ts";

/** How to reach the control plane. */
export interface ControlApiOptions {
  /** The control plane's base URL. */
  baseUrl: string;
  /** This MCP server's identity (its key signs; the pinned control key verifies). */
  identity: McpIdentity;
  /** `fetch` to use (default: the global one). */
  fetch?: typeof fetch;
  /** Clock, ms (default `Date.now`). */
  now?: () => number;
  /** Longest wait for one call, ms (default 20 000). */
  timeoutMs?: number;
}

/** Client-side codes: the reply arrived but did not verify, so none of it was used. */
const UNVERIFIED = new Set([
  "BAD_RESPONSE",
  "BAD_RESPONSE_SIGNATURE",
  "REPLAYED_RESPONSE",
  "STALE_RESPONSE",
  "WRONG_REPLY",
]);

/** Server codes meaning the control plane did not accept this identity or call. */
const REFUSED = new Set([
  "UNAUTHENTICATED",
  "UNKNOWN_KEY",
  "BAD_SIGNATURE",
  "WRONG_AUDIENCE",
  "WRONG_TENANT",
  "BAD_LIFETIME",
  "NOT_YET_VALID",
  "EXPIRED",
  "REPLAYED",
  "UNKNOWN_TENANT",
  "FORBIDDEN",
  "HUMAN_ONLY",
  "BAD_IDENTITY_FILE",
]);

/** Server codes meaning the arguments were refused. */
const BAD_INPUT = new Set(["BAD_REQUEST", "MALFORMED", "WRONG_TYPE", "PAYLOAD_TOO_LARGE"]);

const CLOCK_HINT = " (check this machine's clock: signed calls are valid for 60 s)";

/**
 * Maps a control-client failure to a {@link GovernedMcpError}.
 *
 * @param error what the client threw
 * @returns the error the tools report
 */
export function mapControlError(error: unknown): GovernedMcpError {
  if (error instanceof GovernedMcpError) return error;
  if (!(error instanceof ControlClientError)) {
    return new GovernedMcpError(
      "CONTROL_ERROR",
      error instanceof Error ? error.message : String(error),
      { cause: error },
    );
  }
  const code = String(error.code);
  let mapped: GovernedMcpErrorCode;
  let message = `${error.message} (${code})`;
  if (code === "NETWORK") mapped = "CONTROL_UNREACHABLE";
  else if (UNVERIFIED.has(code)) mapped = "UNVERIFIED_RESPONSE";
  else if (REFUSED.has(code)) {
    mapped = "CONTROL_REFUSED";
    if (code === "EXPIRED" || code === "NOT_YET_VALID") message += CLOCK_HINT;
  } else if (BAD_INPUT.has(code)) mapped = "BAD_ARGUMENTS";
  else if (code === "NOT_FOUND") mapped = "NOT_FOUND";
  else if (code === "RATE_LIMITED" || code === "QUOTA_EXCEEDED") mapped = "RATE_LIMITED";
  else mapped = "CONTROL_ERROR";
  if (mapped === "BAD_ARGUMENTS" && error.details !== undefined) {
    const field = (error.details as { field?: unknown }).field;
    if (typeof field === "string" && field !== "") message += ` [field: ${field}]`;
  }
  return new GovernedMcpError(mapped, message, { cause: error });
}

async function mapped<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    throw mapControlError(e);
  }
}

async function orUndefined<T>(call: () => Promise<T>): Promise<T | undefined> {
  try {
    return await call();
  } catch (e) {
    if (e instanceof ControlClientError && e.code === "NOT_FOUND") return undefined;
    throw mapControlError(e);
  }
}

/**
 * Creates the control-plane API used by the tools, over `@infraveil/control/client`.
 *
 * @param options the base URL, identity, fetch, clock and timeout
 * @returns the API
 */
export function createControlApi(options: ControlApiOptions): ControlApi {
  const { baseUrl, identity, now, timeoutMs = 20_000 } = options;
  const baseFetch = options.fetch ?? fetch;
  const client = new ControlClient({
    baseUrl,
    identity: {
      tenant: identity.tenant,
      name: identity.name,
      kind: "mcp",
      kid: identity.key.kid,
      privateKey: identity.key.privateKey,
    },
    controlPublicKey: identity.control.publicKey,
    // A bounded wait: a tool call never hangs on a stalled control plane.
    fetch: (input, init) => baseFetch(input, { ...init, signal: AbortSignal.timeout(timeoutMs) }),
    ...(now ? { now } : {}),
  });
  // The client's result types are the control plane's views; ours are the same shapes, open
  // to fields a newer control plane may add.
  return {
    fleetStatus: () =>
      mapped(() => client.fleetStatus() as Promise<unknown> as Promise<FleetStatus>),
    listFindings: (query) =>
      mapped(() => client.listFindings(query) as Promise<unknown> as Promise<Page<Finding>>),
    queryTraces: (query) =>
      mapped(() => client.queryTraces(query) as Promise<unknown> as Promise<Page<SpanInfo>>),
    getTrace: (traceId) =>
      orUndefined(() => client.getTrace(traceId) as Promise<unknown> as Promise<TraceInfo>),
    checkPolicy: (action: ActionFields) =>
      mapped(() => client.checkPolicy(action) as Promise<unknown> as Promise<PolicyCheck>),
    createRequest: (action: ActionFields) =>
      mapped(() => client.createRequest(action) as Promise<unknown> as Promise<RequestReceipt>),
    getRequest: (requestId) =>
      orUndefined(() => client.getRequest(requestId) as Promise<unknown> as Promise<RequestInfo>),
    listRequests: (query) =>
      mapped(() => client.listRequests(query) as Promise<unknown> as Promise<Page<RequestInfo>>),
  };
}
