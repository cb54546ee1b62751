/**
 * Test helpers: real backends on loopback (Deno.serve and a raw TCP one for byte-exact
 * answers), a proxy started on an ephemeral port, and a raw HTTP/1.1 client.
 *
 * @module
 */

import { resolveConfig } from "./config.ts";
import { createProxy, type Proxy, type ProxyOptions } from "./proxy.ts";

/** A backend that records what it received. */
export interface TestBackend {
  port: number;
  url: string;
  /** Request heads received (lower-cased header names → values). */
  seen: { method: string; url: string; headers: Record<string, string>; body?: number }[];
  close(): Promise<void>;
}

/** Starts a Deno.serve backend; the handler defaults to echoing request info as JSON. */
export function serveBackend(
  handler?: (req: Request) => Response | Promise<Response>,
): TestBackend {
  const seen: TestBackend["seen"] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      const headers: Record<string, string> = {};
      req.headers.forEach((v, k) => headers[k] = v);
      seen.push({ method: req.method, url: req.url, headers });
      if (handler) return await handler(req);
      let body = 0;
      if (req.body) {
        try {
          for await (const c of req.body) body += c.length;
        } catch {
          return new Response(null, { status: 499 }); // client (the proxy) went away
        }
      }
      seen[seen.length - 1].body = body;
      return Response.json({ method: req.method, url: req.url, headers, body });
    },
  );
  const port = server.addr.port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    seen,
    close: async () => {
      await server.shutdown();
    },
  };
}

/** A raw TCP backend: `respond` gets the request head text and writes whatever it wants. */
export interface RawBackend {
  port: number;
  url: string;
  heads: string[];
  close(): Promise<void>;
}

/**
 * Starts a raw backend. For each connection it reads one head at a time and calls `respond`;
 * returning false closes the connection.
 */
export function rawBackend(
  respond: (head: string, conn: Deno.Conn, rest: Uint8Array) => Promise<boolean | void>,
): RawBackend {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const heads: string[] = [];
  const conns = new Set<Deno.Conn>();
  const tasks = new Set<Promise<void>>();
  const loop = (async () => {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        return;
      }
      conns.add(conn);
      const t = (async () => {
        const buf = new Uint8Array(65536);
        let have = 0;
        try {
          for (;;) {
            const n = await conn.read(buf.subarray(have));
            if (n === null) break;
            have += n;
            let text = new TextDecoder("latin1").decode(buf.subarray(0, have));
            let end = text.indexOf("\r\n\r\n");
            while (end !== -1) {
              const head = text.slice(0, end + 4);
              heads.push(head);
              const rest = buf.slice(end + 4, have);
              buf.copyWithin(0, end + 4, have);
              have -= end + 4;
              const keep = await respond(head, conn, rest);
              if (keep === false) throw new Error("close");
              text = new TextDecoder("latin1").decode(buf.subarray(0, have));
              end = text.indexOf("\r\n\r\n");
            }
          }
        } catch {
          // closed
        }
        conns.delete(conn);
        try {
          conn.close();
        } catch { /* closed */ }
      })();
      tasks.add(t);
      t.finally(() => tasks.delete(t));
    }
  })();
  const port = (listener.addr as Deno.NetAddr).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    heads,
    close: async () => {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await loop;
      await Promise.allSettled([...tasks]);
    },
  };
}

/** A proxy on an ephemeral port. */
export interface TestProxy {
  proxy: Proxy;
  port: number;
  url: string;
  close(): Promise<void>;
}

/** Starts a proxy in front of `backendUrl` with config overrides. */
export function startProxy(
  backendUrl: string,
  config: Record<string, unknown> = {},
  options: Omit<ProxyOptions, "config"> = {},
): TestProxy {
  const proxy = createProxy({
    ...options,
    config: resolveConfig({ listen: "127.0.0.1:0", backend: backendUrl, ...config }),
  });
  const { port } = proxy.listen();
  return { proxy, port, url: `http://127.0.0.1:${port}`, close: () => proxy.close() };
}

/** A parsed raw response. */
export interface RawResponse {
  status: number;
  head: string;
  headers: [string, string][];
  body: Uint8Array;
  text: string;
}

/** Reads from a connection until it closes or `timeoutMs` passes; returns all bytes. */
export async function readAll(conn: Deno.Conn, timeoutMs = 3000): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(65536);
  const timer = setTimeout(() => {
    try {
      conn.close();
    } catch { /* closed */ }
  }, timeoutMs);
  try {
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
  } catch {
    // closed by the timer or the peer
  } finally {
    clearTimeout(timer);
  }
  let len = 0;
  for (const c of chunks) len += c.length;
  const out = new Uint8Array(len);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** Parses every response in `bytes` (Content-Length or chunked framing, or to the end). */
export function parseResponses(bytes: Uint8Array, headRequest = false): RawResponse[] {
  const out: RawResponse[] = [];
  const latin1 = new TextDecoder("latin1");
  let pos = 0;
  while (pos < bytes.length) {
    const text = latin1.decode(bytes.subarray(pos));
    const end = text.indexOf("\r\n\r\n");
    if (end === -1) break;
    const head = text.slice(0, end);
    const lines = head.split("\r\n");
    const status = Number(lines[0].split(" ")[1]);
    const headers = lines.slice(1).map((l) => {
      const i = l.indexOf(":");
      return [l.slice(0, i), l.slice(i + 1).trim()] as [string, string];
    });
    pos += end + 4;
    const get = (n: string) => headers.find(([k]) => k.toLowerCase() === n)?.[1];
    let body: Uint8Array;
    if (headRequest || status === 204 || status === 304 || (status >= 100 && status < 200)) {
      body = new Uint8Array(0);
    } else if (get("transfer-encoding")?.toLowerCase() === "chunked") {
      const parts: number[] = [];
      for (;;) {
        const t = latin1.decode(bytes.subarray(pos, pos + 64));
        const le = t.indexOf("\r\n");
        const size = parseInt(t.slice(0, le), 16);
        pos += le + 2;
        if (size === 0) {
          pos += 2;
          break;
        }
        for (let i = 0; i < size; i++) parts.push(bytes[pos + i]);
        pos += size + 2;
      }
      body = new Uint8Array(parts);
    } else if (get("content-length") !== undefined) {
      const n = Number(get("content-length"));
      body = bytes.slice(pos, pos + n);
      pos += n;
    } else {
      body = bytes.slice(pos);
      pos = bytes.length;
    }
    out.push({ status, head, headers, body, text: new TextDecoder().decode(body) });
  }
  return out;
}

/** Sends raw bytes to the proxy and returns the parsed responses (reads until close). */
export async function rawRequest(
  port: number,
  request: string | Uint8Array,
  options: { timeoutMs?: number; headRequest?: boolean } = {},
): Promise<RawResponse[]> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(typeof request === "string" ? new TextEncoder().encode(request) : request);
  const bytes = await readAll(conn, options.timeoutMs ?? 3000);
  try {
    conn.close();
  } catch { /* closed */ }
  return parseResponses(bytes, options.headRequest);
}

/** Header value from a raw response (case-insensitive). */
export function header(res: RawResponse, name: string): string | undefined {
  return res.headers.find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1];
}

/** True when not running under CI=true (used to decide skip vs fail for missing tools). */
export function mayskip(): boolean {
  try {
    return Deno.env.get("CI") !== "true";
  } catch {
    return true;
  }
}
