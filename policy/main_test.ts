import assert from "node:assert/strict";
import type { Io } from "./_cli_check.ts";
import { main } from "./main.ts";

/** An in-memory Io: files in a map, output captured. */
function fakeIo(
  files: Record<string, string>,
  now = 0,
): Io & { stdout: string; stderr: string; files: Record<string, string> } {
  const io = {
    files,
    stdout: "",
    stderr: "",
    readText: (p: string) =>
      p in files
        ? Promise.resolve(files[p])
        : Promise.reject(new Error("No such file or directory")),
    writeText: (p: string, t: string) => {
      files[p] = t;
      return Promise.resolve();
    },
    kind: (p: string) =>
      Promise.resolve(
        p in files
          ? "file" as const
          : Object.keys(files).some((f) => f.startsWith(p + "/"))
          ? "dir" as const
          : "missing" as const,
      ),
    list: (p: string) =>
      Promise.resolve(
        Object.keys(files).filter((f) => f.startsWith(p + "/")).map((f) => ({
          name: f.slice(p.length + 1),
          dir: false,
        })),
      ),
    out: (t: string) => {
      io.stdout += t;
      return Promise.resolve();
    },
    err: (t: string) => {
      io.stderr += t;
      return Promise.resolve();
    },
    now: () => now,
  };
  return io;
}

const EXAMPLE = Deno.readTextFileSync(new URL("./testdata/production.policy", import.meta.url));

Deno.test("main() fmt rewrites files in place and is then clean", async () => {
  const io = fakeIo({ "p.policy": 'policy "p" {\nversion 1\n  agent "a" { allow restart }\n}' });
  assert.equal(await main(["fmt", "p.policy"], io), 0);
  assert.equal(
    io.files["p.policy"],
    'policy "p" {\n  version 1\n  agent "a" {\n    allow restart\n  }\n}\n',
  );
  assert.equal(await main(["fmt", "--check", "p.policy"], io), 0);
});

Deno.test("main() check uses the injected clock for freeze windows", async () => {
  const policy = EXAMPLE.replace(
    "  version 1\n",
    '  version 1\n  freeze "2026-12-24T00:00:00Z" .. "2026-12-27T00:00:00Z"\n',
  );
  const files = { "p.policy": policy, "a.json": '{"agent":"deployer","action":"restart"}' };
  assert.equal(
    await main(
      ["check", "a.json", "--policy", "p.policy"],
      fakeIo(files, Date.parse("2026-12-25T00:00:00Z")),
    ),
    1,
  );
  assert.equal(
    await main(
      ["check", "a.json", "--policy", "p.policy"],
      fakeIo(files, Date.parse("2026-12-28T00:00:00Z")),
    ),
    0,
  );
});

Deno.test("main() check json output carries the policy hash shared with policyHash()", async () => {
  const { policyHash } = await import("./hash.ts");
  const io = fakeIo({ "p.policy": EXAMPLE, "a.json": '{"agent":"deployer","action":"delete"}' });
  assert.equal(await main(["check", "--format", "json", "a.json", "--policy", "p.policy"], io), 1);
  const out = JSON.parse(io.stdout);
  assert.equal(out.policyHash, policyHash(EXAMPLE));
  assert.equal(out.results[0].decision, "deny");
  assert.equal(out.results[0].reasons[0].rule, "agent.deny");
});

Deno.test("main() hash prints policyHash(), text and json", async () => {
  const { policyHash } = await import("./hash.ts");
  const io = fakeIo({ "p.policy": EXAMPLE });
  assert.equal(await main(["hash", "p.policy"], io), 0);
  assert.equal(io.stdout, policyHash(EXAMPLE) + "\n");
  const j = fakeIo({ "p.policy": EXAMPLE });
  assert.equal(await main(["hash", "--format", "json", "p.policy"], j), 0);
  assert.deepEqual(JSON.parse(j.stdout), { file: "p.policy", hash: policyHash(EXAMPLE) });
});

Deno.test("main() rejects unknown commands and flags with usage, exit 2", async () => {
  for (
    const args of [["nope"], [], ["lint", "--nope", "x"], ["check", "a.json"], [
      "lint",
      "--format",
      "xml",
      "p",
    ], ["hash"]]
  ) {
    const io = fakeIo({});
    assert.equal(await main(args, io), 2, args.join(" "));
    assert.match(io.stderr, /Usage: infraveil policy/);
  }
});

Deno.test("main() --help prints usage for every command, exit 0", async () => {
  for (const c of ["lint", "check", "explain", "fmt", "test", "hash", "schema"]) {
    const io = fakeIo({});
    assert.equal(await main([c, "--help"], io), 0);
    assert.match(io.stdout, /^Usage: infraveil policy/);
  }
});

Deno.test("the examples lint clean and their policy tests pass", async () => {
  const dir = new URL("../examples/", import.meta.url);
  const read = (n: string) => Deno.readTextFileSync(new URL(n, dir));
  const files: Record<string, string> = {
    "ex/governed.policy": read("governed.policy"),
    "ex/production.policy": read("production.policy"),
    "ex/governed.policytest.json": read("governed.policytest.json"),
  };
  const io = fakeIo(files, Date.parse("2026-06-01T00:00:00Z"));
  assert.equal(await main(["lint", "ex/governed.policy", "ex/production.policy"], io), 0);
  assert.match(io.stdout, /0 errors, 0 warnings/);
  assert.equal(await main(["test", "ex"], io), 0, io.stdout + io.stderr);
  assert.match(io.stdout, /9 cases passed, 0 failed/);
});
