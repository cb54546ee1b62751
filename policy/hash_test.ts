import assert from "node:assert/strict";
import { canonicalPolicyText, toHex } from "./_canonical.ts";
import { compilePolicy } from "./compile.ts";
import { formatPolicy } from "./format.ts";
import { policyHash } from "./hash.ts";
import { parsePolicy } from "./parse.ts";

const EXAMPLE = Deno.readTextFileSync(new URL("./testdata/production.policy", import.meta.url));

Deno.test("policyHash() ignores comments, whitespace, blank lines and key order", () => {
  const h = policyHash(EXAMPLE);
  const relaid = `# production policy
policy "production" {
  version 1   // v1

  agent "deployer" {
    blast_radius single_host
    deny delete,db_migrate,drop_table
    allow restart,
      deploy, rollback
  }
  deploy {
    max_files 50
    block_paths ".env", "secrets/**", "**/id_rsa" # never
    require_approval true
  }
  remediation { block_categories auth, crypto, billing
    require_approval true }
}
`.replace(
    "remediation { block_categories auth, crypto, billing\n    require_approval true }",
    "remediation {\n    block_categories auth, crypto, billing\n    require_approval true\n  }",
  );
  // Agents and blocks in another order inside the policy still hash the same: only their
  // relative order within a list matters.
  assert.equal(policyHash(relaid), h);
  assert.equal(policyHash(formatPolicy(relaid)), h);
});

Deno.test("policyHash() changes when the meaning changes", () => {
  const h = policyHash(EXAMPLE);
  for (
    const [a, b] of [
      ["max_files 50", "max_files 51"],
      ['".env", ', ""],
      ["require_approval true", "require_approval false"],
      ["single_host", "service"],
      ['"deployer"', '"deployer2"'],
      ['"production"', '"prod"'],
      ["allow restart, deploy", "allow deploy, restart"],
    ]
  ) {
    assert.notEqual(policyHash(EXAMPLE.replace(a, b)), h, `${a} -> ${b}`);
  }
});

Deno.test("policyHash() is sha256 over the documented canonical JSON (RFC 8785)", async () => {
  const doc = parsePolicy(EXAMPLE).policy;
  const canon = canonicalPolicyText(doc);
  assert.equal(
    canon,
    '{"format":"infraveil-policy/1","policies":[{"actions":[],"agents":[{"actions":[],"allow":["restart","deploy","rollback"],"blast_radius":"single_host","deny":["delete","db_migrate","drop_table"],"name":"deployer"}],"deploy":{"block_paths":[".env","secrets/**","**/id_rsa"],"max_files":50,"require_approval":true},"environment":"production","freeze":[],"remediation":{"block_categories":["auth","crypto","billing"],"require_approval":true},"version":1}]}',
  );
  const web = toHex(
    new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(canon))),
  );
  assert.equal(policyHash(EXAMPLE), "sha256:" + web);
  assert.equal(compilePolicy(parsePolicy(EXAMPLE)).hash, "sha256:" + web);
});

Deno.test("policyHash() normalizes freeze instants to UTC", () => {
  const a =
    'policy "p" {\n  version 1\n  freeze "2026-12-24T01:00:00+01:00" .. "2026-12-25T00:00:00Z"\n}\n';
  const b =
    'policy "p" {\n  version 1\n  freeze "2026-12-24T00:00:00.000Z" .. "2026-12-25T00:00:00Z"\n}\n';
  assert.equal(policyHash(a), policyHash(b));
});

Deno.test("canonicalPolicyText() equals RFC 8785 JCS of canonicalModel() on random policies", async () => {
  const { canonicalModel, jcs } = await import("./_canonical.ts");
  const { randomPolicyText, rng } = await import("./_random.ts");
  for (let seed = 0; seed < 300; seed++) {
    const doc = parsePolicy(randomPolicyText(rng(seed))).policy;
    assert.equal(canonicalPolicyText(doc), jcs(canonicalModel(doc)));
  }
  const doc = parsePolicy(EXAMPLE).policy;
  assert.equal(canonicalPolicyText(doc), jcs(canonicalModel(doc)));
});
