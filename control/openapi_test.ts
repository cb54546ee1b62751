import assert from "node:assert/strict";
import { generateKeyPair } from "@infraveil/trust";
import { createControlApp } from "./app.ts";
import { buildOpenApi, SIGNED_DOCS } from "./openapi.ts";
import { SIGNED_ROUTES } from "./_signed.ts";
import { openSqliteStore } from "./sqlite_store.ts";
import { ERROR_STATUS } from "./error.ts";

Deno.test("buildOpenApi() describes every route the app registers, and nothing else", async () => {
  const store = await openSqliteStore(":memory:");
  try {
    const app = createControlApp({ store, keys: generateKeyPair() });
    const doc = buildOpenApi() as {
      openapi: string;
      paths: Record<string, Record<string, unknown>>;
    };
    assert.equal(doc.openapi, "3.1.0");
    const registered = new Set<string>();
    for (const r of app.routes) {
      if (r.method === "ALL") continue;
      const path = r.path.replace(/:([a-z_]+)/g, "{$1}");
      if (path === "/v1/t/{tenant}/signed/{type}") {
        for (const type of Object.keys(SIGNED_ROUTES)) {
          registered.add(`post /v1/t/{tenant}/signed/${type}`);
        }
      } else {
        registered.add(`${r.method.toLowerCase()} ${path}`);
      }
    }
    const documented = new Set<string>();
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const method of Object.keys(ops)) documented.add(`${method} ${path}`);
    }
    assert.deepEqual([...registered].sort(), [...documented].sort());
    assert.deepEqual(Object.keys(SIGNED_DOCS).sort(), Object.keys(SIGNED_ROUTES).sort());
    const res = await app.request("/openapi.json");
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), JSON.parse(JSON.stringify(doc)));
  } finally {
    await store.close();
  }
});

Deno.test("error responses are JSON with a stable code", async () => {
  const store = await openSqliteStore(":memory:");
  try {
    const app = createControlApp({ store, keys: generateKeyPair(), maxBodyBytes: 1024 });
    let res = await app.request("/nope");
    assert.equal(res.status, 404);
    assert.equal((await res.json()).error.code, "NOT_FOUND");
    res = await app.request("/v1/t/acme/me");
    assert.equal(res.status, 401);
    assert.equal((await res.json()).error.code, "UNAUTHENTICATED");
    res = await app.request("/v1/signup", { method: "POST", body: "x".repeat(2000) });
    assert.equal(res.status, 413);
    assert.equal((await res.json()).error.code, "PAYLOAD_TOO_LARGE");
    res = await app.request("/v1/signup", { method: "POST", body: "[1]" });
    assert.equal(res.status, 400);
    const body = await res.json();
    assert.ok(body.error.code in ERROR_STATUS);
  } finally {
    await store.close();
  }
});
