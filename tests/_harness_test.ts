import assert from "node:assert/strict";
import { freePort } from "./_harness.ts";

Deno.test("freePort() hands out distinct, bindable loopback ports below the ephemeral range", () => {
  const [low] = Deno.readTextFileSync("/proc/sys/net/ipv4/ip_local_port_range").trim().split(
    /\s+/,
  ).map(Number);
  // Outgoing connections and `port: 0` listeners take ports from the ephemeral range; one named
  // in advance must come from outside it, or a client can hold it when its listener binds.
  const ports = Array.from({ length: 200 }, () => freePort());
  assert.equal(new Set(ports).size, ports.length, "a port was handed out twice");
  for (const port of ports) {
    assert.ok(port >= 10000 && port < low, `port ${port} is not in [10000, ${low})`);
  }
  const listeners = ports.slice(0, 20).map((port) => Deno.listen({ hostname: "127.0.0.1", port }));
  for (const l of listeners) l.close();
});
