/**
 * The real server over stdio (backed by the in-memory control plane), from both SDK client
 * generations, plus raw-pipe checks that stdout carries only protocol messages.
 */
import assert from "node:assert/strict";
import { connect, GENERATIONS } from "./_testing_clients.ts";
import { TOOL_NAMES } from "./tools.ts";

const SERVER = new URL("./_testing_stdio.ts", import.meta.url).pathname;

for (const generation of GENERATIONS) {
  Deno.test(`stdio server (no permissions) serves a ${generation} client every tool`, async () => {
    const client = await connect(generation, { args: [SERVER] });
    try {
      assert.equal(client.protocolVersion, generation);
      assert.match(client.instructions ?? "", /never as instructions/);
      const tools = await client.listTools();
      assert.deepEqual(tools.map((t) => t.name), [...TOOL_NAMES]);
      for (const tool of tools) {
        assert.equal(tool.inputSchema.type, "object", tool.name);
        assert.equal(tool.outputSchema?.type, "object", tool.name);
        const isRequest = tool.name.startsWith("request_");
        assert.equal(tool.annotations?.readOnlyHint, !isRequest, tool.name);
        assert.equal(tool.annotations?.destructiveHint, isRequest, tool.name);
      }
      const deploy = await client.callTool("request_deploy", {
        service: "checkout",
        version: "1.4.2",
        targets: ["web-1"],
        files: ["src/app.ts"],
        reason: "fix login",
      });
      assert.equal(deploy.isError, undefined);
      assert.equal(deploy.structuredContent?.status, "pending");
      const id = deploy.structuredContent?.request_id as string;
      const status = await client.callTool("get_request_status", { request_id: id });
      assert.equal(status.structuredContent?.status, "pending");
      const findings = await client.callTool("list_findings", {});
      assert.equal((findings.structuredContent?.trust as { untrusted: boolean }).untrusted, true);
      assert.match(findings.content[0].text ?? "", /<untrusted-data source="traffic"/);

      // Bad arguments are isError results and the server keeps serving.
      for (
        const [name, args] of [
          ["request_deploy", { service: "checkout" }],
          ["get_trace", { trace_id: 42 }],
          ["fleet_status", { approve: true }],
          ["request_restart", { service: "s", targets: ["h"], reason: "r", agent: "root" }],
        ] as const
      ) {
        const r = await client.callTool(name, args);
        assert.equal(r.isError, true, `${name} ${JSON.stringify(args)}`);
        assert.ok((r.content[0].text ?? "").length > 10);
      }
      const fleet = await client.callTool("fleet_status", {});
      assert.equal((fleet.structuredContent?.hosts as unknown[]).length, 1);
      // Logs go to stderr, which arrives on its own pipe: give it a moment.
      for (let i = 0; i < 40 && !/tool fleet_status ok/.test(client.stderr()); i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.match(client.stderr(), /tool fleet_status ok/);
    } finally {
      await client.close();
    }
  });
}

Deno.test("stdio server writes only JSON-RPC to stdout, even on garbage input", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", SERVER],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines = [
    {
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: {
        protocolVersion: "2025-11-25",
        capabilities: {},
        clientInfo: { name: "raw", version: "1" },
      },
    },
    { jsonrpc: "2.0", method: "notifications/initialized" },
    "not json at all {",
    { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "nope", arguments: {} } },
    { jsonrpc: "2.0", id: 3, method: "tools/call", params: { name: "get_trace", arguments: "x" } },
    {
      jsonrpc: "2.0",
      id: 4,
      method: "tools/call",
      params: { name: "fleet_status", arguments: {} },
    },
  ].map((l) => typeof l === "string" ? l : JSON.stringify(l)).join("\n") + "\n";
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(lines));
  // Give the server time to answer before closing stdin (it drops in-flight work on EOF).
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes('"id":4')) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
  }
  await writer.close();
  while (true) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
  }
  const status = await child.status;
  await child.stderr.cancel();
  assert.equal(status.code, 0);
  const messages = out.trim().split("\n").map((l) => JSON.parse(l));
  for (const m of messages) assert.equal(m.jsonrpc, "2.0");
  const byId = new Map(messages.map((m) => [m.id, m]));
  assert.equal(byId.get(1).result.serverInfo.name, "infraveil");
  assert.ok(byId.get(2).error || byId.get(2).result?.isError, "unknown tool is an error");
  assert.ok(byId.get(3).error || byId.get(3).result?.isError, "bad arguments are an error");
  assert.equal(byId.get(4).result.structuredContent.hosts[0].name, "web-1");
});
