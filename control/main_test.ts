import assert from "node:assert/strict";
import { verifyLedger } from "@infraveil/ledger";
import { main, serveControl } from "./main.ts";
import { ControlClient, parseIdentityFile } from "./client.ts";
import { TEST_POLICY } from "./_testing.ts";
import { openSqliteStore } from "./sqlite_store.ts";
import { addUser } from "./tenant.ts";

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const log = console.log;
  const error = console.error;
  let out = "";
  let err = "";
  console.log = (...a: unknown[]) => void (out += a.join(" ") + "\n");
  console.error = (...a: unknown[]) => void (err += a.join(" ") + "\n");
  try {
    return { code: await main(args), out, err };
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test({
  name: "main(): init, enroll, enroll-token, serve, approve/reject, authority, evidence export",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "infraveil-control-cli-" });
    const data = `${dir}/data`;
    const ac = new AbortController();
    let served: Promise<void> | null = null;
    try {
      await Deno.writeTextFile(`${dir}/policy.infraveil`, TEST_POLICY);
      let r = await run([
        "init",
        "--data",
        data,
        "--tenant",
        "acme",
        "--admin",
        "admin@acme.test",
        "--policy",
        `${dir}/policy.infraveil`,
      ]);
      assert.equal(r.code, 0, r.err);
      assert.equal((await Deno.stat(`${data}/control.key`)).mode! & 0o777, 0o600);
      assert.ok((await Deno.stat(`${data}/control.db`)).isFile);
      const link = /(http:\/\/\S+\/signup\?tenant=acme&token=\S+)/.exec(r.out)?.[1];
      assert.ok(link, r.out);
      r = await run(["init", "--data", data, "--tenant", "acme", "--admin", "admin@acme.test"]);
      assert.equal(r.code, 1, "the tenant exists");
      assert.match(r.err, /already exists/);
      assert.equal(
        (await run(["init", "--data", data, "--tenant", "Bad Name", "--admin", "x@y.z"])).code,
        2,
      );
      assert.equal(
        (await run([
          "init",
          "--data",
          data,
          "--tenant",
          "b",
          "--admin",
          "x@y.z",
          "--policy",
          `${dir}/nope`,
        ])).code,
        2,
      );

      r = await run([
        "enroll",
        "--data",
        data,
        "--tenant",
        "acme",
        "--kind",
        "mcp",
        "--name",
        "claude",
        "--out",
        `${dir}/claude.json`,
      ]);
      assert.equal(r.code, 2, "MCP identities need an operator");
      r = await run([
        "enroll",
        "--data",
        data,
        "--tenant",
        "acme",
        "--kind",
        "mcp",
        "--name",
        "claude",
        "--operator",
        "dave@acme.test",
        "--out",
        `${dir}/claude.json`,
      ]);
      assert.equal(r.code, 2, "the operator must be a user of the tenant");
      assert.match(r.err, /dave@acme\.test is not a user of tenant acme/);
      // Dave is added (as the API would), then operates the MCP identity.
      const db = await openSqliteStore(`${data}/control.db`);
      await db.tx((t) =>
        addUser(t, "acme", {
          email: "dave@acme.test",
          actor: "test",
          now: Date.now(),
          random: (b) => crypto.getRandomValues(b),
        })
      );
      await db.close();
      r = await run([
        "enroll",
        "--data",
        data,
        "--tenant",
        "acme",
        "--kind",
        "mcp",
        "--name",
        "claude",
        "--operator",
        "Dave@ACME.test",
        "--out",
        `${dir}/claude.json`,
        "--control-url",
        "http://x",
      ]);
      assert.equal(r.code, 0, r.err);
      assert.equal((await Deno.stat(`${dir}/claude.json`)).mode! & 0o777, 0o600);
      // A refused --out (the file exists) enrolls nothing: the same name enrolls cleanly after.
      const enrollAs = (out: string) =>
        run([
          "enroll",
          ...["--data", data, "--tenant", "acme", "--kind", "mcp", "--name", "claude-2"],
          ...["--operator", "dave@acme.test", "--out", out],
        ]);
      const before = await Deno.readTextFile(`${dir}/claude.json`);
      r = await enrollAs(`${dir}/claude.json`);
      assert.equal(r.code, 2, "the identity file exists");
      assert.match(r.err, /it exists/);
      assert.equal(await Deno.readTextFile(`${dir}/claude.json`), before);
      r = await enrollAs(`${dir}/claude-2.json`);
      assert.equal(r.code, 0, `claude-2 was not enrolled by the refused attempt: ${r.err}`);
      const id = parseIdentityFile(await Deno.readTextFile(`${dir}/claude.json`), "claude.json");
      assert.equal(id.identity.kind, "mcp");
      assert.equal(id.controlUrl, "http://x");
      r = await run([
        "enroll",
        "--data",
        data,
        "--tenant",
        "acme",
        "--kind",
        "agent",
        "--name",
        "web-1",
        "--out",
        `${dir}/claude.json`,
      ]);
      assert.equal(r.code, 2, "never overwrites an identity file");
      for (const [name, environment] of [["web-1", "production"], ["stage-1", "staging"]]) {
        r = await run([
          "enroll",
          "--data",
          data,
          "--tenant",
          "acme",
          "--kind",
          "agent",
          "--name",
          name,
          "--out",
          `${dir}/${name}.json`,
        ]);
        assert.equal(r.code, 2, "an agent needs --environment");
        assert.match(r.err, /--environment/);
        r = await run([
          "enroll",
          "--data",
          data,
          "--tenant",
          "acme",
          "--kind",
          "agent",
          "--name",
          name,
          "--environment",
          environment,
          "--service",
          "api",
          "--out",
          `${dir}/${name}.json`,
        ]);
        assert.equal(r.code, 0, r.err);
      }
      r = await run([
        "enroll-token",
        "--data",
        data,
        "--tenant",
        "acme",
        "--kind",
        "agent",
        "--name",
        "web-2",
        "--environment",
        "production",
      ]);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /token: +ive_[0-9a-f]{16}\./);
      assert.equal(
        (await run([
          "enroll-token",
          "--data",
          data,
          "--tenant",
          "nope",
          "--kind",
          "agent",
          "--name",
          "x",
        ])).code,
        1,
      );

      const addr = await new Promise<{ hostname: string; port: number }>((resolve) => {
        served = serveControl({
          data,
          hostname: "127.0.0.1",
          port: 0,
          signal: ac.signal,
          onListen: resolve,
        });
      });
      const url = `http://127.0.0.1:${addr.port}`;
      const token = new URL(link).searchParams.get("token");
      const signup = await (await fetch(`${url}/v1/signup`, {
        method: "POST",
        body: JSON.stringify({ tenant: "acme", token }),
      })).json();
      const admin = signup.token as string;
      const client = new ControlClient({
        baseUrl: url,
        identity: id.identity,
        controlPublicKey: id.controlPublicKey,
      });
      const prod = await client.requestDeploy({
        environment: "production",
        service: "api",
        targets: ["web-1"],
        files: ["a.ts"],
      });
      const staging = await client.requestDeploy({
        environment: "staging",
        service: "api",
        targets: ["stage-1"],
        files: ["a.ts"],
      });
      r = await run([
        "approve",
        prod.request_id,
        "--tenant",
        "acme",
        "--token",
        admin,
        "--url",
        url,
      ]);
      assert.equal(r.code, 1, "token approvals are off for production");
      assert.match(r.err, /PROOF_REQUIRED/);
      r = await run([
        "authority",
        "who",
        staging.request_id,
        "--tenant",
        "acme",
        "--token",
        admin,
        "--url",
        url,
      ]);
      assert.equal(r.code, 0, r.err);
      assert.match(
        r.out,
        /admin@acme\.test: admin@acme\.test → role approver → grant \* on \*\/\*/,
      );
      r = await run([
        "authority",
        "why",
        staging.request_id,
        "admin@acme.test",
        "--tenant",
        "acme",
        "--token",
        admin,
        "--url",
        url,
      ]);
      assert.equal(r.code, 0, r.err);
      r = await run([
        "approve",
        staging.request_id,
        "--tenant",
        "acme",
        "--token",
        admin,
        "--url",
        url,
      ]);
      assert.equal(r.code, 1, "token approvals are off for every environment by default");
      assert.match(r.err, /PROOF_REQUIRED/);
      // The tenant opts in for staging (PUT /v1/t/{tenant}/settings, admin only).
      const opt = await fetch(`${url}/v1/t/acme/settings`, {
        method: "PUT",
        headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
        body: JSON.stringify({ token_approvals: { staging: true } }),
      });
      assert.equal(opt.status, 200, await opt.text());
      r = await run([
        "approve",
        staging.request_id,
        "--tenant",
        "acme",
        "--token",
        admin,
        "--url",
        url,
        "--comment",
        "ok",
      ]);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /approved/);
      r = await run([
        "reject",
        prod.request_id,
        "--tenant",
        "acme",
        "--token",
        "ivt_0000000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "--url",
        url,
      ]);
      assert.equal(r.code, 1);
      assert.equal((await run(["approve", "--tenant", "acme", "--token", admin])).code, 2);
      ac.abort();
      await served;
      served = null;

      r = await run([
        "evidence",
        "export",
        "--data",
        data,
        "--tenant",
        "acme",
        "--out",
        `${dir}/acme.jsonl`,
      ]);
      assert.equal(r.code, 0, r.err);
      const report = await verifyLedger([{
        name: "acme.jsonl",
        data: await Deno.readFile(`${dir}/acme.jsonl`),
      }]);
      assert.ok(report.ok, report.problem?.message);
      assert.ok(report.size > 8);

      assert.equal((await run([])).code, 2);
      assert.equal((await run(["--help"])).code, 0);
      assert.equal((await run(["serve", "--help"])).code, 0);
      assert.equal((await run(["frobnicate"])).code, 2);
      assert.equal((await run(["init", "--bogus"])).code, 2);
    } finally {
      ac.abort();
      if (served) await served;
      await Deno.remove(dir, { recursive: true });
    }
  },
});
