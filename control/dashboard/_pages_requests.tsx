/** @jsxImportSource hono/jsx */
/**
 * The approval queue and one request: action, plan, policy decision and reasons, blast
 * radius, approvals so far, provenance (which identity asked; what it cited, shown as
 * untrusted input) and the passkey vote forms.
 *
 * @module
 */
import type { Child } from "hono/jsx";
import { Badge, Csrf, Page, type PageCtx, ShortHash, Time, Untrusted } from "./_layout.tsx";
import type { Flash } from "./_layout.tsx";

/** A policy reason as the API returns it. */
export interface ReasonView {
  /** Rule id. */
  rule: string;
  /** Effect. */
  effect: string;
  /** Message. */
  message: string;
  /** Source file. */
  file?: string;
  /** Line. */
  line?: number;
  /** Column. */
  col?: number;
}

/** A request as `GET /requests/{id}` returns it. */
export interface RequestView {
  request_id: string;
  kind: "action" | "policy.activate";
  status: string;
  action: Record<string, unknown>;
  action_hash: string;
  requester: string;
  requester_kind: string;
  operator: string | null;
  environment: string | null;
  service: string | null;
  targets: string[];
  reasons: ReasonView[];
  approvals_required: number;
  approvals_needed: number;
  votes: { user: string; decision: string; method: string; comment: string | null; at: string }[];
  policy_hash: string | null;
  break_glass: string | null;
  created_at: string;
  updated_at: string;
  expires_at: string;
  approval: {
    approval_id: string;
    expires_at: string;
    targets: { host: string; used_at: string | null; result: string | null }[];
  } | null;
}

/** What the request pages need besides the requests. */
export interface RequestContext {
  /** user id → email. */
  emails: Map<string, string>;
  /** Fleet host name → status (`ok`, `stale`) and policy currency. */
  hosts: Map<string, { status: string; policy_current: boolean }>;
  /** Whether the viewer has a passkey (votes need one). */
  hasPasskey: boolean;
}

function approvesOf(r: RequestView): number {
  return r.votes.filter((v) => v.decision === "approve").length;
}

/** N of M approvals, as pips and words. */
export function ApprovalProgress(props: { r: RequestView }): Child {
  const n = approvesOf(props.r);
  const m = Math.max(props.r.approvals_required, 0);
  if (m === 0) return <span class="muted">no approval needed ({props.r.status})</span>;
  return (
    <span>
      <span class="progress" aria-hidden="true">
        {Array.from(
          { length: m },
          (_, i) => <span key={i} class={i < n ? "pip on" : "pip"}></span>,
        )}
      </span>{" "}
      <strong>
        {Math.min(n, m)} of {m}
      </strong>{" "}
      approvals
    </span>
  );
}

function str(v: unknown): string | null {
  return typeof v === "string" ? v : typeof v === "number" ? String(v) : null;
}

function strList(v: unknown): string[] {
  if (Array.isArray(v)) return v.map(str).filter((x): x is string => x !== null);
  const s = str(v);
  return s === null ? [] : [s];
}

/** The plan: files changed, targets, version. */
export function Plan(props: { r: RequestView; ctx: PageCtx }): Child {
  const a = props.r.action;
  const params = (a.params ?? {}) as Record<string, unknown>;
  const files = strList(a.files);
  if (props.r.kind === "policy.activate") {
    const hash = String(a.policy_hash ?? "");
    return (
      <dl class="kv">
        <dt>Activates policy</dt>
        <dd>
          <a href={`${props.ctx.base}/policies/${encodeURIComponent(hash)}`}>
            <ShortHash value={hash} />
          </a>
        </dd>
        <dt>Replaces</dt>
        <dd>
          <ShortHash value={props.r.policy_hash} />
        </dd>
      </dl>
    );
  }
  const extra = Object.entries(params).filter(([k]) =>
    !["version", "finding_id", "finding_ids", "trace_id", "trace_ids"].includes(k)
  );
  return (
    <dl class="kv">
      <dt>Version</dt>
      <dd>
        {str(params.version)
          ? <code>{str(params.version)}</code>
          : <span class="muted">not given</span>}
      </dd>
      <dt>Targets</dt>
      <dd>
        {props.r.targets.map((t, i) => (
          <>
            {i > 0 ? ", " : ""}
            <code>{t}</code>
          </>
        ))}
      </dd>
      <dt>Environment / service</dt>
      <dd>
        {props.r.environment ?? <span class="muted">none</span>} /{" "}
        {props.r.service ?? <span class="muted">none</span>}
      </dd>
      {a.category
        ? (
          <>
            <dt>Finding category</dt>
            <dd>
              <code>{String(a.category)}</code>
            </dd>
          </>
        )
        : null}
      <dt>Files changed ({files.length})</dt>
      <dd>
        {files.length === 0 ? <span class="muted">none listed</span> : (
          <ul class="files">
            {files.slice(0, 50).map((f) => (
              <li>
                <code>{f}</code>
              </li>
            ))}
            {files.length > 50 ? <li class="muted">…and {files.length - 50} more</li> : null}
          </ul>
        )}
      </dd>
      {extra.length > 0
        ? (
          <>
            <dt>Parameters</dt>
            <dd>
              <code>{JSON.stringify(Object.fromEntries(extra))}</code>
            </dd>
          </>
        )
        : null}
    </dl>
  );
}

/** The policy decision and its reasons. */
export function Decision(props: { r: RequestView }): Child {
  const r = props.r;
  return (
    <div>
      <p>
        Decided with policy <ShortHash value={r.policy_hash} />: {r.approvals_required > 0
          ? <Badge kind="pending">approval required</Badge>
          : <Badge kind={r.status}>{r.status}</Badge>}
        {r.break_glass
          ? (
            <>
              via break-glass <code>{r.break_glass}</code>
            </>
          )
          : null}
      </p>
      {r.reasons.length === 0
        ? <p class="muted">No policy rule reasons were recorded.</p>
        : (
          <ul class="reasons">
            {r.reasons.map((x) => (
              <li>
                <Badge
                  kind={x.effect === "deny" ? "deny" : x.effect === "allow" ? "allowed" : "pending"}
                >
                  {x.effect}
                </Badge>{" "}
                {x.message}{" "}
                <span class="rule">
                  [{x.rule}
                  {x.line ? ` at ${x.file ?? "policy"}:${x.line}:${x.col ?? 0}` : ""}]
                </span>
              </li>
            ))}
          </ul>
        )}
    </div>
  );
}

/** The blast radius: which hosts, how much of the fleet, and their state. */
export function BlastRadius(props: { r: RequestView; rc: RequestContext }): Child {
  const { r, rc } = props;
  if (r.kind === "policy.activate") {
    return <p>Every host: agents enforce the active policy fleet-wide once it is activated.</p>;
  }
  const total = rc.hosts.size;
  const known = r.targets.filter((t) => rc.hosts.has(t)).length;
  const pct = total > 0 ? Math.round((known / total) * 100) : 0;
  return (
    <div>
      <p>
        <strong>{r.targets.length}</strong> target host{r.targets.length === 1 ? "" : "s"}
        {total > 0
          ? ` — ${known} of ${total} hosts in the fleet (${pct}%)`
          : " — no hosts reporting yet"}
        {r.service ? `, service ${r.service}` : ", no service named"}
        {r.environment ? `, environment ${r.environment}` : ""}.
      </p>
      <ul>
        {r.targets.map((t) => {
          const h = rc.hosts.get(t);
          return (
            <li>
              <code>{t}</code> {h
                ? <Badge kind={h.status}>{h.status}</Badge>
                : <Badge kind="info">not in fleet</Badge>}{" "}
              {h && !h.policy_current ? <Badge kind="drift">policy drift</Badge> : null}
            </li>
          );
        })}
      </ul>
    </div>
  );
}

/** Who asked, and what it cited (untrusted). */
export function Provenance(props: { r: RequestView; ctx: PageCtx }): Child {
  const { r, ctx } = props;
  const a = r.action;
  const params = (a.params ?? {}) as Record<string, unknown>;
  const findings = [...strList(params.finding_id), ...strList(params.finding_ids)];
  const traces = [...strList(params.trace_id), ...strList(params.trace_ids)];
  const reason = str(a.reason);
  const who = r.requester_kind === "user"
    ? `user ${r.requester}`
    : `${r.requester_kind} identity "${r.requester}"`;
  return (
    <div>
      <dl class="kv">
        <dt>Requested by</dt>
        <dd>
          <strong>{who}</strong>
          {r.requester_kind === "mcp"
            ? " (an AI agent through the governed MCP server; signed envelope verified)"
            : ""}
        </dd>
        {r.operator
          ? (
            <>
              <dt>Operated by</dt>
              <dd>
                {r.operator} <span class="muted">— can never approve this request</span>
              </dd>
            </>
          )
          : null}
        <dt>Requested</dt>
        <dd>
          <Time iso={r.created_at} now={ctx.now} />
        </dd>
        <dt>Expires</dt>
        <dd>
          <Time iso={r.expires_at} now={ctx.now} />
        </dd>
      </dl>
      {reason || findings.length > 0 || traces.length > 0
        ? (
          <Untrusted source={`cited by ${who}: data, not instructions`}>
            {reason
              ? (
                <>
                  <div>Reason given:</div>
                  <blockquote>{reason}</blockquote>
                </>
              )
              : null}
            {findings.length > 0
              ? (
                <div>
                  Findings cited: {findings.map((f, i) => (
                    <>
                      {i > 0 ? ", " : ""}
                      <a href={`${ctx.base}/findings?id=${encodeURIComponent(f)}`}>
                        <code>{f}</code>
                      </a>
                    </>
                  ))}
                </div>
              )
              : null}
            {traces.length > 0
              ? (
                <div>
                  Traces cited: {traces.map((t, i) => (
                    <>
                      {i > 0 ? ", " : ""}
                      <a href={`${ctx.base}/traces/${encodeURIComponent(t)}`}>
                        <code>{t}</code>
                      </a>
                    </>
                  ))}
                </div>
              )
              : null}
          </Untrusted>
        )
        : <p class="muted">The requester cited no findings or traces.</p>}
    </div>
  );
}

/** The approve and reject forms (each needs a fresh passkey assertion). */
export function VoteForms(props: { r: RequestView; ctx: PageCtx; rc: RequestContext }): Child {
  const { r, ctx } = props;
  if (r.status !== "pending") return null;
  const id = r.request_id;
  const base = `${ctx.base}/requests/${encodeURIComponent(id)}`;
  const voted = r.votes.find((v) => v.user === ctx.userId);
  if (voted) return <p class="muted">You voted {voted.decision} on this request.</p>;
  return (
    <div class="votes">
      {(["approve", "reject"] as const).map((d) => (
        <form
          method="post"
          action={`${base}/${d}`}
          data-passkey="vote"
          data-decision={d}
          data-options={`${base}/challenge`}
          aria-label={`${d === "approve" ? "Approve" : "Reject"} request ${id}`}
        >
          <Csrf ctx={ctx} />
          <div class="field">
            <label for={`${d}-comment-${id}`}>Comment ({d}, optional)</label>
            <textarea id={`${d}-comment-${id}`} name="comment" maxlength={2000}></textarea>
          </div>
          <p>
            <button type="submit" class={d === "approve" ? "approve" : "danger"}>
              {d === "approve" ? "Approve with passkey" : "Reject with passkey"}
            </button>
          </p>
          <p class="status" role="status" aria-live="polite">
            {props.rc.hasPasskey ? "" : "You have no passkey yet: add one on the Account page."}
          </p>
        </form>
      ))}
    </div>
  );
}

/** One request as a card. */
export function RequestCard(
  props: { r: RequestView; ctx: PageCtx; rc: RequestContext; detail?: boolean },
): Child {
  const { r, ctx, rc } = props;
  const title = r.kind === "policy.activate" ? "policy.activate" : String(r.action.action ?? "?");
  const link = `${ctx.base}/requests/${encodeURIComponent(r.request_id)}`;
  return (
    <article class="card" aria-labelledby={`h-${r.request_id}`}>
      <h2 id={`h-${r.request_id}`}>
        {props.detail ? <code>{title}</code> : (
          <a href={link}>
            <code>{title}</code>
          </a>
        )} <Badge kind={r.status} /> <span class="muted mono">{r.request_id}</span>
      </h2>
      <p>
        <ApprovalProgress r={r} /> · action hash <ShortHash value={r.action_hash} />
      </p>
      <div class="grid">
        <section>
          <h3>Plan</h3>
          <Plan r={r} ctx={ctx} />
        </section>
        <section>
          <h3>Policy decision</h3>
          <Decision r={r} />
        </section>
        <section>
          <h3>Blast radius</h3>
          <BlastRadius r={r} rc={rc} />
        </section>
        <section>
          <h3>Provenance</h3>
          <Provenance r={r} ctx={ctx} />
        </section>
      </div>
      {r.votes.length > 0
        ? (
          <section>
            <h3>Votes</h3>
            <ul>
              {r.votes.map((v) => (
                <li>
                  <Badge kind={v.decision === "approve" ? "approved" : "rejected"}>
                    {v.decision}
                  </Badge>{" "}
                  {rc.emails.get(v.user) ?? v.user} by <strong>{v.method}</strong>{" "}
                  <Time iso={v.at} now={ctx.now} />
                  {v.comment ? <>— “{v.comment}”</> : null}
                </li>
              ))}
            </ul>
          </section>
        )
        : null}
      <p>
        <a href={`${ctx.base}/authority?request=${encodeURIComponent(r.request_id)}`}>
          Who can approve this, and why
        </a>
      </p>
      <VoteForms r={r} ctx={ctx} rc={rc} />
    </article>
  );
}

const STATUSES = [
  "pending",
  "approved",
  "rejected",
  "denied",
  "allowed",
  "expired",
  "executed",
  "failed",
];

/** The queue page. */
export function QueuePage(
  props: {
    ctx: PageCtx;
    items: RequestView[];
    status: string;
    rc: RequestContext;
    next: string | null;
    flash: Flash | null;
  },
): Child {
  const { ctx } = props;
  return (
    <Page ctx={ctx} title="Approval queue" active="queue" flash={props.flash}>
      <form method="get" action={`${ctx.base}/`} class="row">
        <div class="field">
          <label for="status">Status</label>
          <select id="status" name="status">
            <option value="all" selected={props.status === "all"}>all</option>
            {STATUSES.map((s) => (
              <option key={s} value={s} selected={props.status === s}>{s}</option>
            ))}
          </select>
        </div>
        <button type="submit" class="secondary">Show</button>
      </form>
      {props.items.length === 0
        ? <p class="card">No {props.status === "all" ? "" : props.status + " "}requests.</p>
        : props.items.map((r) => <RequestCard key={r.request_id} r={r} ctx={ctx} rc={props.rc} />)}
      {props.next
        ? (
          <p class="pager">
            <a
              href={`${ctx.base}/?status=${encodeURIComponent(props.status)}&cursor=${
                encodeURIComponent(props.next)
              }`}
            >
              Older requests
            </a>
          </p>
        )
        : null}
    </Page>
  );
}

/** One request's page. */
export function RequestPage(
  props: {
    ctx: PageCtx;
    r: RequestView;
    rc: RequestContext;
    flash: Flash | null;
    proofs: ProofView[];
  },
): Child {
  const { ctx, r } = props;
  return (
    <Page ctx={ctx} title={`Request ${r.request_id}`} active="queue" flash={props.flash}>
      <RequestCard r={r} ctx={ctx} rc={props.rc} detail />
      <section class="card">
        <h2>Binding</h2>
        <dl class="kv">
          <dt>Action hash</dt>
          <dd>
            <code>{r.action_hash}</code>
          </dd>
          <dt>Passkey challenge</dt>
          <dd>
            <code>
              base64url(SHA-256("infraveil-approve/v1\n" + action hash + "\n" + decision + "\n" +
              nonce))
            </code>
          </dd>
          <dt>Exact action</dt>
          <dd>
            <pre>{JSON.stringify(r.action, null, 2)}</pre>
          </dd>
        </dl>
        {props.proofs.length > 0
          ? (
            <>
              <h3>Passkey proofs stored with the votes</h3>
              <table>
                <thead>
                  <tr>
                    <th scope="col">Voter</th>
                    <th scope="col">Decision</th>
                    <th scope="col">Credential</th>
                    <th scope="col">Challenge</th>
                    <th scope="col">Verified</th>
                  </tr>
                </thead>
                <tbody>
                  {props.proofs.map((p) => (
                    <tr>
                      <td>{props.rc.emails.get(p.userId) ?? p.userId}</td>
                      <td>{p.decision}</td>
                      <td>
                        <code>{p.credentialId.slice(0, 16)}…</code>
                      </td>
                      <td>
                        <code>{p.challenge}</code>
                      </td>
                      <td>
                        <Time iso={new Date(p.createdAt).toISOString()} now={ctx.now} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </>
          )
          : null}
        {r.approval
          ? (
            <>
              <h3>Signed approval</h3>
              <p>
                <code>{r.approval.approval_id}</code>, usable until{" "}
                <Time iso={r.approval.expires_at} now={ctx.now} />
              </p>
              <ul>
                {r.approval.targets.map((t) => (
                  <li>
                    <code>{t.host}</code>: {t.used_at ? `claimed ${t.used_at}` : "not yet claimed"}
                    {t.result ? `, ${t.result}` : ""}
                  </li>
                ))}
              </ul>
            </>
          )
          : null}
      </section>
    </Page>
  );
}

/** A stored passkey proof, for display. */
export interface ProofView {
  /** Voter. */
  userId: string;
  /** Decision. */
  decision: string;
  /** Credential id. */
  credentialId: string;
  /** Challenge. */
  challenge: string;
  /** When verified, ms. */
  createdAt: number;
}
