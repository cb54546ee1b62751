/**
 * The passkey store's contract on every implementation: memory, the separate SQLite file, and
 * the control store itself on SQLite and on a real PostgreSQL (started by the test harness;
 * skipped visibly when the binaries are absent, failed under `CI=true`).
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  controlStorePasskeyStore,
  memoryPasskeyStore,
  type PasskeyRow,
  type PasskeyStore,
} from "./passkey_store.ts";
import { type Backend, postgresBackend, sqliteBackend, stopPostgres } from "../_testing.ts";
import { IN_CI } from "../_pg_harness_test_util.ts";

const key = (id: string, userId: string, createdAt = 1): PasskeyRow => ({
  id,
  userId,
  publicKey: "pk",
  counter: 0,
  transports: ["internal"],
  label: null,
  createdAt,
  lastUsedAt: null,
});

/** A passkey store over a fresh control-store database; closing it drops the database. */
async function inControlStore(backend: Backend): Promise<PasskeyStore> {
  const db = await backend.open();
  const s = controlStorePasskeyStore(db.store);
  return { ...s, close: async () => (await s.close(), await db.cleanup()) };
}

if (postgresBackend.unavailable) {
  console.error(`%cSKIP postgres: ${postgresBackend.unavailable}`, "color: yellow");
}

/** Why a backend cannot run here, or null. */
const missing = (name: string): string | null =>
  name === "store:postgres" ? postgresBackend.unavailable : null;

const backends: [string, () => Promise<PasskeyStore>][] = [
  ["memory", () => Promise.resolve(memoryPasskeyStore())],
  ["store:sqlite", () => inControlStore(sqliteBackend)],
  ["store:postgres", () => inControlStore(postgresBackend)],
];

/** Registers a test; skips visibly when the backend is unavailable (fails under CI). */
function test(name: string, title: string, fn: () => Promise<void>): void {
  const why = missing(name);
  Deno.test({
    name: `[${name}] ${title}`,
    ignore: why !== null && !IN_CI,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      if (why) throw new Error(`CI=true but ${why}`);
      await fn();
    },
  });
}

for (const [name, open] of backends) {
  test(name, "PasskeyStore keeps credentials per tenant and refuses duplicates", async () => {
    const s = await open();
    try {
      assert.equal(await s.insertPasskey("acme", key("k1", "u1", 2)), true);
      assert.equal(
        await s.insertPasskey("acme", key("k1", "u2")),
        false,
        "credential ids are unique in a tenant",
      );
      assert.equal(await s.insertPasskey("beta", key("k1", "u9")), true, "but not across tenants");
      assert.equal(await s.insertPasskey("acme", key("k0", "u1", 1)), true);
      assert.deepEqual((await s.listPasskeys("acme", "u1")).map((k) => k.id), ["k0", "k1"]);
      assert.equal((await s.getPasskey("beta", "k1"))!.userId, "u9");
      assert.equal(await s.getPasskey("gamma", "k1"), null);
      await s.touchPasskey("acme", "k1", 7, 99);
      const k1 = (await s.getPasskey("acme", "k1"))!;
      assert.equal(k1.counter, 7);
      assert.equal(k1.lastUsedAt, 99);
      assert.deepEqual(k1.transports, ["internal"]);
      assert.equal(await s.deletePasskey("acme", "k1"), true);
      assert.equal(await s.deletePasskey("acme", "k1"), false);
    } finally {
      await s.close();
    }
  });

  test(name, "PasskeyStore.useNonce() accepts a nonce once per tenant", async () => {
    const s = await open();
    try {
      assert.equal(await s.useNonce("acme", "n", 1000, 0), true);
      assert.equal(await s.useNonce("acme", "n", 1000, 500), false);
      assert.equal(await s.useNonce("beta", "n", 1000, 500), true);
    } finally {
      await s.close();
    }
  });

  test(name, "PasskeyStore keeps vote proofs by request", async () => {
    const s = await open();
    try {
      const proof = {
        requestId: "req_1",
        userId: "u1",
        decision: "approve" as const,
        actionHash: "sha256:00",
        credentialId: "k1",
        nonce: "n",
        challenge: "c",
        assertion: "{}",
        createdAt: 5,
      };
      await s.insertProof("acme", proof);
      await s.insertProof("beta", { ...proof, userId: "u2" });
      assert.deepEqual(await s.listProofs("acme", "req_1"), [proof]);
      assert.deepEqual(await s.listProofs("acme", "req_2"), []);
    } finally {
      await s.close();
    }
  });
}

for (const backend of [sqliteBackend, postgresBackend]) {
  test(
    `store:${backend.name}`,
    "instances on one database share passkeys, nonces and proofs",
    async () => {
      const db = await backend.open();
      try {
        const a = controlStorePasskeyStore(db.store);
        const b = controlStorePasskeyStore(await db.another());
        assert.equal(await a.insertPasskey("acme", key("k1", "u1")), true);
        assert.equal(await b.insertPasskey("acme", key("k1", "u2")), false, "one id per tenant");
        assert.equal((await b.getPasskey("acme", "k1"))!.userId, "u1");
        await b.touchPasskey("acme", "k1", 3, 10);
        assert.equal((await a.getPasskey("acme", "k1"))!.counter, 3);
        // A ceremony nonce used on one instance is a replay on the other; on PostgreSQL even
        // at once. (Two SQLite handles in one process cannot overlap transactions: node:sqlite
        // blocks the thread while it waits for the file lock.)
        const [x, y] = backend.name === "postgres"
          ? await Promise.all([a.useNonce("acme", "n", 1000, 0), b.useNonce("acme", "n", 1000, 0)])
          : [await a.useNonce("acme", "n", 1000, 0), await b.useNonce("acme", "n", 1000, 0)];
        assert.equal(Number(x) + Number(y), 1, "exactly one instance accepts the nonce");
        assert.equal(await a.useNonce("acme", "n", 1000, 1), false);
        // Other tenants never see it; once expired (and purged) it is forgotten.
        assert.equal(await b.useNonce("beta", "n", 1000, 1), true);
        assert.equal(await b.useNonce("acme", "n", 3000, 1001), true);
        await a.insertProof("acme", {
          requestId: "req_1",
          userId: "u1",
          decision: "reject",
          actionHash: "sha256:00",
          credentialId: "k1",
          nonce: "n",
          challenge: "c",
          assertion: "{}",
          createdAt: 5,
        });
        assert.deepEqual((await b.listProofs("acme", "req_1")).map((p) => p.decision), [
          "reject",
        ]);
        assert.deepEqual(await b.listProofs("beta", "req_1"), []);
        assert.equal(await b.deletePasskey("acme", "k1"), true);
        assert.equal(await a.getPasskey("acme", "k1"), null);
        // Closing the passkey store leaves the control store open for its owner.
        await a.close();
        assert.equal(await a.useNonce("acme", "m", 1000, 2), true);
      } finally {
        await db.cleanup();
      }
    },
  );
}

Deno.test({
  name: "[postgres] stop the test server",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: stopPostgres,
});
