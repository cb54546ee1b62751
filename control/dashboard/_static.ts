/**
 * The dashboard's only script and stylesheet, served from the control plane itself under a
 * strict CSP (`script-src 'self'`, `style-src 'self'`, no inline code). They are kept here as
 * module constants so they travel with the package (and `deno compile`) without file reads.
 *
 * The script is progressive enhancement: pages work without it except the passkey
 * ceremonies, which need `navigator.credentials`. It does the WebAuthn calls by hand (the
 * base64url conversions around `navigator.credentials.create/get`, producing the JSON shape
 * `@simplewebauthn/server` verifies), copy buttons, and polling of live regions.
 *
 * @module
 */
import { encodeHex, sha256 } from "@infraveil/trust";

/** The browser script (no template literals, no `${`: kept verbatim). */
export const APP_JS: string = String
  .raw`// infraveil dashboard: passkeys, copy buttons, live regions. No inline code anywhere.
"use strict";
(function () {
  function enc(buf) {
    var b = new Uint8Array(buf), s = "";
    for (var i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function dec(str) {
    var s = atob(str.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((str.length + 3) % 4));
    var b = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
    return b.buffer;
  }
  function csrf() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute("content") : "";
  }
  async function post(url, body) {
    var res = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json", "x-csrf-token": csrf() },
      body: JSON.stringify(body),
    });
    var data = {};
    try { data = await res.json(); } catch (_e) { data = {}; }
    if (!res.ok) throw new Error((data.error && data.error.message) || ("HTTP " + res.status));
    return data;
  }
  function creds(list) {
    return (list || []).map(function (c) { return Object.assign({}, c, { id: dec(c.id) }); });
  }
  async function createCredential(o) {
    var publicKey = Object.assign({}, o, {
      challenge: dec(o.challenge),
      user: Object.assign({}, o.user, { id: dec(o.user.id) }),
      excludeCredentials: creds(o.excludeCredentials),
    });
    var cred = await navigator.credentials.create({ publicKey: publicKey });
    var r = cred.response;
    return {
      id: cred.id, rawId: enc(cred.rawId), type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults(),
      response: {
        clientDataJSON: enc(r.clientDataJSON),
        attestationObject: enc(r.attestationObject),
        transports: r.getTransports ? r.getTransports() : [],
      },
    };
  }
  async function getAssertion(o) {
    var publicKey = Object.assign({}, o, { challenge: dec(o.challenge), allowCredentials: creds(o.allowCredentials) });
    var cred = await navigator.credentials.get({ publicKey: publicKey });
    var r = cred.response;
    return {
      id: cred.id, rawId: enc(cred.rawId), type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults(),
      response: {
        clientDataJSON: enc(r.clientDataJSON),
        authenticatorData: enc(r.authenticatorData),
        signature: enc(r.signature),
        userHandle: r.userHandle ? enc(r.userHandle) : undefined,
      },
    };
  }
  function say(form, text, isError) {
    var el = form.querySelector(".status");
    if (!el) return;
    el.textContent = text;
    el.classList.toggle("error", !!isError);
  }
  function fields(form) {
    var out = {};
    new FormData(form).forEach(function (v, k) { if (k !== "_csrf") out[k] = String(v); });
    return out;
  }
  var flows = {
    signup: async function (form, f) {
      var start = await post(form.dataset.options, f);
      say(form, "Touch your authenticator to create the passkey…");
      var response = await createCredential(start.options);
      return post(form.dataset.verify, Object.assign(f, { state: start.state, response: response }));
    },
    register: async function (form, f) {
      var start = await post(form.dataset.options, f);
      say(form, "Touch your authenticator to create the passkey…");
      var response = await createCredential(start.options);
      return post(form.dataset.verify, Object.assign(f, { state: start.state, response: response }));
    },
    login: async function (form, f) {
      var start = await post(form.dataset.options, f);
      say(form, "Touch your authenticator to sign in…");
      var response = await getAssertion(start.options);
      return post(form.dataset.verify, { state: start.state, response: response });
    },
    vote: async function (form, f) {
      var decision = form.dataset.decision;
      var start = await post(form.dataset.options, { decision: decision });
      say(form, "Touch your authenticator to " + decision + " (challenge bound to " + start.action_hash + ")…");
      var response = await getAssertion(start.options);
      return post(form.action, { nonce: start.nonce, response: response, comment: f.comment || "" });
    },
  };
  document.addEventListener("submit", async function (ev) {
    var form = ev.target;
    var flow = form && form.dataset ? flows[form.dataset.passkey] : undefined;
    if (!flow) return;
    ev.preventDefault();
    if (!window.PublicKeyCredential) { say(form, "This browser does not support passkeys.", true); return; }
    var buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    try {
      var out = await flow(form, fields(form));
      say(form, out.message || "Done.");
      if (out.redirect) window.location.assign(out.redirect);
    } catch (e) {
      say(form, (e && e.message) || String(e), true);
    } finally {
      buttons.forEach(function (b) { b.disabled = false; });
    }
  });
  document.addEventListener("click", async function (ev) {
    var btn = ev.target && ev.target.closest ? ev.target.closest("button[data-copy]") : null;
    if (!btn) return;
    var value = btn.getAttribute("data-copy");
    var live = document.getElementById("announce");
    try {
      await navigator.clipboard.writeText(value);
      btn.textContent = "Copied";
      if (live) live.textContent = "Copied " + value;
    } catch (_e) {
      var target = document.getElementById(btn.getAttribute("aria-controls") || "");
      if (target) window.getSelection().selectAllChildren(target);
      if (live) live.textContent = "Selected; press Ctrl+C to copy";
    }
    setTimeout(function () { btn.textContent = "Copy"; }, 2000);
  });
  document.querySelectorAll("[data-poll]").forEach(function (el) {
    var seconds = Math.max(5, Number(el.getAttribute("data-poll")) || 15);
    setInterval(async function () {
      if (document.hidden || el.contains(document.activeElement)) return;
      try {
        var res = await fetch(window.location.href, { credentials: "same-origin" });
        if (!res.ok) return;
        var doc = new DOMParser().parseFromString(await res.text(), "text/html");
        var next = doc.getElementById(el.id);
        if (next) el.replaceChildren.apply(el, Array.from(next.childNodes).map(function (n) { return document.importNode(n, true); }));
      } catch (_e) { /* keep the current view */ }
    }, seconds * 1000);
  });
})();
`;

/** The stylesheet. */
export const APP_CSS: string = `:root {
  --ink: #1b2130; --muted: #5b6474; --line: #d9dee7; --bg: #f6f7f9; --card: #fff;
  --accent: #1f5fbf; --accent-ink: #fff; --ok: #1d7a46; --warn: #8a5a00; --bad: #b42318;
  --warn-bg: #fff4dc; --bad-bg: #fde8e6; --ok-bg: #e3f4ea; --info-bg: #e8effb; --focus: #f2b705;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); }
a { color: var(--accent); }
code, pre, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 0.9em; }
pre { background: #0f1420; color: #e8ecf3; padding: 0.8rem; border-radius: 6px; overflow: auto; }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.skip { position: absolute; left: -999px; top: 0; background: var(--focus); color: #000; padding: 0.5rem 1rem; z-index: 10; }
.skip:focus { left: 0.5rem; top: 0.5rem; }
header.top { background: #131a29; color: #fff; padding: 0.6rem 1.2rem; display: flex; align-items: center; gap: 1.2rem; flex-wrap: wrap; }
header.top .brand { font-weight: 700; letter-spacing: 0.02em; color: #fff; text-decoration: none; }
header.top .who { margin-left: auto; display: flex; gap: 0.8rem; align-items: center; color: #c9d1e0; font-size: 0.9rem; }
header.top .who button { background: transparent; color: #fff; border: 1px solid #55607a; }
nav.main { background: #1c2538; padding: 0 1.2rem; }
nav.main ul { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; }
nav.main a { display: block; color: #d5dcea; text-decoration: none; padding: 0.55rem 0.8rem; border-bottom: 3px solid transparent; }
nav.main a[aria-current="page"] { color: #fff; border-bottom-color: var(--focus); font-weight: 600; }
nav.main a:hover { color: #fff; }
main { max-width: 1200px; margin: 0 auto; padding: 1.2rem; }
main:focus { outline: none; }
h1 { font-size: 1.5rem; margin: 0.2rem 0 1rem; }
h2 { font-size: 1.15rem; margin: 1.4rem 0 0.6rem; }
h3 { font-size: 1rem; margin: 0.8rem 0 0.4rem; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 1rem 1.2rem; margin: 0 0 1rem; }
.card > h2:first-child, .card > h3:first-child { margin-top: 0; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(380px, 1fr)); gap: 0.8rem 1.6rem; }
ul.files { margin: 0; padding-left: 1rem; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 0.25rem 1rem; margin: 0; }
dl.kv dt { color: var(--muted); }
dl.kv dd { margin: 0; overflow-wrap: anywhere; }
table { width: 100%; border-collapse: collapse; background: var(--card); border: 1px solid var(--line); border-radius: 8px; margin-bottom: 1rem; }
td code, td .mono { overflow-wrap: anywhere; word-break: break-word; }
td.num, th.num, td.num code { white-space: nowrap; word-break: normal; }
time { white-space: nowrap; }
td.data { max-width: 40rem; }
th, td { text-align: left; padding: 0.45rem 0.6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #eef1f6; font-weight: 600; font-size: 0.9rem; }
tr.drift td, tr.stale td { background: var(--warn-bg); }
.badge { display: inline-block; padding: 0.05rem 0.5rem; border-radius: 999px; font-size: 0.8rem; font-weight: 600; border: 1px solid transparent; white-space: nowrap; }
.b-pending, .b-stale, .b-drift, .b-medium, .b-active { background: var(--warn-bg); color: var(--warn); border-color: #f0d9a8; }
.b-approved, .b-allowed, .b-executed, .b-ok, .b-low, .b-current, .b-reviewed { background: var(--ok-bg); color: var(--ok); border-color: #b9e0c8; }
.b-rejected, .b-denied, .b-failed, .b-high, .b-critical, .b-deny, .b-review-needed { background: var(--bad-bg); color: var(--bad); border-color: #f3c1bb; }
.b-expired, .b-superseded, .b-ended, .b-resolved, .b-proposed, .b-info { background: var(--info-bg); color: #24426f; border-color: #c7d6ef; }
.untrusted { border: 2px dashed #d98a00; background: #fffaf0; border-radius: 6px; padding: 0.6rem 0.8rem; margin: 0.6rem 0; }
.untrusted > .label { font-weight: 700; color: var(--warn); font-size: 0.85rem; text-transform: uppercase; letter-spacing: 0.04em; }
.untrusted blockquote { margin: 0.3rem 0 0; white-space: pre-wrap; overflow-wrap: anywhere; }
.reasons { margin: 0.3rem 0; padding-left: 1.2rem; }
.reasons .rule { color: var(--muted); font-size: 0.85rem; }
form.inline { display: inline; }
form.row, form .row { display: flex; flex-wrap: wrap; gap: 0.6rem 1rem; align-items: flex-end; margin-bottom: 0.6rem; }
form .field { display: flex; flex-direction: column; gap: 0.2rem; }
label { font-weight: 600; font-size: 0.9rem; }
input[type="text"], input[type="email"], input[type="number"], input[type="search"], select, textarea {
  font: inherit; padding: 0.4rem 0.5rem; border: 1px solid #aeb6c4; border-radius: 5px; background: #fff; min-width: 12rem;
}
textarea { width: 100%; min-height: 4rem; }
fieldset { border: 1px solid var(--line); border-radius: 6px; }
button, .button { font: inherit; font-weight: 600; padding: 0.45rem 0.9rem; border-radius: 5px; border: 1px solid var(--accent); background: var(--accent); color: var(--accent-ink); cursor: pointer; text-decoration: none; display: inline-block; }
button.secondary, .button.secondary { background: #fff; color: var(--accent); }
button.danger { background: var(--bad); border-color: var(--bad); }
button.approve { background: var(--ok); border-color: var(--ok); }
button:disabled { opacity: 0.6; cursor: wait; }
.votes { display: flex; flex-wrap: wrap; gap: 1rem; margin-top: 0.8rem; }
.votes form { flex: 1 1 300px; border: 1px solid var(--line); border-radius: 6px; padding: 0.6rem 0.8rem; background: #fbfcfe; }
.status { min-height: 1.2em; font-size: 0.9rem; color: var(--muted); margin: 0.3rem 0 0; }
.status.error { color: var(--bad); font-weight: 600; }
.flash { border-radius: 6px; padding: 0.6rem 0.9rem; margin-bottom: 1rem; background: var(--ok-bg); border: 1px solid #b9e0c8; }
.flash.error { background: var(--bad-bg); border-color: #f3c1bb; }
.muted { color: var(--muted); }
.copy-field { display: inline-flex; align-items: center; gap: 0.4rem; max-width: 100%; }
.copy-field code { background: #eef1f6; padding: 0.1rem 0.35rem; border-radius: 4px; overflow-wrap: anywhere; }
.copy-field button { padding: 0.15rem 0.6rem; font-size: 0.85rem; }
.progress { display: inline-flex; gap: 0.2rem; vertical-align: middle; }
.progress .pip { width: 0.8rem; height: 0.8rem; border-radius: 50%; border: 2px solid var(--ok); }
.progress .pip.on { background: var(--ok); }
svg.bar { width: 100%; height: 14px; display: block; }
svg.bar rect.span { fill: var(--accent); }
svg.bar rect.err { fill: var(--bad); }
svg.bar rect.track { fill: #eef1f6; }
.path { display: flex; flex-wrap: wrap; gap: 0.3rem; align-items: center; list-style: none; padding: 0; margin: 0.3rem 0; }
.path li { background: var(--info-bg); border: 1px solid #c7d6ef; border-radius: 4px; padding: 0.05rem 0.45rem; font-size: 0.88rem; }
.path li + li::before { content: "→ "; color: var(--muted); }
.pager { margin-top: 0.8rem; display: flex; gap: 1rem; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
footer { max-width: 1200px; margin: 0 auto; padding: 0 1.2rem 2rem; color: var(--muted); font-size: 0.85rem; }
.narrow { max-width: 34rem; margin: 3rem auto; }
`;

/** Content hashes, for cache-busting URLs. */
export const ASSET_VERSION: string = encodeHex(sha256(APP_JS + APP_CSS)).slice(0, 12);
