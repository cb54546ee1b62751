/**
 * The action runner: runs an approved action only after every check below passed, in this
 * order, and records every step in the ledger before it happens.
 *
 * 1. the envelope's shape, then the control plane's signature with the pinned key
 *    (`forged` otherwise);
 * 2. audience `infraveil-agent`, tenant, time window (`expired`, …);
 * 3. the approval id was never used on this host (`replayed`), kept across restarts;
 * 4. the payload is an approval whose nonce is its id; the action hashes (RFC 8785, SHA-256)
 *    to `action_hash` and its targets are the approval's (`binding_mismatch`);
 * 5. this host is a target (`not_a_target`);
 * 5b. the action's environment is this host's configured `environment` (`wrong_environment`),
 *    and, when the action names a service, it is this host's configured `service`
 *    (`wrong_service`): both labels are chosen by the requester, so the host checks them
 *    against its own config rather than trusting them;
 * 6. the approval's policy hash is the hash of this host's own copy of the active policy
 *    (`policy_hash_mismatch`), and that policy, evaluated here, does not deny the action and
 *    is satisfied by the approval's basis (`policy_denied`, `insufficient_approvals`); when
 *    the action names no environment, the policy block the evaluation chose must be this
 *    host's environment (`wrong_environment`);
 * 7. the action is configured on this host (`not_configured`) and every placeholder gets a
 *    valid value (`bad_params`); the built-in `{host}`, `{service}` and `{environment}` come
 *    from this host's config only, never from the approved action.
 *
 * Then the id is marked used (durably), the command runs in the exec worker (no shell, fixed
 * program, arguments substituted only into declared placeholders), and the result — exit code
 * and bounded output — is recorded and reported. A refusal after a verified signature is
 * reported as well; every refusal is recorded.
 *
 * What it must never do: run an action it could not verify, run anything not configured, pass
 * an argument through a shell, or run one approval twice.
 *
 * @module
 */
import type { JsonValue } from "@infraveil/ledger";
import { type CompiledPolicy, evaluate, type PolicyAction } from "@infraveil/policy";
import {
  canonicalJson,
  type MessagePayload,
  sha256Hex,
  TrustError,
  verifyEnvelope,
} from "@infraveil/trust";
import {
  actionHash,
  APPROVAL_AUDIENCE,
  type ApprovalPayload,
  type ExactAction,
} from "@infraveil/control/client";
import type { ActionSpec, AgentConfig } from "./agent_config.ts";
import type { ExecRequest, ExecResult } from "./exec_worker.ts";
import type { Deployments, UsedApprovals } from "./state.ts";

// The approval format and its binding hash are the control plane's: one definition, so the
// hash the host checks can never drift from the hash the control plane signed.
export { actionHash, APPROVAL_AUDIENCE } from "@infraveil/control/client";
export type { ApprovalPayload, ExactAction } from "@infraveil/control/client";

/** Why an approval was refused. */
export type RefusalCode =
  | "malformed"
  | "forged"
  | "wrong_audience"
  | "wrong_tenant"
  | "expired"
  | "not_yet_valid"
  | "bad_lifetime"
  | "replayed"
  | "binding_mismatch"
  | "not_a_target"
  | "wrong_environment"
  | "wrong_service"
  | "no_policy"
  | "policy_hash_mismatch"
  | "policy_denied"
  | "insufficient_approvals"
  | "not_configured"
  | "bad_params";

/** The result the agent reports for an approval. */
export interface ActionReport {
  /** The approval. */
  approval_id: string;
  /** Its request. */
  request_id: string;
  /** The action's hash, as approved. */
  action_hash: string;
  /** This host. */
  host: string;
  /** `succeeded` (exit 0), `failed`, or `refused` (not run). */
  status: "succeeded" | "failed" | "refused";
  /** Why it was refused. */
  refusal?: { code: RefusalCode; message: string };
  /** The command's exit code (null: killed or could not start). */
  exit_code?: number | null;
  /** The signal that ended it. */
  signal?: string | null;
  /** Whether the timeout ended it. */
  timed_out?: boolean;
  /** Bounded stdout. */
  stdout?: string;
  /** Bounded stderr. */
  stderr?: string;
  /** Whether stdout or stderr was cut. */
  output_truncated?: boolean;
  /** Wall time, ms. */
  duration_ms?: number;
  /** Ledger seq of the result entry. */
  ledger_seq?: number;
  /** The ledger head after the result entry (`SIZE:ROOTHEX`), added when queued. */
  ledger_anchor?: string;
  /** When the command started (RFC 3339). */
  started_at?: string;
  /** When the agent finished with it (RFC 3339). */
  finished_at: string;
}

/** What {@link handleApproval} decided. */
export type ApprovalOutcome =
  | { status: "executed"; approvalId: string; report: ActionReport }
  | { status: "refused"; approvalId: string | null; code: RefusalCode; message: string };

/** The active policy as this host holds it. */
export interface ActivePolicy {
  /** `sha256:<hex>`. */
  hash: string;
  /** Compiled, ready to evaluate. */
  compiled: CompiledPolicy;
}

/** What the runner works with. */
export interface ActionRunnerDeps {
  /** The agent config (host, tenant, actions). */
  config: AgentConfig;
  /** The pinned control-plane key. */
  controlKey: { kid: string; publicKey: Uint8Array };
  /** This host's copy of the active policy, or null when it has none. */
  policy: () => ActivePolicy | null;
  /** Fetches the active policy again (called once on a hash mismatch). */
  refreshPolicy?: () => Promise<void>;
  /** Used approval ids. */
  used: UsedApprovals;
  /** Deployed versions. */
  deployments: Deployments;
  /** Appends a ledger entry, resolving once it is on disk. */
  record: (type: string, data: JsonValue) => Promise<{ seq: number }>;
  /** Runs a command in the exec worker. */
  exec: (request: ExecRequest) => Promise<ExecResult>;
  /** Queues a report for the control plane (signed when sent). */
  report: (report: ActionReport) => Promise<void>;
  /** Clock, ms. */
  now?: () => number;
}

class Refusal extends Error {
  constructor(readonly code: RefusalCode, message: string) {
    super(message);
  }
}

const TRUST_REFUSALS: Record<string, RefusalCode> = {
  MALFORMED: "malformed",
  UNKNOWN_KEY: "forged",
  BAD_SIGNATURE: "forged",
  WRONG_AUDIENCE: "wrong_audience",
  WRONG_TENANT: "wrong_tenant",
  BAD_LIFETIME: "bad_lifetime",
  NOT_YET_VALID: "not_yet_valid",
  EXPIRED: "expired",
  REPLAYED: "replayed",
};

// deno-lint-ignore no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

/**
 * Builds the argument vector of a configured action: each `{name}` is replaced by the
 * approved action's `params[name]` (which must be a string matching the declared pattern, at
 * most 1024 characters, without control characters) or a built-in value. Nothing else of the
 * action reaches the command, and there is no shell.
 *
 * @param spec the configured action
 * @param params the approved action's parameters
 * @param builtins built-in values (host, versions, …); null when unknown
 * @returns the arguments
 * @throws {Error} naming the placeholder and what is wrong with its value
 */
export function substituteArgs(
  spec: ActionSpec,
  params: Record<string, unknown>,
  builtins: Record<string, string | null>,
): string[] {
  const values: Record<string, string> = {};
  for (const [name, p] of Object.entries(spec.params)) {
    const v = params[name];
    if (v === undefined) {
      if (p.required) throw new Error(`parameter "${name}" is required`);
      continue;
    }
    if (typeof v !== "string") throw new Error(`parameter "${name}" must be a string`);
    if (v.length > 1024 || CONTROL_CHARS.test(v)) {
      throw new Error(`parameter "${name}" is too long or holds control characters`);
    }
    if (!new RegExp(`^(?:${p.pattern})$`, "u").test(v)) {
      throw new Error(`parameter "${name}" ${JSON.stringify(v)} does not match /${p.pattern}/`);
    }
    values[name] = v;
  }
  for (const name of Object.keys(params)) {
    if (!(name in spec.params)) throw new Error(`parameter "${name}" is not declared`);
  }
  return spec.args.map((arg) =>
    arg.replace(/\{([^{}]*)\}/g, (_, name: string) => {
      const v = name in spec.params ? values[name] : builtins[name];
      if (v === undefined || v === null) throw new Error(`no value for {${name}}`);
      return v;
    })
  );
}

function toPolicyAction(a: ExactAction): PolicyAction {
  const out: PolicyAction = { agent: a.agent, action: a.action };
  for (const k of ["environment", "service", "targets", "files", "category", "reason"] as const) {
    if (a[k] !== undefined) (out as unknown as Record<string, unknown>)[k] = a[k];
  }
  return out;
}

/**
 * Verifies one signed approval and, when every check passes, runs its action.
 *
 * @param envelope the signed approval as received
 * @param deps keys, policy, stores, ledger, exec worker, report queue
 * @returns what happened; it throws only when the ledger or state cannot be written
 */
export async function handleApproval(
  envelope: unknown,
  deps: ActionRunnerDeps,
): Promise<ApprovalOutcome> {
  const { config, controlKey, used, record, now = Date.now } = deps;
  const envelopeHash = "sha256:" + sha256Hex(canonicalJsonSafe(envelope));
  let claimedId: string | null = null;
  const p = (envelope as { payload?: Record<string, unknown> })?.payload;
  if (typeof p?.approval_id === "string") claimedId = p.approval_id.slice(0, 200);
  await record("agent.approval.received", {
    approval_id: claimedId,
    kid: String((envelope as { kid?: unknown })?.kid ?? "").slice(0, 64),
    envelope_sha256: envelopeHash,
  });

  let payload: ApprovalPayload | null = null;
  try {
    // 1–3: shape, signature, audience, tenant, time window, single use.
    let verified: MessagePayload;
    try {
      verified = await verifyEnvelope(envelope, {
        keys: (kid) => (kid === controlKey.kid ? controlKey.publicKey : undefined),
        audience: APPROVAL_AUDIENCE,
        tenant: config.tenant,
        now,
        skewSeconds: config.control.clockSkewSeconds,
        maxLifetimeSeconds: config.control.maxApprovalLifetimeSeconds,
        checkNonce: (nonce) => !used.has(nonce),
      });
    } catch (e) {
      if (e instanceof TrustError) {
        throw new Refusal(TRUST_REFUSALS[e.code] ?? "malformed", e.message);
      }
      throw e;
    }
    // 4: the binding.
    const a = verified as ApprovalPayload;
    if (
      a.type !== "approval" || typeof a.approval_id !== "string" ||
      typeof a.request_id !== "string" || typeof a.action !== "object" || a.action === null ||
      !Array.isArray(a.targets) || typeof a.action_hash !== "string" ||
      !Array.isArray(a.approved_by)
    ) {
      throw new Refusal("malformed", "the signed message is not an approval");
    }
    if (a.nonce !== a.approval_id) {
      throw new Refusal("binding_mismatch", "the approval's nonce is not its approval_id");
    }
    payload = a;
    if (actionHash(a.action) !== a.action_hash) {
      throw new Refusal(
        "binding_mismatch",
        `the action hashes to ${actionHash(a.action)}, not to the approved ${a.action_hash}`,
      );
    }
    if (canonicalJson(a.action.targets ?? null) !== canonicalJson(a.targets)) {
      throw new Refusal("binding_mismatch", "the approval's targets differ from its action's");
    }
    // 5: this host is a target.
    if (!a.targets.includes(config.host)) {
      throw new Refusal(
        "not_a_target",
        `the approval is for ${a.targets.join(", ") || "no host"}, not for ${config.host}`,
      );
    }
    // 5b: the requester's labels are this host's.
    if (a.action.environment !== undefined && a.action.environment !== config.environment) {
      throw new Refusal(
        "wrong_environment",
        `the approval is for environment "${a.action.environment}", but ${config.host} runs in "${config.environment}"`,
      );
    }
    if (a.action.service !== undefined && a.action.service !== config.service) {
      throw new Refusal(
        "wrong_service",
        `the approval is for service "${a.action.service}", but ${config.host} runs ${
          config.service === undefined ? "no configured service" : `"${config.service}"`
        }`,
      );
    }
    // 6: the same policy, evaluated here.
    let policy = deps.policy();
    if (policy?.hash !== a.policy_hash && deps.refreshPolicy) {
      await deps.refreshPolicy().catch(() => {});
      policy = deps.policy();
    }
    if (policy === null) {
      throw new Refusal("no_policy", "this host holds no active policy to re-evaluate against");
    }
    if (policy.hash !== a.policy_hash) {
      throw new Refusal(
        "policy_hash_mismatch",
        `approved under policy ${a.policy_hash}, but this host enforces ${policy.hash}`,
      );
    }
    const decision = evaluate(policy.compiled, toPolicyAction(a.action), {
      now: now(),
      breakGlass: a.basis === "break-glass",
    });
    if (decision.decision === "deny") {
      throw new Refusal(
        "policy_denied",
        `the policy denies it here: ${decision.reasons.map((r) => r.message).join("; ")}`,
      );
    }
    if (decision.environment !== config.environment) {
      throw new Refusal(
        "wrong_environment",
        `the policy evaluated it as environment "${decision.environment}", but ${config.host} runs in "${config.environment}"`,
      );
    }
    if (decision.decision === "approval_required" && a.basis !== "break-glass") {
      const approvers = new Set(a.approved_by).size;
      if (a.basis !== "approvals" || approvers < decision.approvals) {
        throw new Refusal(
          "insufficient_approvals",
          `the policy needs ${decision.approvals} approval(s); the approval carries ${approvers} (basis ${a.basis})`,
        );
      }
    }
    // 7: configured here, with valid arguments.
    const spec = config.actions[a.action.action];
    if (!spec) {
      throw new Refusal(
        "not_configured",
        `action "${a.action.action}" is not configured on ${config.host} (configured: ${
          Object.keys(config.actions).join(", ") || "none"
        })`,
      );
    }
    let args: string[];
    try {
      args = substituteArgs(spec, a.action.params ?? {}, {
        // This host's own values only: the action's labels are requester text.
        host: config.host,
        service: config.service ?? null,
        environment: config.environment,
        current_version: deps.deployments.current(),
        previous_version: deps.deployments.previous(),
        approval_id: a.approval_id,
      });
    } catch (e) {
      throw new Refusal("bad_params", (e as Error).message);
    }
    return await execute(a, spec, args, deps);
  } catch (e) {
    if (!(e instanceof Refusal)) throw e;
    const approvalId = payload?.approval_id ?? claimedId;
    // Signed by the control plane: it will not be accepted later either. (A replay was
    // reported when it was first handled.) Marked used before the ledger records the refusal,
    // so the ledger never shows a used id that used_approvals.json lacks.
    const marks = payload !== null && e.code !== "replayed";
    if (marks) await used.add(payload!.approval_id, payload!.exp);
    await record("agent.approval.refused", {
      approval_id: approvalId,
      // The expiry of a used id: a lost used_approvals.json is checked against the ledger.
      approval_exp: payload?.exp ?? null,
      code: e.code,
      message: e.message,
      signature_verified: payload !== null,
    });
    if (marks) {
      await deps.report({
        approval_id: payload!.approval_id,
        request_id: payload!.request_id,
        action_hash: payload!.action_hash,
        host: config.host,
        status: "refused",
        refusal: { code: e.code, message: e.message },
        finished_at: new Date(now()).toISOString(),
      });
    }
    return { status: "refused", approvalId, code: e.code, message: e.message };
  }
}

function canonicalJsonSafe(value: unknown): string {
  try {
    return canonicalJson(value);
  } catch {
    return JSON.stringify(String(value));
  }
}

async function execute(
  a: ApprovalPayload,
  spec: ActionSpec,
  args: string[],
  deps: ActionRunnerDeps,
): Promise<ApprovalOutcome> {
  const { config, record, now = Date.now } = deps;
  // Used before it runs: a crash during the command must not let it run again.
  await deps.used.add(a.approval_id, a.exp);
  await record("agent.action.execute", {
    approval_id: a.approval_id,
    approval_exp: a.exp,
    request_id: a.request_id,
    action: a.action.action,
    action_hash: a.action_hash,
    policy_hash: a.policy_hash,
    basis: a.basis,
    approved_by: a.approved_by,
    command: spec.command,
    args,
  });
  const started = now();
  const result = await deps.exec({
    command: spec.command,
    args,
    cwd: spec.cwd ?? config.stateDir,
    env: spec.env,
    timeoutMs: spec.timeoutMs,
    maxOutputBytes: spec.maxOutputBytes,
  });
  const succeeded = result.exitCode === 0;
  if (succeeded && a.action.action === "deploy" && typeof a.action.params?.version === "string") {
    await deps.deployments.deployed(a.action.params.version);
  } else if (succeeded && a.action.action === "rollback") {
    await deps.deployments.rolledBack();
  }
  const truncated = result.stdoutBytes > spec.maxOutputBytes ||
    result.stderrBytes > spec.maxOutputBytes;
  const { seq } = await record("agent.action.result", {
    approval_id: a.approval_id,
    status: succeeded ? "succeeded" : "failed",
    exit_code: result.exitCode,
    signal: result.signal,
    timed_out: result.timedOut,
    duration_ms: result.durationMs,
    stdout_sha256: sha256Hex(result.stdout),
    stderr_sha256: sha256Hex(result.stderr),
    output_truncated: truncated,
    error: result.error ?? null,
  });
  const report: ActionReport = {
    approval_id: a.approval_id,
    request_id: a.request_id,
    action_hash: a.action_hash,
    host: config.host,
    status: succeeded ? "succeeded" : "failed",
    exit_code: result.exitCode,
    signal: result.signal,
    timed_out: result.timedOut,
    stdout: result.stdout,
    stderr: result.error ? `${result.stderr}${result.error}` : result.stderr,
    output_truncated: truncated,
    duration_ms: result.durationMs,
    ledger_seq: seq,
    started_at: new Date(started).toISOString(),
    finished_at: new Date(now()).toISOString(),
  };
  await deps.report(report);
  return { status: "executed", approvalId: a.approval_id, report };
}
