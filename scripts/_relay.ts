/**
 * The floor for a Deno proxy's latency, for scripts/proxy_wrk_bench.ts: a byte relay with one
 * backend connection per client connection and no HTTP parsing, limits, forwarding headers or
 * tracing. Not a proxy anyone should run; it shows what the runtime's sockets alone add.
 *
 *   deno run --allow-net scripts/_relay.ts LISTEN_PORT BACKEND_PORT
 *
 * @module
 */

const [listenPort, backendPort] = Deno.args.map(Number);

async function pipe(from: Deno.Conn, to: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(16384);
  try {
    for (;;) {
      const n = await from.read(buf);
      if (n === null) break;
      for (let off = 0; off < n;) off += await to.write(buf.subarray(off, n));
    }
  } catch {
    // either side closed
  }
  try {
    to.close();
  } catch {
    // already closed
  }
}

for await (const client of Deno.listen({ hostname: "127.0.0.1", port: listenPort })) {
  Deno.connect({ hostname: "127.0.0.1", port: backendPort }).then((backend) => {
    pipe(client, backend);
    pipe(backend, client);
  }, () => client.close());
}
