import assert from "node:assert/strict";
import fc from "fast-check";
import { AuthorityGraph, formatPath, grantCovers } from "./authority.ts";
import type { AuthorityData, UserRow } from "./store.ts";

const user = (id: string, status: UserRow["status"] = "active"): UserRow => ({
  id,
  email: `${id}@x.test`,
  displayName: null,
  status,
  createdAt: 0,
});

function graph(extra: Partial<AuthorityData> = {}): AuthorityGraph {
  return new AuthorityGraph({
    users: [user("a"), user("b"), user("c"), user("off", "disabled")],
    groups: ["g1", "g2"],
    roles: ["r"],
    members: [
      { group: "g1", memberKind: "user", member: "a" },
      { group: "g2", memberKind: "group", member: "g1" },
      { group: "g1", memberKind: "group", member: "g2" }, // a cycle must not loop
      { group: "g1", memberKind: "user", member: "off" },
    ],
    assignments: [{ subjectKind: "group", subject: "g2", role: "r" }],
    grants: [{ id: "gr1", role: "r", action: "deploy", environment: "production", service: "*" }],
    delegations: [],
    ...extra,
  });
}

const target = { action: "deploy", environment: "production", service: "api" };

Deno.test("AuthorityGraph.explain() finds the shortest path through nested groups, even with cycles", () => {
  const g = graph();
  const path = g.explain("a", target, 0);
  assert.ok(path);
  assert.equal(
    formatPath(path),
    "a@x.test → group g1 → group g2 → role r → grant deploy on production/*",
  );
  assert.equal(g.explain("b", target, 0), null);
  assert.equal(g.explain("off", target, 0), null, "disabled users never approve");
  assert.equal(g.explain("a", { ...target, environment: "staging" }, 0), null);
  assert.equal(
    g.explain("a", { ...target, environment: null }, 0),
    null,
    "a missing environment matches only *",
  );
});

Deno.test("AuthorityGraph delegations: scoped, expiring, revocable, not transitive", () => {
  const g = graph({
    delegations: [
      {
        id: "d1",
        fromUser: "a",
        toUser: "b",
        role: null,
        expiresAt: 1000,
        createdAt: 0,
        revokedAt: null,
      },
      {
        id: "d2",
        fromUser: "b",
        toUser: "c",
        role: null,
        expiresAt: 1000,
        createdAt: 0,
        revokedAt: null,
      },
      {
        id: "d3",
        fromUser: "a",
        toUser: "c",
        role: "other",
        expiresAt: 1000,
        createdAt: 0,
        revokedAt: null,
      },
    ],
  });
  assert.equal(g.explain("b", target, 999)?.[1].type, "delegation");
  assert.equal(g.explain("b", target, 1000), null, "expired");
  assert.equal(
    g.explain("c", target, 0),
    null,
    "delegations do not chain, and d3 is for another role",
  );
  const revoked = graph({
    delegations: [{
      id: "d1",
      fromUser: "a",
      toUser: "b",
      role: null,
      expiresAt: 1000,
      createdAt: 0,
      revokedAt: 5,
    }],
  });
  assert.equal(revoked.explain("b", target, 0), null);
});

Deno.test("AuthorityGraph.approvers() excludes the requester and operator", () => {
  const g = graph({
    assignments: [{ subjectKind: "group", subject: "g2", role: "r" }, {
      subjectKind: "user",
      subject: "b",
      role: "r",
    }],
  });
  assert.deepEqual(g.approvers(target, 0).map((a) => a.user.id), ["a", "b"]);
  assert.deepEqual(g.approvers(target, 0, new Set(["a"])).map((a) => a.user.id), ["b"]);
});

Deno.test("grantCovers(): '*' matches anything, names match exactly", () => {
  fc.assert(fc.property(fc.string(), fc.string(), fc.option(fc.string()), (a, e, s) => {
    const any = { id: "x", role: "r", action: "*", environment: "*", service: "*" };
    assert.equal(grantCovers(any, { action: a, environment: e, service: s }), true);
    const exact = { ...any, action: a === "*" ? "x" : a };
    assert.equal(
      grantCovers(exact, { action: a === "*" ? "x" : a, environment: e, service: s }),
      true,
    );
    assert.equal(
      grantCovers({ ...any, service: "svc" }, { action: a, environment: e, service: null }),
      false,
    );
  }));
});
