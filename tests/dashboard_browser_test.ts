/// <reference lib="dom" />
/**
 * The dashboard in a real browser: Debian's Chromium driven by playwright-core, with a Chrome
 * DevTools virtual authenticator for passkeys. Sign up through the one-time link (registering
 * a passkey), see a pending request filed by an MCP identity over signed envelopes, approve
 * it (and see it approved through the API), reject another, open and end break-glass, copy a
 * ledger anchor; then keyboard navigation and accessible names on every page. Screenshots of
 * each page go to `.test-results/screenshots/`.
 *
 * The control plane listens on 127.0.0.1 and the browser uses `http://localhost:PORT`:
 * WebAuthn refuses IP addresses as relying-party ids, and Chromium treats localhost as a
 * secure context, so `Secure` cookies work over plain HTTP there.
 *
 * @module
 */
import assert from "node:assert/strict";
import { chromium } from "npm:playwright-core@1.65.1";
import type { BrowserContext, CDPSession, Page } from "npm:playwright-core@1.65.1";
import { generateKeyPair } from "@infraveil/trust";
import { addUser, enrollIdentity, initTenant, openSqliteStore } from "@infraveil/control";
import { ControlClient } from "@infraveil/control/client";
import { createControlPlane, memoryPasskeyStore } from "@infraveil/control/dashboard";
import { IN_CI, projectPath } from "./_harness.ts";

const CHROMIUM = "/usr/bin/chromium";
const available = (() => {
  try {
    Deno.statSync(CHROMIUM);
    return true;
  } catch {
    return false;
  }
})();
if (!available && !IN_CI) {
  console.error(
    `%cSKIP dashboard browser tests: ${CHROMIUM} not installed (apt-get install chromium)`,
    "color: yellow",
  );
}

const POLICY = `policy "production" {
  version 1
  approvals 1
  deploy {
    require_approval true
    block_paths ".env"
  }
  agent "claude" {
    allow restart, deploy, rollback
    blast_radius fleet
  }
}
`;

const SHOTS = projectPath(".test-results/screenshots/");

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: `${SHOTS}dashboard-${name}.png`, fullPage: true });
}

/** Every interactive element on the page has a non-empty accessible name (Chromium's own computation). */
async function assertNamed(cdp: CDPSession, where: string): Promise<void> {
  const { nodes } = await cdp.send("Accessibility.getFullAXTree") as {
    nodes: { ignored?: boolean; role?: { value?: string }; name?: { value?: string } }[];
  };
  const roles = new Set([
    "button",
    "link",
    "textbox",
    "searchbox",
    "combobox",
    "checkbox",
    "spinbutton",
    "radio",
    "listbox",
  ]);
  const unnamed = nodes.filter((n) =>
    !n.ignored && roles.has(String(n.role?.value)) && !String(n.name?.value ?? "").trim()
  );
  assert.deepEqual(
    unnamed.map((n) => n.role?.value),
    [],
    `${where}: controls without an accessible name`,
  );
}

/** Tab from the top of the page reaches every focusable control, starting with the skip link. */
async function assertTabReachesAll(page: Page, where: string): Promise<void> {
  await page.reload();
  const count = await page.evaluate(() => {
    const sel =
      'a[href], button:not([disabled]), input:not([type="hidden"]):not([disabled]), select, textarea, summary';
    const els = [...document.querySelectorAll<HTMLElement>(sel)].filter((e) =>
      e.offsetParent !== null || e.getClientRects().length > 0
    );
    els.forEach((e, i) => e.setAttribute("data-kbd", String(i)));
    (document.activeElement as HTMLElement | null)?.blur();
    return els.length;
  });
  const reached = new Set<string>();
  let first: string | null = null;
  for (let i = 0; i < count + 3; i++) {
    await page.keyboard.press("Tab");
    const k = await page.evaluate(() => {
      const a = document.activeElement as HTMLElement | null;
      return a ? `${a.getAttribute("data-kbd")}|${a.textContent?.trim().slice(0, 30)}` : "none";
    });
    first ??= k;
    reached.add(k.split("|")[0]);
  }
  assert.match(first!, /\|Skip to main content$/, `${where}: the first Tab stop is the skip link`);
  const missed = [...Array(count).keys()].map(String).filter((i) => !reached.has(i));
  assert.deepEqual(missed, [], `${where}: Tab never reached controls ${missed.join(", ")}`);
}

Deno.test({
  name:
    "dashboard in Chromium: sign up with a passkey, approve and reject, break-glass, copy an anchor, keyboard",
  ignore: !available && !IN_CI,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    if (!available) {
      throw new Error(`CI=true but ${CHROMIUM} is missing (apt-get install chromium)`);
    }
    await Deno.mkdir(SHOTS, { recursive: true });
    const dir = await Deno.makeTempDir({ prefix: "infraveil-dash-" });
    const store = await openSqliteStore(`${dir}/control.db`);
    const keys = generateKeyPair();
    const { signupToken, adminId } = await initTenant(store, {
      tenant: "acme",
      adminEmail: "admin@acme.test",
      policyText: POLICY,
    });
    const mcpKey = generateKeyPair();
    const agentKey = generateKeyPair();
    await store.tx(async (tx) => {
      await tx.assignRole("acme", { subjectKind: "user", subject: adminId, role: "breakglass" });
      // The MCP identity's operator must be a user of the tenant.
      await addUser(tx, "acme", {
        email: "ops@acme.test",
        actor: "control",
        now: Date.now(),
        random: (b) => crypto.getRandomValues(b),
      });
      await enrollIdentity(tx, "acme", {
        name: "claude",
        kind: "mcp",
        publicKey: mcpKey.publicKey,
        operator: "ops@acme.test",
        actor: "control",
        now: Date.now(),
        via: "test",
      });
      await enrollIdentity(tx, "acme", {
        name: "web-1",
        kind: "agent",
        publicKey: agentKey.publicKey,
        operator: null,
        environment: "production",
        service: "api",
        actor: "control",
        now: Date.now(),
        via: "test",
      });
    });
    let handler: (r: Request) => Response | Promise<Response> = () =>
      new Response("starting", { status: 503 });
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (r) => handler(r));
    const port = server.addr.port;
    const origin = `http://localhost:${port}`;
    const app = createControlPlane({
      store,
      keys,
      passkeys: memoryPasskeyStore(),
      origin,
      publicUrl: origin,
    });
    handler = (r) => app.fetch(r);
    const client = (name: string, kind: "mcp" | "agent", key: typeof mcpKey) =>
      new ControlClient({
        baseUrl: `http://127.0.0.1:${port}`,
        identity: { tenant: "acme", name, kind, kid: key.kid, privateKey: key.privateKey },
        controlPublicKey: keys.publicKey,
      });
    const mcp = client("claude", "mcp", mcpKey);
    const agent = client("web-1", "agent", agentKey);
    const anchor = `42:${"7f".repeat(32)}`;
    await agent.heartbeat({
      version: "1.4.1",
      policy_hash: "sha256:0000",
      health: { ok: true, load: 0.4 },
      anchor,
    });
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const t0 = Date.now() - 5000;
    await agent.shipTraces([
      {
        trace_id: traceId,
        span_id: "00f067aa0ba902b7",
        name: "POST /checkout",
        service: "api",
        start_ms: t0,
        duration_ms: 120,
        status: 502,
      },
      {
        trace_id: traceId,
        span_id: "10f067aa0ba902b7",
        parent_span_id: "00f067aa0ba902b7",
        name: "SELECT orders",
        service: "db",
        start_ms: t0 + 10,
        duration_ms: 45,
        status: 0,
      },
      {
        trace_id: traceId,
        span_id: "20f067aa0ba902b7",
        parent_span_id: "00f067aa0ba902b7",
        name: "POST /payments",
        service: "pay",
        start_ms: t0 + 60,
        duration_ms: 50,
        status: 502,
      },
    ]);
    await agent.shipFindings([
      {
        fingerprint: "sqli-1",
        category: "sqli",
        severity: "high",
        title: "SQL injection attempt in ?q= (blocked)",
        service: "api",
      },
    ]);

    const context: BrowserContext = await chromium.launchPersistentContext(`${dir}/chromium`, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
      viewport: { width: 1280, height: 900 },
    });
    const problems: string[] = [];
    try {
      await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin });
      const page = context.pages()[0] ?? await context.newPage();
      page.on("console", (m) => {
        if (m.type() === "error") problems.push(m.text());
      });
      page.on("pageerror", (e) => problems.push(String(e)));
      page.on("response", (r) => {
        if (r.status() >= 400 && !r.url().endsWith("/favicon.ico")) {
          problems.push(`${r.status()} ${r.request().method()} ${r.url()}`);
        }
      });
      const cdp = await context.newCDPSession(page);
      await cdp.send("WebAuthn.enable");
      const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
        options: {
          protocol: "ctap2",
          transport: "internal",
          hasResidentKey: true,
          hasUserVerification: true,
          isUserVerified: true,
        },
      }) as { authenticatorId: string };
      const base = `${origin}/dashboard/t/acme`;

      await t.step("sign up through the one-time link and register a passkey", async () => {
        await page.goto(`${origin}/signup?tenant=acme&token=${encodeURIComponent(signupToken)}`);
        await shot(page, "signup");
        await assertNamed(cdp, "signup");
        await page.getByLabel("Your name").fill("Ada Admin");
        await page.getByRole("button", { name: "Create passkey and sign up" }).click();
        await page.waitForURL(`${base}/?done=welcome`);
        const creds = await cdp.send("WebAuthn.getCredentials", { authenticatorId }) as {
          credentials: unknown[];
        };
        assert.equal(creds.credentials.length, 1);
        const cookies = await context.cookies(origin);
        const session = cookies.find((c) => c.name === "__Host-infraveil-session")!;
        assert.ok(session.httpOnly && session.secure && session.sameSite === "Strict");
      });

      let approveId = "", rejectId = "";
      await t.step("see pending requests filed by the MCP identity", async () => {
        const a = await mcp.requestDeploy({
          environment: "production",
          service: "api",
          targets: ["web-1"],
          files: ["src/app.ts", "src/routes/checkout.ts"],
          params: { version: "1.4.2", finding_id: "fnd_demo" },
          reason: "Fix the 502s on checkout seen in trace 4bf92f35",
        });
        const b = await mcp.requestDeploy({
          environment: "production",
          service: "api",
          targets: ["web-1"],
          files: ["src/app.ts"],
          params: { version: "1.5.0-rc1" },
        });
        assert.equal(a.status, "pending");
        approveId = a.request_id;
        rejectId = b.request_id;
        await page.goto(`${base}/`);
        await page.getByRole("heading", { name: new RegExp(approveId) }).waitFor();
        assert.match(await page.content(), /0 of 1/);
        await shot(page, "queue");
        await assertNamed(cdp, "queue");
        await assertTabReachesAll(page, "queue");
      });

      await t.step("approve with a passkey; the API shows the request approved", async () => {
        await page.getByRole("form", { name: `Approve request ${approveId}` }).getByLabel(
          "Comment (approve, optional)",
        ).fill("Plan matches the incident.");
        await page.getByRole("form", { name: `Approve request ${approveId}` }).getByRole("button", {
          name: "Approve with passkey",
        }).click();
        await page.waitForURL(`${base}/requests/${approveId}?done=approved`);
        assert.equal((await mcp.getRequest(approveId)).status, "approved");
        assert.match(await page.content(), /Passkey proofs stored with the votes/);
        await shot(page, "request-approved");
        await assertNamed(cdp, "request");
      });

      await t.step("reject another with a passkey", async () => {
        await page.goto(`${base}/requests/${rejectId}`);
        await page.getByRole("form", { name: `Reject request ${rejectId}` }).getByRole("button", {
          name: "Reject with passkey",
        }).click();
        await page.waitForURL(`${base}/requests/${rejectId}?done=rejected`);
        assert.equal((await mcp.getRequest(rejectId)).status, "rejected");
      });

      await t.step("fleet: drift highlighted; copy the anchor", async () => {
        await page.goto(`${base}/fleet`);
        const copy = page.getByRole("button", { name: "Copy anchor of web-1" });
        assert.equal(await copy.getAttribute("data-copy"), anchor);
        await copy.click();
        await page.getByRole("button", { name: "Copy anchor of web-1" }).filter({
          hasText: "Copied",
        }).waitFor();
        assert.equal(await page.evaluate(() => navigator.clipboard.readText()), anchor);
        assert.equal(await page.locator("tr.drift").count(), 1);
        await shot(page, "fleet");
        await assertNamed(cdp, "fleet");
        await assertTabReachesAll(page, "fleet");
      });

      await t.step("open, watch and end break-glass", async () => {
        await page.goto(`${base}/breakglass`);
        await page.getByLabel("Justification (at least 10 characters)").fill(
          "Checkout is down; restarts needed now",
        );
        await page.getByLabel("Actions (comma-separated)").fill("restart");
        await page.getByLabel("Duration (minutes)").fill("30");
        await page.getByRole("button", { name: "Open break-glass session" }).click();
        await page.waitForURL(/\/breakglass\/bg_[0-9a-f]+\?done=bg-opened$/);
        await page.getByText("open", { exact: true }).first().waitFor();
        await shot(page, "breakglass-open");
        await assertNamed(cdp, "breakglass session");
        await page.getByRole("button", { name: "End break-glass now" }).click();
        await page.waitForURL(/\?done=bg-closed$/);
        const sessions = await store.tx((tx) => tx.listBreakGlass("acme", 10));
        assert.equal(sessions.length, 1);
        assert.notEqual(sessions[0].closedAt, null);
        await page.getByText("ended, review needed").first().waitFor();
        await shot(page, "breakglass-ended");
      });

      await t.step("every other page renders, is labelled and keyboard-reachable", async () => {
        const pages: [string, string][] = [
          ["findings", `${base}/findings?sev=high`],
          ["traces", `${base}/traces`],
          ["trace", `${base}/traces/${traceId}`],
          ["evidence", `${base}/evidence`],
          ["authority", `${base}/authority?request=${approveId}&user=admin%40acme.test`],
          ["policies", `${base}/policies`],
          ["breakglass", `${base}/breakglass`],
          ["users", `${base}/users`],
          ["account", `${base}/account`],
          ["request-rejected", `${base}/requests/${rejectId}`],
        ];
        for (const [name, url] of pages) {
          const res = await page.goto(url);
          assert.equal(res?.status(), 200, name);
          await shot(page, name);
          await assertNamed(cdp, name);
          await assertTabReachesAll(page, name);
        }
        // The skip link moves focus to the main content.
        await page.goto(`${base}/fleet`);
        await page.keyboard.press("Tab");
        await page.keyboard.press("Enter");
        assert.equal(await page.evaluate(() => document.activeElement?.id), "main");
      });

      assert.deepEqual(
        problems.filter((p) => !/^Failed to load resource/.test(p)),
        [],
        "no console errors, CSP violations or failed requests",
      );
    } finally {
      await context.close();
      await server.shutdown();
      await store.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
