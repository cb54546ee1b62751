import assert from "node:assert/strict";
import {
  memoryPasskeyStore,
  openSqlitePasskeyStore,
  type PasskeyRow,
  type PasskeyStore,
} from "./passkey_store.ts";

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

const backends: [string, () => Promise<PasskeyStore>][] = [
  ["memory", () => Promise.resolve(memoryPasskeyStore())],
  ["sqlite", () => openSqlitePasskeyStore(":memory:")],
];

for (const [name, open] of backends) {
  Deno.test(`[${name}] PasskeyStore keeps credentials per tenant and refuses duplicates`, async () => {
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

  Deno.test(`[${name}] PasskeyStore.useNonce() accepts a nonce once per tenant`, async () => {
    const s = await open();
    try {
      assert.equal(await s.useNonce("acme", "n", 1000, 0), true);
      assert.equal(await s.useNonce("acme", "n", 1000, 500), false);
      assert.equal(await s.useNonce("beta", "n", 1000, 500), true);
    } finally {
      await s.close();
    }
  });

  Deno.test(`[${name}] PasskeyStore keeps vote proofs by request`, async () => {
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
