import assert from "node:assert/strict";
import { rawRequest, serveBackend } from "./_testing.ts";
import type { ProxyWorkerMessage } from "./worker.ts";

function next(w: Worker, type: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const on = (e: MessageEvent) => {
      const m = e.data as ProxyWorkerMessage | { type: "probe-result" };
      if (m.type === type) {
        w.removeEventListener("message", on);
        resolve(m as Record<string, unknown>);
      } else if (m.type === "error") {
        w.removeEventListener("message", on);
        reject(new Error(`worker error: ${JSON.stringify(m)}`));
      }
    };
    w.addEventListener("message", on);
  });
}

Deno.test("proxy Worker with only net permissions serves traffic and cannot read files", async () => {
  const be = serveBackend();
  const other = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const otherPort = (other.addr as Deno.NetAddr).port;
  const dir = await Deno.makeTempDir();
  const secret = `${dir}/secret.txt`;
  await Deno.writeTextFile(secret, "top secret");
  const w = new Worker(new URL("./testdata/read_probe_worker.ts", import.meta.url), {
    type: "module",
    deno: {
      permissions: {
        net: ["127.0.0.1:0", `127.0.0.1:${be.port}`],
        read: false,
        write: false,
        env: false,
        run: false,
        ffi: false,
        sys: false,
        import: false,
      },
    },
  });
  try {
    const spans: unknown[] = [];
    w.addEventListener("message", (e) => {
      if (e.data.type === "spans") spans.push(...e.data.spans);
    });
    const listening = next(w, "listening");
    w.postMessage({
      type: "start",
      config: {
        listen: "127.0.0.1:0",
        backend: be.url,
        tracing: { enabled: true },
      },
    });
    const { port } = await listening as { port: number };
    assert.ok(port > 0);
    const [res] = await rawRequest(
      port,
      "GET /via-worker HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    );
    assert.equal(res.status, 200);
    assert.equal(be.seen[0].url.endsWith("/via-worker"), true);

    const probe = next(w, "probe-result");
    w.postMessage({ type: "probe", path: secret, otherPort });
    const { results } = await probe as { results: Record<string, string> };
    assert.deepEqual(results, {
      read: "NotCapable",
      readSync: "NotCapable",
      write: "NotCapable",
      env: "NotCapable",
      run: "NotCapable",
      otherNet: "NotCapable",
    });
    assert.equal(await Deno.readTextFile(secret), "top secret");

    const result = next(w, "result");
    w.postMessage({ type: "query", id: 1, what: "traces" });
    const r = await result as { id: number; result: { route: string }[] };
    assert.equal(r.id, 1);
    assert.equal(r.result[0].route, "/via-worker");
    const stopped = next(w, "stopped");
    w.postMessage({ type: "stop" });
    await stopped;
  } finally {
    w.terminate();
    other.close();
    await be.close();
    await Deno.remove(dir, { recursive: true });
  }
});
