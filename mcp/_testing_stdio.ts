/**
 * Test entry: the real MCP server over stdio, backed by the in-memory control plane of
 * `_testing.ts`. Lets the stdio tests exercise both protocol generations without a network.
 *
 * @module
 */
import { serveMcp } from "./server.ts";
import { fakeControl } from "./_testing.ts";

const api = fakeControl({
  hosts: [{ name: "web-1", status: "ok", version: "1.4.1" }],
  findings: [{ id: "fnd_1", severity: "high", category: "sqli", title: "SQL injection blocked" }],
  spans: [{
    trace_id: "4bf92f3577b34da6a3ce929d0e0e4736",
    span_id: "00f067aa0ba902b7",
    name: "GET /login",
    status: 403,
  }],
});
const encoder = new TextEncoder();
serveMcp({
  api,
  agent: "claude",
  tenant: "acme",
  log: (line) => Deno.stderr.writeSync(encoder.encode(line + "\n")),
});
