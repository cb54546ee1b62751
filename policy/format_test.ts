import assert from "node:assert/strict";
import fc from "fast-check";
import { canonicalPolicyText } from "./_canonical.ts";
import { PolicyError } from "./error.ts";
import { formatPolicy } from "./format.ts";
import { parsePolicy } from "./parse.ts";
import { randomPolicyText, rng } from "./_random.ts";

const EXAMPLE = Deno.readTextFileSync(new URL("./testdata/production.policy", import.meta.url));

Deno.test("formatPolicy() leaves the canonical example unchanged", () => {
  assert.equal(formatPolicy(EXAMPLE), EXAMPLE);
});

Deno.test("formatPolicy() normalizes layout and keeps every comment", () => {
  const messy = `# header


policy "production" {   # prod
version   1
  // deploy rules


  deploy {
    block_paths ".env","secrets/**", # secret stuff
       "**/id_rsa"
    max_files 050
  }
  agent "a" { allow restart,deploy }
  action deploy { approvals 2 }  // two
  freeze "2026-12-24T00:00:00Z".."2026-12-27T00:00:00Z" "x\\u0041"
  # dangling

}
policy "staging" {
  version 1
}
# tail
`;
  const want = `# header

policy "production" { # prod
  version 1
  // deploy rules

  deploy {
    # secret stuff
    block_paths ".env", "secrets/**", "**/id_rsa"
    max_files 50
  }
  agent "a" {
    allow restart, deploy
  }
  action deploy {
    approvals 2
  } // two
  freeze "2026-12-24T00:00:00Z" .. "2026-12-27T00:00:00Z" "xA"
  # dangling
}

policy "staging" {
  version 1
}

# tail
`;
  assert.equal(formatPolicy(messy), want);
  assert.equal(formatPolicy(want), want);
});

Deno.test("formatPolicy() refuses text with syntax errors", () => {
  assert.throws(() => formatPolicy('policy "p" {\n  version 1\n'), (e) => {
    assert.ok(e instanceof PolicyError);
    assert.equal(e.code, "PARSE");
    assert.equal(e.diagnostics[0].code, "PL005");
    return true;
  });
});

const model = (text: string) => {
  const p = parsePolicy(text);
  return { canon: canonicalPolicyText(p.policy), codes: p.diagnostics.map((d) => d.code) };
};

Deno.test("formatPolicy() round-trips random policies: parse(fmt(p)) ≡ p, fmt idempotent", () => {
  fc.assert(
    fc.property(fc.integer(), (seed) => {
      const text = randomPolicyText(rng(seed));
      const once = formatPolicy(text);
      assert.equal(formatPolicy(once), once);
      assert.deepEqual(model(once), model(text));
    }),
    { numRuns: 500 },
  );
});

Deno.test("formatPolicy() round-trips mutated policies whenever they parse", () => {
  const pieces = ["{", "}", '"', ",", "..", "#", "//", "\n", " ", "x", "1", "allow", "agent", "\\"];
  fc.assert(
    fc.property(
      fc.integer(),
      fc.array(fc.tuple(fc.nat(), fc.constantFrom(...pieces), fc.boolean()), { maxLength: 4 }),
      (seed, edits) => {
        let text = randomPolicyText(rng(seed));
        for (const [pos, piece, insert] of edits) {
          const i = pos % (text.length + 1);
          text = insert
            ? text.slice(0, i) + piece + text.slice(i)
            : text.slice(0, i) + text.slice(i + piece.length);
        }
        let once: string;
        try {
          once = formatPolicy(text);
        } catch (e) {
          assert.ok(e instanceof PolicyError, String(e));
          return;
        }
        assert.equal(formatPolicy(once), once);
        assert.deepEqual(model(once), model(text));
      },
    ),
    { numRuns: 1500 },
  );
});
