/**
 * The MCP Inspector CLI (`@modelcontextprotocol/inspector --cli`) against the real stdio server
 * (in-memory control plane). The Inspector declares Node ≥ 22.19; it is run here under Deno,
 * which needs no Node at all (`npx` on Node 20 also works, with engine warnings; see
 * docs/mcp.md). It is fetched from npm on first use: without the registry the test is skipped
 * with a message, and fails under CI=true.
 */
import assert from "node:assert/strict";

const INSPECTOR = "npm:@modelcontextprotocol/inspector@2.12.0";
const SERVER = new URL("./_testing_stdio.ts", import.meta.url).pathname;
const CI = Deno.env.get("CI") === "true";

async function inspect(...args: string[]): Promise<{ ok: boolean; out: string; err: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      "--no-config",
      "--no-lock",
      INSPECTOR,
      "--cli",
      Deno.execPath(),
      "run",
      "--quiet",
      SERVER,
      ...args,
    ],
    cwd: "/tmp",
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { ok: code === 0, out: dec.decode(stdout), err: dec.decode(stderr) };
}

Deno.test("MCP Inspector CLI lists and calls the tools", async (t) => {
  const list = await inspect("--method", "tools/list");
  if (
    !list.ok && /npm|registry|fetch|network|resolve|dns/i.test(list.err) &&
    !/"tools"/.test(list.out)
  ) {
    const why = `MCP Inspector unavailable (cannot fetch ${INSPECTOR}): ${list.err.slice(0, 300)}`;
    if (CI) throw new Error(why);
    console.warn(`SKIPPED: ${why}`);
    return;
  }
  assert.ok(list.ok, list.err);
  const tools = JSON.parse(list.out).tools as {
    name: string;
    annotations: { readOnlyHint: boolean };
  }[];
  assert.equal(tools.length, 11);
  assert.equal(tools.find((x) => x.name === "fleet_status")?.annotations.readOnlyHint, true);

  await t.step("tools/call request_restart returns a pending receipt", async () => {
    const call = await inspect(
      "--method",
      "tools/call",
      "--tool-name",
      "request_restart",
      "--tool-arg",
      "service=checkout",
      "--tool-arg",
      'targets=["web-1"]',
      "--tool-arg",
      "reason=stuck workers",
    );
    assert.ok(call.ok, call.err);
    const result = JSON.parse(call.out);
    assert.equal(result.structuredContent.status, "pending");
    assert.match(result.structuredContent.dashboard_url, /^https:\/\//);
  });

  await t.step("tools/call with bad arguments is an isError result", async () => {
    const call = await inspect(
      "--method",
      "tools/call",
      "--tool-name",
      "get_trace",
      "--tool-arg",
      "trace_id=nope",
    );
    const result = JSON.parse(call.out || "{}");
    assert.equal(result.isError, true, call.out + call.err);
  });
});
