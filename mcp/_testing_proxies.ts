/**
 * Test helpers: hostile stand-ins for the control plane, as loopback HTTP proxies in front of
 * the real one. Each forwards the signed request unchanged and tampers with the signed
 * response: re-signs it with a key of its own (a fake control plane), strips the signature
 * (unsigned), or answers with an earlier genuine response (replay).
 *
 * @module
 */
import { type Ed25519KeyPair, type MessagePayload, signEnvelope } from "@infraveil/trust";

/** How the proxy tampers with responses. */
export type Tamper =
  /** Forward untouched. */
  | { kind: "none" }
  /** Re-sign every response payload with `key`, under `kid` (default: `key.kid`). */
  | { kind: "forge"; key: Ed25519KeyPair; kid?: string }
  /** Return the payload alone, without `kid` and `sig`. */
  | { kind: "unsigned" }
  /** Answer each request with the first genuine response seen for the same method and path. */
  | { kind: "replay" };

/** A running proxy. */
export interface TamperingProxy {
  /** Its base URL. */
  url: string;
  /** Responses tampered with so far. */
  tampered(): number;
  /** Stops it. */
  close(): Promise<void>;
}

function isEnvelope(v: unknown): v is { payload: MessagePayload; kid: string; sig: string } {
  return typeof v === "object" && v !== null && "payload" in v && "sig" in v && "kid" in v;
}

/**
 * Starts a tampering proxy in front of `upstream`.
 *
 * @param upstream the real control plane's base URL
 * @param tamper what to do to responses
 * @returns the proxy
 */
export function startTamperingProxy(upstream: string, tamper: Tamper): TamperingProxy {
  let count = 0;
  const seen = new Map<string, { status: number; body: string; type: string }>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    const target = new URL(url.pathname + url.search, upstream);
    const body = req.method === "GET" || req.method === "HEAD"
      ? undefined
      : await req.arrayBuffer();
    const res = await fetch(target, { method: req.method, headers: req.headers, body });
    const text = await res.text();
    const type = res.headers.get("content-type") ?? "application/json";
    const key = `${req.method} ${url.pathname}`;
    let out = text;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (tamper.kind === "replay") {
      const first = seen.get(key);
      if (first === undefined) {
        seen.set(key, { status: res.status, body: text, type });
      } else {
        count++;
        return new Response(first.body, {
          status: first.status,
          headers: { "content-type": first.type },
        });
      }
    } else if (tamper.kind !== "none" && isEnvelope(parsed)) {
      count++;
      if (tamper.kind === "forge") {
        const forged = signEnvelope(parsed.payload, tamper.key);
        out = JSON.stringify({ ...forged, kid: tamper.kid ?? tamper.key.kid });
      } else {
        out = JSON.stringify(parsed.payload);
      }
    }
    return new Response(out, { status: res.status, headers: { "content-type": type } });
  });
  const addr = server.addr as Deno.NetAddr;
  return {
    url: `http://127.0.0.1:${addr.port}`,
    tampered: () => count,
    close: () => server.shutdown(),
  };
}
