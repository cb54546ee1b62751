/**
 * End to end: `infraveil mcp` (mcp/main.ts, with only its own permissions) spawned over stdio
 * from both SDK client generations, against the real control plane on loopback; hostile
 * stand-ins for the control plane (another key, unsigned, replaying) are refused; and the MCP
 * identity's key cannot approve anything anywhere.
 */
import assert from "node:assert/strict";
import { ControlClientError } from "@infraveil/control/client";
import { generateKeyPair, signEnvelope } from "@infraveil/trust";
import { connect, GENERATIONS, type ReceivedResult, type TestClient } from "./_testing_clients.ts";
import { startTamperingProxy, type Tamper } from "./_testing_proxies.ts";
import { INJECTION, mcpRunArgs, startWorld, type World, WORLD_TRACE_ID } from "./_testing_world.ts";
import { TOOL_NAMES } from "./tools.ts";

const OPTS = { sanitizeOps: false, sanitizeResources: false };

function text(r: ReceivedResult): string {
  return r.content.map((c) => c.text ?? "").join("\n");
}

function spawnMcp(
  generation: (typeof GENERATIONS)[number],
  world: World,
  baseUrl = world.url,
): Promise<TestClient> {
  return connect(generation, {
    args: mcpRunArgs(baseUrl, world.identityFile),
    env: { INFRAVEIL_BASE_URL: baseUrl, INFRAVEIL_AGENT_FILE: world.identityFile },
  });
}

const DEPLOY = {
  service: "checkout",
  version: "1.4.2",
  targets: ["web-1"],
  files: ["src/login.ts"],
  environment: "production",
};

for (const generation of GENERATIONS) {
  Deno.test({
    name: `infraveil mcp serves a ${generation} client every tool against the real control plane`,
    ...OPTS,
    fn: async () => {
      const world = await startWorld();
      const client = await spawnMcp(generation, world);
      try {
        assert.equal(client.protocolVersion, generation);
        assert.deepEqual((await client.listTools()).map((t) => t.name), [...TOOL_NAMES]);
        const call = async (name: string, args: Record<string, unknown>) => {
          const r = await client.callTool(name, args);
          assert.equal(r.isError, undefined, `${name}: ${text(r)}`);
          return r.structuredContent as Record<string, unknown>;
        };

        const fleet = await call("fleet_status", {});
        assert.equal(fleet.active_policy_hash, world.policyHash);
        const hosts = fleet.hosts as { name: string; version: string; policy_current: boolean }[];
        assert.deepEqual(hosts.map((h) => [h.name, h.version, h.policy_current]), [[
          "web-1",
          "1.4.1",
          true,
        ]]);

        const findingsResult = await client.callTool("list_findings", { min_severity: "medium" });
        const findings = findingsResult.structuredContent as {
          findings: { category: string; title: string }[];
          trust: { untrusted: boolean };
        };
        assert.equal(findings.findings.length, 1);
        assert.equal(findings.findings[0].category, "sqli");
        assert.equal(findings.trust.untrusted, true);
        const ft = text(findingsResult);
        const open = ft.indexOf("<untrusted-data");
        assert.ok(open > 0 && ft.indexOf(INJECTION) > open, "traffic text sits inside the fence");
        assert.match(ft.slice(0, open), /UNTRUSTED CONTENT/);

        const spans = await call("query_traces", { service: "checkout", min_status: 400 });
        assert.equal((spans.spans as unknown[]).length, 2);
        assert.equal((spans.trust as { untrusted: boolean }).untrusted, true);
        const trace = await call("get_trace", { trace_id: WORLD_TRACE_ID });
        assert.equal((trace.trace as { spans: unknown[] }).spans.length, 2);

        const dry = await call("check_policy", { action: "deploy", ...DEPLOY, version: undefined });
        assert.equal(dry.decision, "approval_required");
        assert.equal(dry.policy_hash, world.policyHash);
        const dryDeny = await call("check_policy", {
          action: "deploy",
          targets: ["web-1"],
          files: [".env"],
        });
        assert.equal(dryDeny.decision, "deny");
        assert.match(JSON.stringify(dryDeny.reasons), /deploy\.block_paths/);

        const reason = `fix the login check (${generation})`;
        const pending = await call("request_deploy", { ...DEPLOY, reason });
        assert.equal(pending.status, "pending");
        assert.equal(pending.approvals_needed, 1);
        assert.ok(
          String(pending.dashboard_url).startsWith(`${world.publicUrl}/dashboard/t/acme/requests/`),
          String(pending.dashboard_url),
        );
        const denied = await call("request_deploy", { ...DEPLOY, files: [".env"], reason });
        assert.equal(denied.status, "denied");
        assert.match(JSON.stringify(denied.reasons), /\.env/);
        const allowed = await call("request_restart", {
          service: "checkout",
          targets: ["web-1"],
          reason,
        });
        assert.equal(allowed.status, "allowed");
        const rollback = await call("request_rollback", { ...DEPLOY, version: "1.4.0", reason });
        assert.equal(rollback.status, "pending");
        const remediation = await call("request_remediation", {
          service: "checkout",
          category: "sqli",
          targets: ["web-1"],
          reason,
        });
        assert.equal(remediation.status, "pending");
        const blocked = await call("request_remediation", {
          service: "checkout",
          category: "auth",
          targets: ["web-1"],
          reason,
        });
        assert.equal(blocked.status, "denied");

        const status = await call("get_request_status", { request_id: pending.request_id });
        assert.equal(status.status, "pending");
        assert.equal((status.action as { params: { version: string } }).params.version, "1.4.2");
        assert.equal((status.action as { agent: string }).agent, "claude");
        const list = await call("list_requests", { status: "pending" });
        const ids = (list.requests as { request_id: string }[]).map((r) => r.request_id);
        for (const r of [pending, rollback, remediation]) {
          assert.ok(ids.includes(r.request_id as string));
        }

        // Errors are isError results with a way forward, and the server keeps serving.
        const missing = await client.callTool("get_request_status", { request_id: "req_missing" });
        assert.equal(missing.isError, true);
        assert.match(text(missing), /list_requests/);
        const badTrace = await client.callTool("get_trace", { trace_id: "0".repeat(32) });
        assert.equal(badTrace.isError, true);
        assert.match(text(badTrace), /query_traces/);
        const refusedArgs = await client.callTool("request_deploy", {
          ...DEPLOY,
          files: ["../x"],
          reason,
        });
        assert.equal(refusedArgs.isError, true);
        assert.match(text(refusedArgs), /files/);
        await call("fleet_status", {});
        assert.doesNotMatch(client.stderr(), /^\{/m, "stderr carries logs, not protocol");
      } finally {
        await client.close();
        await world.close();
      }
    },
  });
}

Deno.test({
  name: "responses from a fake control plane, unsigned or replayed are errors, never data",
  ...OPTS,
  fn: async (t) => {
    const world = await startWorld();
    const other = generateKeyPair();
    const cases: [string, Tamper, RegExp][] = [
      [
        "signed by another key",
        { kind: "forge", key: other },
        /unknown or revoked key.*BAD_RESPONSE_SIGNATURE/s,
      ],
      [
        "signed by another key under the pinned key id",
        { kind: "forge", key: other, kid: world.controlKey.kid },
        /does not verify.*BAD_RESPONSE_SIGNATURE/s,
      ],
      ["unsigned", { kind: "unsigned" }, /BAD_RESPONSE/],
    ];
    try {
      for (const [label, tamper, re] of cases) {
        await t.step(label, async () => {
          const proxy = startTamperingProxy(world.url, tamper);
          const client = await spawnMcp("2025-11-25", world, proxy.url);
          try {
            for (
              const [name, args] of [
                ["fleet_status", {}],
                ["list_findings", {}],
                ["request_restart", { service: "checkout", targets: ["web-1"], reason: label }],
              ] as const
            ) {
              const r = await client.callTool(name, args);
              assert.equal(r.isError, true, `${name}: ${text(r)}`);
              assert.equal(r.structuredContent, undefined);
              assert.match(text(r), /failed verification and was discarded, not used/);
              assert.match(text(r), re);
              // Nothing of the forged reply reaches the AI agent.
              assert.doesNotMatch(text(r), /web-1"|sqli|req_/);
            }
            assert.ok(proxy.tampered() >= 3);
          } finally {
            await client.close();
            await proxy.close();
          }
        });
      }

      await t.step("replayed", async () => {
        const proxy = startTamperingProxy(world.url, { kind: "replay" });
        const client = await spawnMcp("2026-07-28", world, proxy.url);
        try {
          const first = await client.callTool("fleet_status", {});
          assert.equal(first.isError, undefined, text(first));
          const again = await client.callTool("fleet_status", {});
          assert.equal(again.isError, true);
          assert.equal(again.structuredContent, undefined);
          assert.match(text(again), /REPLAYED_RESPONSE|WRONG_REPLY/);
          assert.equal(proxy.tampered(), 1);
        } finally {
          await client.close();
          await proxy.close();
        }
      });

      await t.step(
        "infraveil mcp --check exits 1 on a forged reply, 0 on the real one",
        async () => {
          const proxy = startTamperingProxy(world.url, { kind: "forge", key: other });
          try {
            for (
              const [url, code, re] of [[proxy.url, 1, /failed verification/], [
                world.url,
                0,
                /^ok: claude/,
              ]] as const
            ) {
              const out = await new Deno.Command(Deno.execPath(), {
                args: ["run", "--quiet", ...mcpRunArgs(url, world.identityFile), "--check"],
                env: { INFRAVEIL_BASE_URL: url, INFRAVEIL_AGENT_FILE: world.identityFile },
                stdin: "null",
              }).output();
              const stderr = new TextDecoder().decode(out.stderr);
              assert.equal(out.code, code, stderr);
              assert.match(stderr, re);
              assert.equal(out.stdout.length, 0, "stdout stays empty outside the protocol");
            }
          } finally {
            await proxy.close();
          }
        },
      );
    } finally {
      await world.close();
    }
  },
});

Deno.test({
  name: "the MCP identity's key cannot approve, reject, execute or break glass",
  ...OPTS,
  fn: async () => {
    const world = await startWorld();
    try {
      const { version: _version, ...fields } = DEPLOY;
      const created = await world.mcp.requestDeploy({
        ...fields,
        reason: "approval attempt",
        params: { version: "1.4.2" },
      });
      assert.equal(created.status, "pending");
      const id = created.request_id;

      // Signed with the MCP key through the signed API: refused for every decision.
      for (const type of ["request.approve", "request.reject"]) {
        await assert.rejects(
          world.mcp.call(type, { request_id: id }),
          (e: unknown) => e instanceof ControlClientError && e.code === "HUMAN_ONLY",
          type,
        );
      }
      // The agent-only endpoints that hand out and report executions.
      for (
        const [type, fields] of [
          ["approvals.fetch", {}],
          ["execution.report", { approval_id: "apv_x", status: "succeeded" }],
        ] as const
      ) {
        await assert.rejects(
          world.mcp.call(type, fields),
          (e: unknown) => e instanceof ControlClientError && e.code === "FORBIDDEN",
          type,
        );
      }

      // A signed envelope posted to the humans' approval endpoints.
      const iat = Math.floor(Date.now() / 1000);
      for (const path of [`/requests/${id}/approve`, `/requests/${id}/reject`, "/breakglass"]) {
        const env = signEnvelope({
          type: "request.approve",
          tenant: world.tenant,
          aud: "infraveil-control",
          iat,
          exp: iat + 60,
          nonce: crypto.randomUUID(),
          request_id: id,
        }, world.mcpKey);
        const res = await fetch(`${world.url}/v1/t/${world.tenant}${path}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(env),
        });
        const body = await res.json();
        assert.ok(res.status === 401 || res.status === 403, `${path}: ${res.status}`);
        assert.match(body.error.code, /HUMAN_ONLY|UNAUTHENTICATED/, path);
      }

      // Nothing moved: the request is still pending with its approval still needed.
      const view = await world.admin("GET", `/requests/${id}`);
      assert.equal(view.status, 200);
      assert.equal(view.json.status, "pending");
      assert.equal(view.json.approvals_needed, 1);
      assert.deepEqual(view.json.votes, []);
      assert.equal(view.json.approval, null);
    } finally {
      await world.close();
    }
  },
});

Deno.test({
  name: "infraveil mcp refuses a bad configuration with exit 2 and a fix",
  ...OPTS,
  fn: async () => {
    const world = await startWorld();
    try {
      const run = async (env: Record<string, string>) => {
        const out = await new Deno.Command(Deno.execPath(), {
          args: ["run", "--quiet", ...mcpRunArgs(world.url, world.identityFile), "--check"],
          env,
          clearEnv: true,
          stdin: "null",
        }).output();
        return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
      };
      const noFile = await run({ INFRAVEIL_BASE_URL: world.url });
      assert.equal(noFile.code, 2);
      assert.match(noFile.stderr, /INFRAVEIL_AGENT_FILE is not set/);
      // The identity file's control_url is the default base URL.
      const fromFile = await run({ INFRAVEIL_AGENT_FILE: world.identityFile });
      assert.equal(fromFile.code, 0, fromFile.stderr);
      const badUrl = await run({
        INFRAVEIL_AGENT_FILE: world.identityFile,
        INFRAVEIL_BASE_URL: "ftp://x",
      });
      assert.equal(badUrl.code, 2);
      assert.match(badUrl.stderr, /INFRAVEIL_BASE_URL must be an http\(s\) URL/);
      await Deno.chmod(world.identityFile, 0o644);
      const loose = await run({ INFRAVEIL_AGENT_FILE: world.identityFile });
      assert.equal(loose.code, 2);
      assert.match(loose.stderr, /chmod 600/);
    } finally {
      await world.close();
    }
  },
});
