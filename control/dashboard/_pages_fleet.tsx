/** @jsxImportSource hono/jsx */
/**
 * Fleet, findings and traces: hosts with versions, policy drift, health, heartbeats and the
 * copyable ledger anchor; findings and spans with filters; one trace's timing breakdown.
 * Everything that came from network traffic (finding titles and details, span names and
 * attributes) is framed as untrusted.
 *
 * @module
 */
import type { Child } from "hono/jsx";
import { Badge, CopyField, Page, type PageCtx, ShortHash, Time, Untrusted } from "./_layout.tsx";

/** A host as `GET /fleet` returns it. */
export interface HostView {
  name: string;
  version: string;
  policy_hash: string | null;
  policy_current: boolean;
  health: unknown;
  anchor: string | null;
  last_seen: string;
  first_seen: string;
  stale: boolean;
  status: string;
}

/** `GET /fleet`. */
export interface FleetView {
  active_policy_hash: string | null;
  hosts: HostView[];
  counts: { total: number; stale: number; policy_drift: number };
}

function healthText(h: unknown): { ok: boolean | null; text: string } {
  if (h === null || h === undefined) return { ok: null, text: "not reported" };
  if (typeof h === "object" && !Array.isArray(h)) {
    const o = h as Record<string, unknown>;
    const ok = typeof o.ok === "boolean"
      ? o.ok
      : typeof o.status === "string"
      ? /^(ok|healthy|up)$/i.test(o.status)
      : null;
    const parts = Object.entries(o).filter(([k]) => k !== "ok").slice(0, 6).map(([k, v]) =>
      `${k}: ${typeof v === "object" ? JSON.stringify(v) : String(v)}`
    );
    return { ok, text: parts.join(", ").slice(0, 300) || (ok ? "ok" : "") };
  }
  return { ok: null, text: String(JSON.stringify(h)).slice(0, 300) };
}

/** The fleet page. */
export function FleetPage(
  props: { ctx: PageCtx; fleet: FleetView; evidence: { size: number; anchor: string } },
): Child {
  const { ctx, fleet } = props;
  return (
    <Page ctx={ctx} title="Fleet" active="fleet">
      <div class="card">
        <dl class="kv">
          <dt>Active policy</dt>
          <dd>
            <ShortHash value={fleet.active_policy_hash} />
          </dd>
          <dt>Hosts</dt>
          <dd>
            {fleet.counts.total} reporting · {fleet.counts.stale} stale ·{" "}
            {fleet.counts.policy_drift} with policy drift
          </dd>
          <dt>Evidence log anchor</dt>
          <dd>
            <CopyField value={props.evidence.anchor} label="evidence log anchor" />
          </dd>
        </dl>
      </div>
      {fleet.hosts.length === 0 ? <p class="card">No host has sent a heartbeat yet.</p> : (
        <table>
          <caption class="sr-only">Hosts</caption>
          <thead>
            <tr>
              <th scope="col">Host</th>
              <th scope="col">Version</th>
              <th scope="col">Policy</th>
              <th scope="col">Health</th>
              <th scope="col">Last heartbeat</th>
              <th scope="col">Last ledger anchor (SIZE:ROOT)</th>
            </tr>
          </thead>
          <tbody>
            {fleet.hosts.map((h) => {
              const health = healthText(h.health);
              return (
                <tr class={!h.policy_current ? "drift" : h.stale ? "stale" : undefined}>
                  <th scope="row">
                    <code>{h.name}</code>
                  </th>
                  <td>
                    <code>{h.version}</code>
                  </td>
                  <td>
                    <ShortHash value={h.policy_hash} /> {h.policy_current
                      ? <Badge kind="current">current</Badge>
                      : <Badge kind="drift">drift</Badge>}
                  </td>
                  <td>
                    {health.ok === true
                      ? <Badge kind="ok">healthy</Badge>
                      : health.ok === false
                      ? <Badge kind="failed">unhealthy</Badge>
                      : null} <span class="muted">{health.text}</span>
                  </td>
                  <td>
                    {h.stale ? <Badge kind="stale">stale</Badge> : null}{" "}
                    <Time iso={h.last_seen} now={ctx.now} />
                  </td>
                  <td>
                    {h.anchor
                      ? <CopyField value={h.anchor} label={`anchor of ${h.name}`} />
                      : <span class="muted">none yet</span>}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <p class="muted">
        Verify a host's ledger offline: <code>infraveil verify ledger FILE --head SIZE:ROOT</code>
        {" "}
        with the anchor above.
      </p>
    </Page>
  );
}

/** A finding as `GET /findings` returns it. */
export interface FindingView {
  id: string;
  host: string;
  category: string;
  severity: string;
  title: string;
  service: string | null;
  status: string;
  count: number;
  first_seen: string;
  last_seen: string;
  detail: unknown;
  trace_id: string | null;
}

/** Current filter values. */
export type Filters = Record<string, string>;

function TextFilter(props: { id: string; label: string; f: Filters; type?: string }): Child {
  return (
    <div class="field">
      <label for={`f-${props.id}`}>{props.label}</label>
      <input
        id={`f-${props.id}`}
        name={props.id}
        type={props.type ?? "text"}
        value={props.f[props.id] ?? ""}
      />
    </div>
  );
}

/** The findings page. */
export function FindingsPage(
  props: { ctx: PageCtx; items: FindingView[]; f: Filters; next: string | null },
): Child {
  const { ctx, f } = props;
  const sev = (f.severity ?? "").split(",").filter(Boolean);
  return (
    <Page ctx={ctx} title="Findings" active="findings">
      <form method="get" action={`${ctx.base}/findings`} class="card" aria-label="Filter findings">
        <div class="row">
          <TextFilter id="host" label="Host" f={f} />
          <TextFilter id="category" label="Category" f={f} />
          <div class="field">
            <label for="f-status">Status</label>
            <select id="f-status" name="status">
              <option value="" selected={!f.status}>any</option>
              <option value="open" selected={f.status === "open"}>open</option>
              <option value="resolved" selected={f.status === "resolved"}>resolved</option>
            </select>
          </div>
          <fieldset>
            <legend>Severity</legend>
            {["low", "medium", "high", "critical"].map((s) => (
              <span>
                <input
                  type="checkbox"
                  id={`f-sev-${s}`}
                  name="sev"
                  value={s}
                  checked={sev.includes(s)}
                />{" "}
                <label for={`f-sev-${s}`}>{s}</label>
                {" "}
              </span>
            ))}
          </fieldset>
          <button type="submit">Filter</button>
        </div>
      </form>
      {props.items.length === 0 ? <p class="card">No findings match.</p> : (
        <table>
          <caption class="sr-only">Findings</caption>
          <thead>
            <tr>
              <th scope="col">Severity</th>
              <th scope="col">Finding (untrusted text)</th>
              <th scope="col">Category</th>
              <th scope="col">Host / service</th>
              <th scope="col">Seen</th>
              <th scope="col">Last seen</th>
            </tr>
          </thead>
          <tbody>
            {props.items.map((x) => (
              <tr id={x.id}>
                <td>
                  <Badge kind={x.severity} />{" "}
                  <Badge kind={x.status === "open" ? "pending" : "resolved"}>{x.status}</Badge>
                </td>
                <td>
                  <Untrusted source="from network traffic">
                    <blockquote>{x.title}</blockquote>
                    {x.detail
                      ? (
                        <blockquote class="mono">
                          {JSON.stringify(x.detail).slice(0, 500)}
                        </blockquote>
                      )
                      : null}
                  </Untrusted>
                  <span class="muted mono">{x.id}</span>
                  {x.trace_id
                    ? (
                      <>
                        {" · "}
                        <a href={`${ctx.base}/traces/${encodeURIComponent(x.trace_id)}`}>
                          trace {x.trace_id.slice(0, 8)}…
                        </a>
                      </>
                    )
                    : null}
                </td>
                <td>
                  <code>{x.category}</code>
                </td>
                <td>
                  <code>{x.host}</code> / {x.service ?? "—"}
                </td>
                <td>{x.count}×</td>
                <td>
                  <Time iso={x.last_seen} now={ctx.now} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {props.next
        ? (
          <p class="pager">
            <a href={`${ctx.base}/findings?${new URLSearchParams({ ...f, cursor: props.next })}`}>
              Older findings
            </a>
          </p>
        )
        : null}
    </Page>
  );
}

/** A span as the API returns it. */
export interface SpanView {
  trace_id: string;
  span_id: string;
  parent_span_id: string | null;
  host: string;
  service: string | null;
  name: string;
  start_ms: number;
  duration_ms: number;
  status: number;
  attributes: unknown;
}

/** The traces page. */
export function TracesPage(
  props: { ctx: PageCtx; items: SpanView[]; f: Filters; next: string | null },
): Child {
  const { ctx, f } = props;
  return (
    <Page ctx={ctx} title="Traces" active="traces">
      <form method="get" action={`${ctx.base}/traces`} class="card" aria-label="Filter traces">
        <div class="row">
          <TextFilter id="host" label="Host" f={f} />
          <TextFilter id="service" label="Service" f={f} />
          <TextFilter id="name" label="Name contains" f={f} type="search" />
          <TextFilter id="min_status" label="Minimum status" f={f} type="number" />
          <div class="field">
            <label for="f-since">Since</label>
            <select id="f-since" name="since">
              {[["", "any time"], ["15m", "15 minutes"], ["1h", "1 hour"], ["24h", "24 hours"], [
                "7d",
                "7 days",
              ]].map((
                [v, l],
              ) => <option key={v} value={v} selected={(f.since ?? "") === v}>{l}</option>)}
            </select>
          </div>
          <button type="submit">Filter</button>
        </div>
      </form>
      {props.items.length === 0 ? <p class="card">No spans match.</p> : (
        <table>
          <caption class="sr-only">Spans</caption>
          <thead>
            <tr>
              <th scope="col">Started</th>
              <th scope="col">Name (untrusted)</th>
              <th scope="col">Status</th>
              <th scope="col">Duration</th>
              <th scope="col">Host / service</th>
              <th scope="col">Trace</th>
            </tr>
          </thead>
          <tbody>
            {props.items.map((s) => (
              <tr>
                <td>
                  <Time iso={new Date(s.start_ms).toISOString()} now={ctx.now} />
                </td>
                <td>
                  <code>{s.name}</code>
                </td>
                <td>
                  {s.status >= 500
                    ? <Badge kind="failed">{String(s.status)}</Badge>
                    : s.status >= 400
                    ? <Badge kind="medium">{String(s.status)}</Badge>
                    : String(s.status)}
                </td>
                <td class="num">{s.duration_ms} ms</td>
                <td>
                  <code>{s.host}</code> / {s.service ?? "—"}
                </td>
                <td>
                  <a href={`${ctx.base}/traces/${s.trace_id}`} aria-label={`Trace ${s.trace_id}`}>
                    <code>{s.trace_id.slice(0, 12)}…</code>
                  </a>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {props.next
        ? (
          <p class="pager">
            <a href={`${ctx.base}/traces?${new URLSearchParams({ ...f, cursor: props.next })}`}>
              Older spans
            </a>
          </p>
        )
        : null}
    </Page>
  );
}

/** One row of a timing breakdown. */
export interface TimingRow {
  /** The span. */
  span: SpanView;
  /** Nesting depth. */
  depth: number;
  /** Start offset from the trace start, ms. */
  offset: number;
  /** Time not covered by child spans, ms. */
  self: number;
}

/**
 * The timing breakdown of a trace: spans in tree order with offsets and self time.
 *
 * @param spans the spans
 * @returns rows and the trace's total duration, ms
 */
export function timingBreakdown(
  spans: SpanView[],
): { rows: TimingRow[]; total: number; start: number } {
  if (spans.length === 0) return { rows: [], total: 0, start: 0 };
  const start = Math.min(...spans.map((s) => s.start_ms));
  const end = Math.max(...spans.map((s) => s.start_ms + s.duration_ms));
  const ids = new Set(spans.map((s) => s.span_id));
  const children = new Map<string, SpanView[]>();
  const roots: SpanView[] = [];
  for (const s of [...spans].sort((a, b) => a.start_ms - b.start_ms)) {
    if (s.parent_span_id && ids.has(s.parent_span_id) && s.parent_span_id !== s.span_id) {
      const list = children.get(s.parent_span_id) ?? [];
      list.push(s);
      children.set(s.parent_span_id, list);
    } else roots.push(s);
  }
  const rows: TimingRow[] = [];
  const seen = new Set<string>();
  const walk = (s: SpanView, depth: number) => {
    if (seen.has(s.span_id)) return;
    seen.add(s.span_id);
    const kids = children.get(s.span_id) ?? [];
    // Self time: the span's duration minus the union of its children's intervals inside it.
    const a = s.start_ms, b = s.start_ms + s.duration_ms;
    const iv = kids.map((k) =>
      [Math.max(a, k.start_ms), Math.min(b, k.start_ms + k.duration_ms)] as const
    )
      .filter(([x, y]) => y > x).sort((p, q) => p[0] - q[0]);
    let covered = 0, cur = -Infinity, curEnd = -Infinity;
    for (const [x, y] of iv) {
      if (x > curEnd) {
        if (curEnd > cur) covered += curEnd - cur;
        cur = x;
        curEnd = y;
      } else curEnd = Math.max(curEnd, y);
    }
    if (curEnd > cur) covered += curEnd - cur;
    rows.push({
      span: s,
      depth,
      offset: s.start_ms - start,
      self: Math.max(0, s.duration_ms - covered),
    });
    for (const k of kids) walk(k, depth + 1);
  };
  for (const r of roots) walk(r, 0);
  return { rows, total: end - start, start };
}

/** One trace's page. */
export function TracePage(props: { ctx: PageCtx; traceId: string; spans: SpanView[] }): Child {
  const { ctx } = props;
  const { rows, total, start } = timingBreakdown(props.spans);
  const scale = total > 0 ? 1000 / total : 0;
  return (
    <Page ctx={ctx} title={`Trace ${props.traceId}`} active="traces">
      <div class="card">
        <dl class="kv">
          <dt>Trace id</dt>
          <dd>
            <code>{props.traceId}</code>
          </dd>
          <dt>Started</dt>
          <dd>
            <Time iso={new Date(start).toISOString()} now={ctx.now} />
          </dd>
          <dt>Total</dt>
          <dd>
            {total} ms across {rows.length} span{rows.length === 1 ? "" : "s"}
          </dd>
        </dl>
      </div>
      <h2>Timing breakdown</h2>
      <table>
        <caption class="sr-only">Spans of the trace, in call order, with their timing</caption>
        <thead>
          <tr>
            <th scope="col">Span (untrusted name)</th>
            <th scope="col">Host / service</th>
            <th scope="col">Status</th>
            <th scope="col">Offset</th>
            <th scope="col">Duration</th>
            <th scope="col">Self</th>
            <th scope="col">Share</th>
            <th scope="col" class="wide">Timeline</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => {
            const x = Math.round(r.offset * scale);
            const w = Math.max(2, Math.round(r.span.duration_ms * scale));
            return (
              <tr>
                <td>
                  <span class="muted">{"· ".repeat(r.depth)}</span>
                  <code>{r.span.name}</code>
                </td>
                <td>
                  <code>{r.span.host}</code> / {r.span.service ?? "—"}
                </td>
                <td>
                  {r.span.status >= 500
                    ? <Badge kind="failed">{String(r.span.status)}</Badge>
                    : String(r.span.status)}
                </td>
                <td class="num">+{r.offset} ms</td>
                <td class="num">{r.span.duration_ms} ms</td>
                <td class="num">{r.self} ms</td>
                <td class="num">
                  {total > 0 ? Math.round((r.span.duration_ms / total) * 100) : 100}%
                </td>
                <td>
                  <svg
                    class="bar"
                    viewBox="0 0 1000 14"
                    preserveAspectRatio="none"
                    role="img"
                    aria-label={`starts at +${r.offset} ms, lasts ${r.span.duration_ms} ms`}
                  >
                    <rect class="track" x="0" y="0" width="1000" height="14" />
                    <rect
                      class={r.span.status >= 500 ? "err" : "span"}
                      x={String(x)}
                      y="2"
                      width={String(w)}
                      height="10"
                    />
                  </svg>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <h2>Attributes</h2>
      <Untrusted source="from network traffic">
        {rows.map((r) => (
          <details>
            <summary>
              <code>{r.span.span_id}</code> {r.span.name}
            </summary>
            <pre>{JSON.stringify(r.span.attributes ?? {}, null, 2)}</pre>
          </details>
        ))}
      </Untrusted>
    </Page>
  );
}
