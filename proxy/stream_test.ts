import assert from "node:assert/strict";
import { parseResponses, readAll, serveBackend, startProxy } from "./_testing.ts";

const GB = 1024 * 1024 * 1024;

Deno.test({
  name: "proxy streams a 1 GB request body in bounded memory",
  sanitizeResources: true,
  fn: async () => {
    const be = serveBackend();
    const px = startProxy(be.url, {
      rules: { baseline: false },
      limits: { maxBodyBytes: 0 },
      tracing: { enabled: false },
    });
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: px.port });
    try {
      const chunk = new Uint8Array(1024 * 1024).fill(0x61);
      const rssBefore = Deno.memoryUsage().rss;
      let rssPeak = rssBefore;
      const t0 = Date.now();
      await conn.write(new TextEncoder().encode(
        `POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: ${GB}\r\nConnection: close\r\n\r\n`,
      ));
      for (let sent = 0; sent < GB; sent += chunk.length) {
        let off = 0;
        while (off < chunk.length) off += await conn.write(chunk.subarray(off));
        if ((sent & (64 * 1024 * 1024 - 1)) === 0) {
          rssPeak = Math.max(rssPeak, Deno.memoryUsage().rss);
        }
      }
      const [res] = parseResponses(await readAll(conn, 30_000));
      const elapsed = Date.now() - t0;
      rssPeak = Math.max(rssPeak, Deno.memoryUsage().rss);
      assert.equal(res.status, 200);
      assert.equal(JSON.parse(res.text).body, GB, "backend received every byte");
      const growth = rssPeak - rssBefore;
      assert.ok(growth < 100 * 1024 * 1024, `RSS grew by ${(growth / 1048576).toFixed(1)} MB`);
      console.log(
        `1 GB through the proxy in ${elapsed} ms; RSS growth ${(growth / 1048576).toFixed(1)} MB`,
      );
    } finally {
      conn.close();
      await px.close();
      await be.close();
    }
  },
});
