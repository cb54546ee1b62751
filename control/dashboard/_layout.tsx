/** @jsxImportSource hono/jsx */
/**
 * The page frame and small components every page shares: skip link, navigation, who is
 * signed in, the CSRF meta tag for the script, status badges, copyable values, the
 * "untrusted input" frame and time stamps. Server-rendered; no inline script or style.
 *
 * @module
 */
import type { Child } from "hono/jsx";
import { ASSET_VERSION } from "./_static.ts";

/** Who is looking, and where. */
export interface PageCtx {
  /** Tenant name. */
  tenant: string;
  /** Base path of the tenant's pages (`/dashboard/t/{tenant}`). */
  base: string;
  /** Signed-in user's id. */
  userId: string;
  /** Signed-in user's email. */
  email: string;
  /** Roles held. */
  roles: string[];
  /** The session's CSRF token. */
  csrf: string;
  /** Current time, ms. */
  now: number;
}

const NAV: [string, string][] = [
  ["queue", "Approvals"],
  ["fleet", "Fleet"],
  ["findings", "Findings"],
  ["traces", "Traces"],
  ["evidence", "Evidence"],
  ["authority", "Authority"],
  ["policies", "Policies"],
  ["breakglass", "Break-glass"],
  ["users", "Users"],
  ["account", "Account"],
];

/** The path of a section. */
export function sectionPath(base: string, key: string): string {
  return key === "queue" ? `${base}/` : `${base}/${key}`;
}

/** The frame of a signed-in page. */
export function Page(
  props: { ctx: PageCtx; title: string; active: string; flash?: Flash | null; children?: Child },
): Child {
  const { ctx } = props;
  return (
    <Document title={`${props.title} · ${ctx.tenant} · infraveil`} csrf={ctx.csrf}>
      <a class="skip" href="#main">Skip to main content</a>
      <header class="top">
        <a class="brand" href={`${ctx.base}/`}>infraveil</a>
        <span>
          tenant <strong>{ctx.tenant}</strong>
        </span>
        <div class="who">
          <span>
            {ctx.email}
            {ctx.roles.length > 0 ? ` (${ctx.roles.join(", ")})` : ""}
          </span>
          <form class="inline" method="post" action={`${ctx.base}/logout`}>
            <input type="hidden" name="_csrf" value={ctx.csrf} />
            <button type="submit">Sign out</button>
          </form>
        </div>
      </header>
      <nav class="main" aria-label="Sections">
        <ul>
          {NAV.map(([key, label]) => (
            <li>
              <a
                href={sectionPath(ctx.base, key)}
                aria-current={key === props.active ? "page" : undefined}
              >
                {label}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main" tabindex={-1}>
        <h1>{props.title}</h1>
        {props.flash ? <FlashBox flash={props.flash} /> : null}
        {props.children}
      </main>
      <div id="announce" class="sr-only" aria-live="polite"></div>
    </Document>
  );
}

/** The HTML document around any page. */
export function Document(props: { title: string; csrf?: string; children?: Child }): Child {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        {props.csrf ? <meta name="csrf-token" content={props.csrf} /> : null}
        <title>{props.title}</title>
        <link rel="stylesheet" href={`/dashboard/static/app.css?v=${ASSET_VERSION}`} />
        <script src={`/dashboard/static/app.js?v=${ASSET_VERSION}`} defer></script>
      </head>
      <body>{props.children}</body>
    </html>
  );
}

/** A message after an action. */
export interface Flash {
  /** The text. */
  text: string;
  /** Whether it reports a failure. */
  error?: boolean;
}

/** Renders a flash message. */
export function FlashBox(props: { flash: Flash }): Child {
  return (
    <div
      class={props.flash.error ? "flash error" : "flash"}
      role={props.flash.error ? "alert" : "status"}
    >
      {props.flash.text}
    </div>
  );
}

/** A status badge; the word is always shown (color is never the only signal). */
export function Badge(props: { kind: string; children?: Child }): Child {
  return (
    <span class={`badge b-${props.kind.replace(/[^a-z-]/g, "")}`}>
      {props.children ?? props.kind}
    </span>
  );
}

/** A value with a copy button (the script copies `data-copy`; without it, select and copy). */
export function CopyField(props: { value: string; label: string }): Child {
  const id = `copy-${props.label.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  return (
    <span class="copy-field">
      <code id={id}>{props.value}</code>
      <button
        type="button"
        class="secondary"
        data-copy={props.value}
        aria-controls={id}
        aria-label={`Copy ${props.label}`}
      >
        Copy
      </button>
    </span>
  );
}

/** Text that came from an agent or from network traffic: shown as data, never as instructions. */
export function Untrusted(props: { source: string; children?: Child }): Child {
  return (
    <div class="untrusted">
      <div class="label">Untrusted input · {props.source}</div>
      {props.children}
    </div>
  );
}

/** A time stamp, with the age relative to now. */
export function Time(props: { iso: string | null | undefined; now: number }): Child {
  if (!props.iso) return <span class="muted">—</span>;
  const ms = Date.parse(props.iso);
  return (
    <time datetime={props.iso} title={props.iso}>
      {props.iso.replace("T", " ").replace(/\.\d+Z$/, "Z")}{" "}
      <span class="muted">({ago(ms, props.now)})</span>
    </time>
  );
}

/**
 * "3 min ago" / "in 2 h".
 *
 * @param ms the time
 * @param now now
 * @returns the text
 */
export function ago(ms: number, now: number): string {
  const d = Math.round((now - ms) / 1000);
  const a = Math.abs(d);
  const txt = a < 60
    ? `${a} s`
    : a < 3600
    ? `${Math.round(a / 60)} min`
    : a < 172_800
    ? `${Math.round(a / 3600)} h`
    : `${Math.round(a / 86_400)} d`;
  return d >= 0 ? `${txt} ago` : `in ${txt}`;
}

/** A short form of a hash for display (full value in the title). */
export function ShortHash(props: { value: string | null | undefined }): Child {
  if (!props.value) return <span class="muted">none</span>;
  const v = props.value;
  const short = v.replace(/^sha256:/, "").slice(0, 12);
  return <code title={v}>{v.startsWith("sha256:") ? `sha256:${short}…` : `${short}…`}</code>;
}

/** The hidden CSRF field of a form. */
export function Csrf(props: { ctx: PageCtx }): Child {
  return <input type="hidden" name="_csrf" value={props.ctx.csrf} />;
}

/** Renders a page to a full HTML document string. */
export async function render(node: Child): Promise<string> {
  const n = (await node) as { toString(): string | Promise<string> };
  return "<!DOCTYPE html>" + (await n.toString());
}
