/** @jsxImportSource hono/jsx */
/**
 * Evidence (browse, export), the authority graph ("who can approve this" and "why"), policy
 * versions with their activation approvals, break-glass (open, watch, end, review), users
 * (invitations) and the account's passkeys.
 *
 * @module
 */
import type { Child } from "hono/jsx";
import {
  Badge,
  CopyField,
  Csrf,
  type Flash,
  Page,
  type PageCtx,
  ShortHash,
  Time,
} from "./_layout.tsx";
import type { RequestView } from "./_pages_requests.tsx";
import type { PasskeyRow } from "./passkey_store.ts";

/** One evidence line, parsed. */
export interface EvidenceLine {
  seq: number;
  ts: string;
  type: string;
  actor: string;
  data: unknown;
  prev: string;
}

/** The evidence page. */
export function EvidencePage(
  props: {
    ctx: PageCtx;
    head: { size: number; anchor: string };
    lines: EvidenceLine[];
    from: number;
    pageSize: number;
    type: string;
    canExport: boolean;
  },
): Child {
  const { ctx, head, from, pageSize } = props;
  const older = from > 0 ? Math.max(0, from - pageSize) : null;
  const newer = from + pageSize < head.size ? from + pageSize : null;
  const q = (f: number) =>
    `${ctx.base}/evidence?from=${f}${props.type ? `&type=${encodeURIComponent(props.type)}` : ""}`;
  return (
    <Page ctx={ctx} title="Evidence" active="evidence">
      <div class="card">
        <dl class="kv">
          <dt>Entries</dt>
          <dd>{head.size}</dd>
          <dt>Anchor (SIZE:ROOT)</dt>
          <dd>
            <CopyField value={head.anchor} label="evidence anchor" />
          </dd>
          <dt>Export</dt>
          <dd>
            {props.canExport
              ? (
                <a
                  class="button secondary"
                  href={`${ctx.base}/evidence/export`}
                  download={`evidence-${ctx.tenant}.jsonl`}
                >
                  Download evidence-{ctx.tenant}.jsonl
                </a>
              )
              : <span class="muted">Exports need the admin or auditor role.</span>}
          </dd>
          <dt>Verify offline</dt>
          <dd>
            <code>infraveil verify ledger evidence-{ctx.tenant}.jsonl --head {head.anchor}</code>
          </dd>
        </dl>
      </div>
      <form method="get" action={`${ctx.base}/evidence`} class="row" aria-label="Filter evidence">
        <div class="field">
          <label for="ev-type">Type starts with</label>
          <input id="ev-type" name="type" type="search" value={props.type} />
        </div>
        <div class="field">
          <label for="ev-from">From entry</label>
          <input id="ev-from" name="from" type="number" min={0} value={String(from)} />
        </div>
        <button type="submit" class="secondary">Show</button>
      </form>
      {!props.canExport
        ? <p class="card">Browsing the evidence log needs the admin or auditor role.</p>
        : (
          <table>
            <caption class="sr-only">Evidence entries {from} to {from + pageSize - 1}</caption>
            <thead>
              <tr>
                <th scope="col">Seq</th>
                <th scope="col">Time</th>
                <th scope="col">Type</th>
                <th scope="col">Actor</th>
                <th scope="col">Data</th>
              </tr>
            </thead>
            <tbody>
              {props.lines.map((l) => (
                <tr>
                  <td>{l.seq}</td>
                  <td>
                    <Time iso={l.ts} now={ctx.now} />
                  </td>
                  <td class="num">
                    <code>{l.type}</code>
                  </td>
                  <td>{l.actor}</td>
                  <td class="data">
                    <code class="mono">{JSON.stringify(l.data).slice(0, 400)}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      <p class="pager">
        {older !== null ? <a href={q(older)}>Earlier entries</a> : null}
        {newer !== null ? <a href={q(newer)}>Later entries</a> : null}
      </p>
    </Page>
  );
}

/** `GET /authority`. */
export interface AuthorityView {
  users: { id: string; email: string; status: string }[];
  groups: string[];
  roles: string[];
  members: { group: string; member_kind: string; member: string }[];
  assignments: { subject_kind: string; subject: string; role: string }[];
  grants: { id: string; role: string; action: string; environment: string; service: string }[];
  delegations: {
    id: string;
    from: string;
    to: string;
    role: string | null;
    expires_at: string;
    active: boolean;
  }[];
}

/** A path step as the API returns it. */
export type PathStepView = Record<string, unknown> & { type: string };

function Path(props: { path: PathStepView[] }): Child {
  return (
    <ol class="path" aria-label="Path through the authority graph">
      {props.path.map((s) => (
        <li>
          {s.type === "user"
            ? String(s.email)
            : s.type === "member_of"
            ? `member of group ${s.group}`
            : s.type === "role"
            ? `holds role ${s.role}`
            : s.type === "delegation"
            ? `delegated by ${s.from_email}${s.role ? ` (role ${s.role})` : ""}`
            : s.type === "grant"
            ? `grant: ${s.action} on ${s.environment}/${s.service}`
            : s.type}
        </li>
      ))}
    </ol>
  );
}

/** "Who can approve this" for one request, with an optional "why (not) this user". */
export interface ApproversView {
  request_id: string;
  status: string;
  target: { action: string; environment: string | null; service: string | null };
  approvals_required: number;
  approvals_needed: number;
  approvers: { user: string; email: string; path: PathStepView[]; path_text: string }[];
}

/** `GET /requests/{id}/why/{user}`. */
export interface WhyView {
  email: string;
  can_approve: boolean;
  reason: string | null;
  path: PathStepView[];
}

/** The authority page. */
export function AuthorityPage(
  props: {
    ctx: PageCtx;
    graph: AuthorityView;
    request: string;
    user: string;
    approvers: ApproversView | null;
    why: WhyView | null;
    error: Flash | null;
  },
): Child {
  const { ctx, graph } = props;
  const email = (id: string) => graph.users.find((u) => u.id === id)?.email ?? id;
  const subj = (kind: string, s: string) => (kind === "user" ? email(s) : `group ${s}`);
  return (
    <Page ctx={ctx} title="Authority graph" active="authority" flash={props.error}>
      <form
        method="get"
        action={`${ctx.base}/authority`}
        class="card"
        aria-label="Who can approve this"
      >
        <h2>Who can approve this, and why</h2>
        <div class="row">
          <div class="field">
            <label for="au-request">Request id</label>
            <input
              id="au-request"
              name="request"
              type="text"
              value={props.request}
              placeholder="req_…"
            />
          </div>
          <div class="field">
            <label for="au-user">Why (or why not) this user</label>
            <input
              id="au-user"
              name="user"
              type="text"
              value={props.user}
              placeholder="email (optional)"
            />
          </div>
          <button type="submit">Explain</button>
        </div>
        {props.approvers
          ? (
            <div>
              <p>
                <a href={`${ctx.base}/requests/${encodeURIComponent(props.approvers.request_id)}`}>
                  <code>{props.approvers.request_id}</code>
                </a>{" "}
                asks for <code>{props.approvers.target.action}</code> on{" "}
                <code>
                  {props.approvers.target.environment ?? "*"}/{props.approvers.target.service ??
                    "*"}
                </code>{" "}
                — <Badge kind={props.approvers.status} />, needs {props.approvers.approvals_needed}
                {" "}
                more of {props.approvers.approvals_required}.
              </p>
              {props.approvers.approvers.length === 0 ? <p>Nobody can approve it.</p> : (
                <ul>
                  {props.approvers.approvers.map((a) => (
                    <li>
                      <strong>{a.email}</strong>
                      <Path path={a.path} />
                    </li>
                  ))}
                </ul>
              )}
              <p class="muted">
                The requester and the operator of the requesting identity are never listed.
              </p>
            </div>
          )
          : null}
        {props.why
          ? (
            <div role="status">
              <h3>{props.why.email}</h3>
              {props.why.can_approve
                ? (
                  <>
                    <p>
                      <Badge kind="approved">can approve</Badge> because:
                    </p>
                    <Path path={props.why.path} />
                  </>
                )
                : (
                  <p>
                    <Badge kind="denied">cannot approve</Badge> {props.why.reason}
                  </p>
                )}
            </div>
          )
          : null}
      </form>
      <div class="grid">
        <section class="card">
          <h2>Grants</h2>
          <table>
            <thead>
              <tr>
                <th scope="col">Role</th>
                <th scope="col">May approve</th>
              </tr>
            </thead>
            <tbody>
              {graph.grants.map((g) => (
                <tr>
                  <td>
                    <code>{g.role}</code>
                  </td>
                  <td>
                    <code>{g.action}</code> on <code>{g.environment}/{g.service}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
        <section class="card">
          <h2>Role assignments</h2>
          <ul>
            {graph.assignments.map((a) => (
              <li>
                {subj(a.subject_kind, a.subject)} → role <code>{a.role}</code>
              </li>
            ))}
          </ul>
          <h2>Groups</h2>
          {graph.groups.length === 0 ? <p class="muted">No groups.</p> : (
            <ul>
              {graph.groups.map((g) => (
                <li>
                  <code>{g}</code>: {graph.members.filter((m) => m.group === g).map((m) =>
                    subj(m.member_kind, m.member)
                  ).join(", ") ||
                    "no members"}
                </li>
              ))}
            </ul>
          )}
          <h2>Delegations</h2>
          {graph.delegations.length === 0 ? <p class="muted">No delegations.</p> : (
            <ul>
              {graph.delegations.map((d) => (
                <li>
                  {email(d.from)} → {email(d.to)} {d.role ? `(role ${d.role})` : "(all roles)"}{" "}
                  until <Time iso={d.expires_at} now={ctx.now} />{" "}
                  {d.active
                    ? <Badge kind="active">active</Badge>
                    : <Badge kind="ended">ended</Badge>}
                </li>
              ))}
            </ul>
          )}
        </section>
      </div>
    </Page>
  );
}

/** A policy version as `GET /policies` returns it. */
export interface PolicyView {
  hash: string;
  status: string;
  created_at: string;
  activated_at: string | null;
  created_by: string;
}

function Activation(
  props: { r: RequestView | undefined; emails: Map<string, string>; ctx: PageCtx },
): Child {
  const r = props.r;
  if (!r) return <span class="muted">no activation request (bootstrap or none)</span>;
  const votes = r.votes.filter((v) => v.decision === "approve");
  return (
    <span>
      <a href={`${props.ctx.base}/requests/${encodeURIComponent(r.request_id)}`}>
        <code>{r.request_id}</code>
      </a>{" "}
      <Badge kind={r.status} /> {votes.length} of {r.approvals_required}
      {votes.length > 0
        ? `: ${votes.map((v) => `${props.emails.get(v.user) ?? v.user} (${v.method})`).join(", ")}`
        : ""}
    </span>
  );
}

/** The policy versions page. */
export function PoliciesPage(
  props: {
    ctx: PageCtx;
    active: string | null;
    items: PolicyView[];
    activations: Map<string, RequestView>;
    emails: Map<string, string>;
    flash: Flash | null;
  },
): Child {
  const { ctx } = props;
  return (
    <Page ctx={ctx} title="Policy versions" active="policies" flash={props.flash}>
      <table>
        <caption class="sr-only">Policy versions, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Version (content hash)</th>
            <th scope="col">Status</th>
            <th scope="col">Proposed</th>
            <th scope="col">Activated</th>
            <th scope="col">Activation approvals</th>
          </tr>
        </thead>
        <tbody>
          {props.items.map((p) => (
            <tr>
              <td>
                <a href={`${ctx.base}/policies/${encodeURIComponent(p.hash)}`}>
                  <ShortHash value={p.hash} />
                </a>
              </td>
              <td>
                <Badge kind={p.status === "active" ? "approved" : p.status}>{p.status}</Badge>
              </td>
              <td>
                <Time iso={p.created_at} now={ctx.now} /> by{" "}
                {props.emails.get(p.created_by) ?? p.created_by}
              </td>
              <td>
                <Time iso={p.activated_at} now={ctx.now} />
              </td>
              <td>
                <Activation r={props.activations.get(p.hash)} emails={props.emails} ctx={ctx} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form
        method="post"
        action={`${ctx.base}/policies`}
        class="card"
        aria-label="Propose a policy version"
      >
        <h2>Propose a new version</h2>
        <Csrf ctx={ctx} />
        <div class="field">
          <label for="policy-text">Policy text</label>
          <textarea id="policy-text" name="text" rows={10} required></textarea>
        </div>
        <p>
          <button type="submit">Propose (opens an activation request)</button>
        </p>
      </form>
    </Page>
  );
}

/** One policy version's page. */
export function PolicyPage(
  props: {
    ctx: PageCtx;
    hash: string;
    status: string;
    text: string;
    activation: RequestView | undefined;
    emails: Map<string, string>;
  },
): Child {
  const { ctx } = props;
  return (
    <Page ctx={ctx} title="Policy version" active="policies">
      <div class="card">
        <dl class="kv">
          <dt>Hash</dt>
          <dd>
            <CopyField value={props.hash} label="policy hash" />
          </dd>
          <dt>Status</dt>
          <dd>
            <Badge kind={props.status === "active" ? "approved" : props.status}>
              {props.status}
            </Badge>
          </dd>
          <dt>Activation</dt>
          <dd>
            <Activation r={props.activation} emails={props.emails} ctx={ctx} />
          </dd>
        </dl>
      </div>
      <pre>{props.text}</pre>
    </Page>
  );
}

/** A break-glass session as the API returns it. */
export interface BreakGlassView {
  id: string;
  holder: string;
  justification: string;
  scope: { actions: string[]; services: string[]; environments?: string[] };
  opened_at: string;
  expires_at: string;
  active: boolean;
  ended_at: string | null;
  ended_by: string | null;
  closed_by: string | null;
  close_reason: string | null;
  review_required: boolean;
  review: string | null;
  reviewed_at: string | null;
  reviewed_by: string | null;
}

function SessionState(props: { s: BreakGlassView }): Child {
  const s = props.s;
  return s.active
    ? <Badge kind="active">open</Badge>
    : s.review_required
    ? <Badge kind="review-needed">ended, review needed</Badge>
    : <Badge kind="reviewed">ended, reviewed</Badge>;
}

/** The break-glass list page (open form, sessions). */
export function BreakGlassPage(
  props: {
    ctx: PageCtx;
    items: BreakGlassView[];
    emails: Map<string, string>;
    flash: Flash | null;
  },
): Child {
  const { ctx } = props;
  const holder = ctx.roles.includes("breakglass");
  return (
    <Page ctx={ctx} title="Break-glass" active="breakglass" flash={props.flash}>
      <section class="card" id="sessions" data-poll="15" aria-live="polite">
        <h2>Sessions</h2>
        {props.items.length === 0
          ? <p class="muted">No break-glass session was ever opened.</p>
          : (
            <table>
              <thead>
                <tr>
                  <th scope="col">Session</th>
                  <th scope="col">State</th>
                  <th scope="col">Holder</th>
                  <th scope="col">Scope</th>
                  <th scope="col">Opened</th>
                  <th scope="col">Ends / ended</th>
                </tr>
              </thead>
              <tbody>
                {props.items.map((s) => (
                  <tr class={s.active ? "stale" : undefined}>
                    <td>
                      <a href={`${ctx.base}/breakglass/${encodeURIComponent(s.id)}`}>
                        <code>{s.id}</code>
                      </a>
                    </td>
                    <td>
                      <SessionState s={s} />
                    </td>
                    <td>{props.emails.get(s.holder) ?? s.holder}</td>
                    <td>
                      {s.scope.actions.join(", ")} on {s.scope.services.join(", ")} in{" "}
                      {(s.scope.environments ?? ["*"]).join(", ")}
                    </td>
                    <td>
                      <Time iso={s.opened_at} now={ctx.now} />
                    </td>
                    <td>
                      <Time iso={s.ended_at ?? s.expires_at} now={ctx.now} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
      </section>
      <form
        method="post"
        action={`${ctx.base}/breakglass`}
        class="card"
        aria-label="Open a break-glass session"
      >
        <h2>Open a session</h2>
        {holder ? null : (
          <p class="muted">
            Only holders of the role <code>breakglass</code>{" "}
            can open a session; the attempt is recorded.
          </p>
        )}
        <Csrf ctx={ctx} />
        <div class="field">
          <label for="bg-justification">Justification (at least 10 characters)</label>
          <textarea id="bg-justification" name="justification" required minlength={10}></textarea>
        </div>
        <div class="row">
          <div class="field">
            <label for="bg-actions">Actions (comma-separated)</label>
            <input id="bg-actions" name="actions" type="text" value="restart, rollback" required />
          </div>
          <div class="field">
            <label for="bg-services">Services (comma-separated, * for any)</label>
            <input id="bg-services" name="services" type="text" value="*" required />
          </div>
          <div class="field">
            <label for="bg-environments">Environments (comma-separated, * for any)</label>
            <input id="bg-environments" name="environments" type="text" value="*" required />
          </div>
          <div class="field">
            <label for="bg-minutes">Duration (minutes)</label>
            <input
              id="bg-minutes"
              name="minutes"
              type="number"
              min={1}
              max={1440}
              value="60"
              required
            />
          </div>
        </div>
        <p>
          <button type="submit" class="danger">Open break-glass session</button>
        </p>
      </form>
    </Page>
  );
}

/** One break-glass session: watch, end, review. */
export function BreakGlassSessionPage(
  props: {
    ctx: PageCtx;
    s: BreakGlassView;
    requests: RequestView[];
    emails: Map<string, string>;
    flash: Flash | null;
  },
): Child {
  const { ctx, s } = props;
  const base = `${ctx.base}/breakglass/${encodeURIComponent(s.id)}`;
  return (
    <Page ctx={ctx} title={`Break-glass ${s.id}`} active="breakglass" flash={props.flash}>
      <section class="card" id="watch" data-poll="10" aria-live="polite">
        <h2>
          <SessionState s={s} />
        </h2>
        <dl class="kv">
          <dt>Holder</dt>
          <dd>{props.emails.get(s.holder) ?? s.holder}</dd>
          <dt>Justification</dt>
          <dd>{s.justification}</dd>
          <dt>Scope</dt>
          <dd>
            actions <code>{s.scope.actions.join(", ")}</code> on services{" "}
            <code>{s.scope.services.join(", ")}</code> in environments{" "}
            <code>{(s.scope.environments ?? ["*"]).join(", ")}</code>
          </dd>
          <dt>Opened</dt>
          <dd>
            <Time iso={s.opened_at} now={ctx.now} />
          </dd>
          <dt>{s.active ? "Ends" : "Ended"}</dt>
          <dd>
            <Time iso={s.ended_at ?? s.expires_at} now={ctx.now} />
            {s.ended_by
              ? ` (${
                s.ended_by === "hand"
                  ? `closed by ${
                    props.emails.get(s.closed_by ?? "") ?? s.closed_by
                  }: ${s.close_reason}`
                  : "expired"
              })`
              : ""}
          </dd>
          {s.review
            ? (
              <>
                <dt>Review</dt>
                <dd>
                  {s.review} — {props.emails.get(s.reviewed_by ?? "") ?? s.reviewed_by},{" "}
                  <Time iso={s.reviewed_at} now={ctx.now} />
                </dd>
              </>
            )
            : null}
        </dl>
        <h3>Requests let through by this session ({props.requests.length})</h3>
        {props.requests.length === 0 ? <p class="muted">None yet.</p> : (
          <ul>
            {props.requests.map((r) => (
              <li>
                <a href={`${ctx.base}/requests/${encodeURIComponent(r.request_id)}`}>
                  <code>{String(r.action.action)}</code> {r.request_id}
                </a>{" "}
                <Badge kind={r.status} /> targets {r.targets.join(", ")}, by {r.requester_kind}{" "}
                {r.requester}
              </li>
            ))}
          </ul>
        )}
      </section>
      {s.active
        ? (
          <form
            method="post"
            action={`${base}/close`}
            class="card"
            aria-label="End the break-glass session"
          >
            <h2>End the session</h2>
            <Csrf ctx={ctx} />
            <div class="field">
              <label for="bg-reason">Reason</label>
              <input id="bg-reason" name="reason" type="text" value="incident resolved" required />
            </div>
            <p>
              <button type="submit" class="danger">End break-glass now</button>
            </p>
          </form>
        )
        : s.review_required && s.holder === ctx.userId
        ? (
          <p class="card muted">
            Waiting for a post-incident review by someone other than you (the holder).
          </p>
        )
        : s.review_required
        ? (
          <form
            method="post"
            action={`${base}/review`}
            class="card"
            aria-label="Review the break-glass session"
          >
            <h2>Post-incident review</h2>
            <p class="muted">
              Someone other than the holder reviews what was done under the session.
            </p>
            <Csrf ctx={ctx} />
            <div class="field">
              <label for="bg-review">Review</label>
              <textarea id="bg-review" name="review" required></textarea>
            </div>
            <p>
              <button type="submit">Record review</button>
            </p>
          </form>
        )
        : null}
    </Page>
  );
}

/** The users page (list and invitations). */
export function UsersPage(
  props: {
    ctx: PageCtx;
    graph: AuthorityView;
    invited: { email: string; url: string } | null;
    flash: Flash | null;
  },
): Child {
  const { ctx, graph } = props;
  const roles = [...new Set([...graph.roles, "admin", "approver", "breakglass", "auditor"])].sort();
  return (
    <Page ctx={ctx} title="Users" active="users" flash={props.flash}>
      {props.invited
        ? (
          <div class="card" role="status">
            <h2>Invitation for {props.invited.email}</h2>
            <p>
              Send this one-time sign-up link to them over a channel you trust; it is shown once.
            </p>
            <CopyField
              value={props.invited.url}
              label={`sign-up link for ${props.invited.email}`}
            />
          </div>
        )
        : null}
      <table>
        <caption class="sr-only">Users</caption>
        <thead>
          <tr>
            <th scope="col">Email</th>
            <th scope="col">Status</th>
            <th scope="col">Roles (direct)</th>
          </tr>
        </thead>
        <tbody>
          {graph.users.map((u) => (
            <tr>
              <td>{u.email}</td>
              <td>
                <Badge kind={u.status === "active" ? "ok" : "pending"}>{u.status}</Badge>
              </td>
              <td>
                {graph.assignments.filter((a) => a.subject_kind === "user" && a.subject === u.id)
                  .map((a) => a.role)
                  .join(", ") || <span class="muted">none</span>}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form method="post" action={`${ctx.base}/users`} class="card" aria-label="Invite a user">
        <h2>Invite a user</h2>
        <Csrf ctx={ctx} />
        <div class="row">
          <div class="field">
            <label for="inv-email">Email</label>
            <input id="inv-email" name="email" type="email" required />
          </div>
          <fieldset>
            <legend>Roles</legend>
            {roles.map((r) => (
              <span>
                <input type="checkbox" id={`inv-role-${r}`} name="roles" value={r} />{" "}
                <label for={`inv-role-${r}`}>{r}</label>
                {" "}
              </span>
            ))}
          </fieldset>
          <button type="submit">Create invitation</button>
        </div>
      </form>
    </Page>
  );
}

/** The account page: passkeys. */
export function AccountPage(
  props: { ctx: PageCtx; keys: PasskeyRow[]; flash: Flash | null; sessionExpires: string | null },
): Child {
  const { ctx } = props;
  return (
    <Page ctx={ctx} title="Account" active="account" flash={props.flash}>
      <div class="card">
        <dl class="kv">
          <dt>Signed in as</dt>
          <dd>{ctx.email}</dd>
          <dt>Session ends</dt>
          <dd>
            <Time iso={props.sessionExpires} now={ctx.now} />
          </dd>
        </dl>
      </div>
      <h2>Passkeys</h2>
      <table>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Credential</th>
            <th scope="col">Added</th>
            <th scope="col">Last used</th>
            <th scope="col">Remove</th>
          </tr>
        </thead>
        <tbody>
          {props.keys.map((k) => (
            <tr>
              <td>{k.label ?? "passkey"}</td>
              <td>
                <code>{k.id.slice(0, 16)}…</code>
              </td>
              <td>
                <Time iso={new Date(k.createdAt).toISOString()} now={ctx.now} />
              </td>
              <td>
                <Time
                  iso={k.lastUsedAt === null ? null : new Date(k.lastUsedAt).toISOString()}
                  now={ctx.now}
                />
              </td>
              <td>
                {props.keys.length > 1
                  ? (
                    <form
                      method="post"
                      action={`${ctx.base}/account/passkeys/${encodeURIComponent(k.id)}/delete`}
                      class="inline"
                    >
                      <Csrf ctx={ctx} />
                      <button
                        type="submit"
                        class="secondary"
                        aria-label={`Remove passkey ${k.label ?? k.id.slice(0, 8)}`}
                      >
                        Remove
                      </button>
                    </form>
                  )
                  : <span class="muted">last passkey</span>}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form
        class="card"
        method="post"
        action={`${ctx.base}/account/passkeys/verify`}
        data-passkey="register"
        data-options={`${ctx.base}/account/passkeys/options`}
        data-verify={`${ctx.base}/account/passkeys/verify`}
        aria-label="Add a passkey"
      >
        <h2>Add a passkey</h2>
        <Csrf ctx={ctx} />
        <div class="field">
          <label for="pk-label">Name for the new passkey</label>
          <input id="pk-label" name="label" type="text" value="second key" maxlength={64} />
        </div>
        <p>
          <button type="submit">Add passkey</button>
        </p>
        <p class="status" role="status" aria-live="polite"></p>
      </form>
      <p class="muted">
        Every approval and rejection asks for a fresh passkey assertion bound to the request's
        action hash.
      </p>
    </Page>
  );
}
