/**
 * The production {@link ControlLink}: `@infraveil/control/client`'s {@link ControlClient},
 * which signs every call with the host key and accepts only responses signed by the pinned
 * control-plane key, addressed to this host, fresh and answering the call's nonce.
 *
 * Approvals are fetched as the raw signed envelopes (`approvals.fetch`) and verified by the
 * action runner, which checks everything the client's own check does and more, and records a
 * refusal per approval with its reason; one bad approval never hides the others.
 *
 * Failures become {@link AgentError}s: no answer, an untrusted answer, 401, 429 `RATE_LIMITED`
 * and 5xx are `CONTROL_UNAVAILABLE` (retried later); other refusals are `CONTROL_REJECTED`
 * (the same call would be refused again).
 *
 * @module
 */
import {
  ControlClient,
  ControlClientError,
  enrollWithToken,
  type FindingInput,
  type SpanInput,
} from "@infraveil/control/client";
import type { Ed25519KeyPair } from "@infraveil/trust";
import type { ActionReport } from "./action_runner.ts";
import type { AgentConfig } from "./agent_config.ts";
import type { ControlLink, Heartbeat, PolicyDocumentText } from "./control_link.ts";
import { AgentError } from "./error.ts";

/** Options of {@link createControlLink}. */
export interface ControlLinkOptions {
  /** The agent config (control URL, tenant, host, timeouts). */
  config: AgentConfig;
  /** This host's key. */
  hostKey: Ed25519KeyPair;
  /** The pinned control-plane public key. */
  controlKey: Uint8Array;
  /** `fetch` (default: the global one). */
  fetch?: typeof fetch;
  /** Clock, ms. */
  now?: () => number;
}

/** Client codes meaning "no trustworthy answer": retry later. */
const UNAVAILABLE = new Set([
  "NETWORK",
  "BAD_RESPONSE",
  "BAD_RESPONSE_SIGNATURE",
  "REPLAYED_RESPONSE",
  "STALE_RESPONSE",
  "WRONG_REPLY",
  "RATE_LIMITED",
  "STORE",
  "INTERNAL",
]);

function translate(what: string, e: unknown): AgentError {
  if (e instanceof AgentError) return e;
  if (e instanceof ControlClientError) {
    const retry = UNAVAILABLE.has(e.code) || e.status === 401 || (e.status ?? 0) >= 500;
    return new AgentError(
      retry ? "CONTROL_UNAVAILABLE" : "CONTROL_REJECTED",
      `Control plane ${retry ? "unavailable" : "refused"} (${what}): ${e.code}: ${e.message}`,
      { cause: e },
    );
  }
  return new AgentError(
    "CONTROL_UNAVAILABLE",
    `Control plane call ${what} failed: ${e instanceof Error ? e.message : e}`,
    { cause: e },
  );
}

/**
 * Formats an action report as the `output` text of `execution.report`.
 *
 * @param r the report
 * @returns the text (at most 64 KiB)
 */
export function reportOutput(r: ActionReport): string {
  const lines = r.status === "refused"
    ? [`refused by the agent (${r.refusal?.code}): ${r.refusal?.message}; not executed`]
    : [
      `exit code: ${r.exit_code ?? "none"}${r.signal ? ` (signal ${r.signal})` : ""}${
        r.timed_out ? " (timed out)" : ""
      }${r.output_truncated ? " (output truncated)" : ""}`,
      "--- stdout ---",
      r.stdout ?? "",
      "--- stderr ---",
      r.stderr ?? "",
    ];
  const text = lines.join("\n");
  return text.length > 65_536 ? text.slice(0, 65_535) + "…" : text;
}

/**
 * Creates the link.
 *
 * @param options config, keys, fetch, clock
 * @returns the link
 */
export function createControlLink(options: ControlLinkOptions): ControlLink {
  const { config, hostKey, controlKey, now } = options;
  const base = options.fetch ?? fetch;
  // The client sets no timeout of its own.
  const timed: typeof fetch = (input, init) =>
    base(input, { ...init, signal: AbortSignal.timeout(config.control.timeoutMs) });
  const client = new ControlClient({
    baseUrl: config.control.url,
    identity: {
      tenant: config.tenant,
      name: config.host,
      kind: "agent",
      kid: hostKey.kid,
      privateKey: hostKey.privateKey,
    },
    controlPublicKey: controlKey,
    fetch: timed,
    now,
  });
  const call = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (e) {
      throw translate(what, e);
    }
  };

  return {
    async enroll(input) {
      const result = await call("enroll", () =>
        enrollWithToken({
          baseUrl: config.control.url,
          tenant: config.tenant,
          name: input.host,
          kind: "agent",
          token: input.token,
          key: hostKey,
          controlPublicKey: controlKey,
          fetch: timed,
          now,
        }));
      if (result.kid !== hostKey.kid) {
        throw new AgentError(
          "CONTROL_REJECTED",
          `Enrollment answered for key ${result.kid}, not this host's ${hostKey.kid}`,
        );
      }
    },
    async heartbeat(h: Heartbeat) {
      const r = await call("heartbeat", () =>
        client.heartbeat({
          version: h.version,
          health: h.health,
          anchor: h.ledger_anchor,
          ...(h.policy_hash !== null ? { policy_hash: h.policy_hash } : {}),
        }));
      return { policy_hash: r.active_policy_hash };
    },
    async fetchPolicy(): Promise<PolicyDocumentText> {
      const r = await call("policy.active", () => client.getActivePolicy());
      if (typeof r.hash !== "string" || typeof r.text !== "string") {
        throw new AgentError("CONTROL_REJECTED", "The tenant has no active policy");
      }
      return { hash: r.hash, text: r.text };
    },
    async submitCheckpoint(note, proof) {
      const r = await call("anchor.submit", () => client.submitAnchor({ checkpoint: note, proof }));
      return { countersigned: r.countersigned };
    },
    async shipTraces(spans) {
      await call("traces.ingest", () => client.shipTraces(spans as SpanInput[]));
    },
    async shipFindings(findings) {
      await call("findings.ingest", () => client.shipFindings(findings as FindingInput[]));
    },
    async fetchApprovals() {
      const r = await call(
        "approvals.fetch",
        () => client.call<{ approvals?: unknown }>("approvals.fetch"),
      );
      return Array.isArray(r.approvals) ? r.approvals : [];
    },
    async reportResult(report: ActionReport) {
      await call("execution.report", () =>
        client.reportExecution({
          approval_id: report.approval_id,
          status: report.status === "succeeded" ? "succeeded" : "failed",
          output: reportOutput(report),
          finished_ms: Date.parse(report.finished_at),
          ...(report.ledger_anchor ? { ledger_anchor: report.ledger_anchor } : {}),
          ...(report.started_at ? { started_ms: Date.parse(report.started_at) } : {}),
        }));
    },
  };
}
