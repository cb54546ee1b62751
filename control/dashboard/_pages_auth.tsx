/** @jsxImportSource hono/jsx */
/**
 * Pages shown before sign-in: the one-time sign-up link's page (register a passkey), the
 * passkey sign-in, the tenant chooser and error pages.
 *
 * @module
 */
import type { Child } from "hono/jsx";
import { Document, type Flash, FlashBox } from "./_layout.tsx";

function Frame(props: { title: string; children?: Child }): Child {
  return (
    <Document title={`${props.title} · infraveil`}>
      <a class="skip" href="#main">Skip to main content</a>
      <header class="top">
        <a class="brand" href="/dashboard">infraveil</a>
      </header>
      <main id="main" tabindex={-1} class="narrow">
        <h1>{props.title}</h1>
        {props.children}
      </main>
    </Document>
  );
}

/** The sign-up page of a one-time link. */
export function SignupPage(props: { tenant: string; token: string; email: string }): Child {
  const base = `/dashboard/t/${encodeURIComponent(props.tenant)}/signup`;
  return (
    <Frame title="Sign up">
      <form
        class="card"
        method="post"
        action={`${base}/verify`}
        data-passkey="signup"
        data-options={`${base}/options`}
        data-verify={`${base}/verify`}
        aria-label="Sign up with a passkey"
      >
        <p>
          You were invited to tenant <strong>{props.tenant}</strong> as{" "}
          <strong>{props.email}</strong>. Create a passkey on this device: it is how you sign in and
          how you approve.
        </p>
        <input type="hidden" name="token" value={props.token} />
        <div class="field">
          <label for="display-name">Your name</label>
          <input
            id="display-name"
            name="display_name"
            type="text"
            maxlength={100}
            autocomplete="name"
          />
        </div>
        <p>
          <button type="submit">Create passkey and sign up</button>
        </p>
        <p class="status" role="status" aria-live="polite"></p>
        <noscript>
          <p class="status error">Passkeys need JavaScript.</p>
        </noscript>
      </form>
    </Frame>
  );
}

/** The sign-in page of a tenant. */
export function LoginPage(props: { tenant: string; flash: Flash | null; next?: string }): Child {
  const base = `/dashboard/t/${encodeURIComponent(props.tenant)}/login`;
  const next = props.next ? `?next=${encodeURIComponent(props.next)}` : "";
  return (
    <Frame title={`Sign in to ${props.tenant}`}>
      {props.flash ? <FlashBox flash={props.flash} /> : null}
      <form
        class="card"
        method="post"
        action={`${base}/verify${next}`}
        data-passkey="login"
        data-options={`${base}/options`}
        data-verify={`${base}/verify${next}`}
        aria-label="Sign in with a passkey"
      >
        <p>Use the passkey you created when you signed up.</p>
        <p>
          <button type="submit">Sign in with passkey</button>
        </p>
        <p class="status" role="status" aria-live="polite"></p>
      </form>
      <p class="muted">No passkey? Ask an admin of {props.tenant} for a new sign-up link.</p>
    </Frame>
  );
}

/** Asks which tenant to sign in to. */
export function ChooserPage(): Child {
  return (
    <Frame title="Sign in">
      <form class="card" method="get" action="/dashboard/login" aria-label="Choose a tenant">
        <div class="field">
          <label for="tenant">Tenant</label>
          <input
            id="tenant"
            name="tenant"
            type="text"
            required
            pattern="[a-z0-9][a-z0-9\-]{0,62}"
            autocomplete="organization"
          />
        </div>
        <p>
          <button type="submit">Continue</button>
        </p>
      </form>
    </Frame>
  );
}

/** An error page. */
export function ErrorPage(props: { title: string; message: string; back?: string }): Child {
  return (
    <Frame title={props.title}>
      <FlashBox flash={{ text: props.message, error: true }} />
      <p>
        <a href={props.back ?? "/dashboard"}>Back</a>
      </p>
    </Frame>
  );
}
