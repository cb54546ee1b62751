import assert from "node:assert/strict";
import { generateKeyPair } from "@infraveil/trust";
import { writeKeyFiles } from "@infraveil/trust/io";

const MAIN = new URL("./main.ts", import.meta.url).pathname;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(args: string[], stdin?: string): Promise<Run> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "-A", MAIN, ...args],
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("ledger CLI: append, head, prove and verify round-trip; tampering exits 1 naming the class", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const f = `${dir}/audit.jsonl`;
    let r = await cli(["append", f, "--type", "boot", "--data", '{"version":"1.0"}']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).seq, 0);
    r = await cli(
      ["append", f, "--jsonl", "-"],
      '{"type":"a","data":1}\n{"type":"b","data":{"x":[1,2]}}\n{"type":"c"}\n',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^appended seq 1\.\.3; head 4:[0-9a-f]{64}\n$/);
    r = await cli(["head", f]);
    assert.equal(r.code, 0);
    const anchor = r.stdout.trim();
    assert.match(anchor, /^4:[0-9a-f]{64}$/);

    await writeKeyFiles(`${dir}/host.key`, generateKeyPair());
    r = await cli(["head", f, "--key", `${dir}/host.key`, "--origin", "example/log"]);
    assert.equal(r.code, 0, r.stderr);
    const [first, blank, ...note] = r.stdout.split("\n");
    assert.equal(first, anchor);
    assert.equal(blank, "");
    await Deno.writeTextFile(`${dir}/cp.txt`, note.join("\n"));
    assert.match(note[0], /^example\/log$/);

    r = await cli(["verify", f, "--head", `${dir}/cp.txt`, "--pubkey", `${dir}/host.key.pub`]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^ok: 4 entries/);
    r = await cli(["verify", f, "--head", `${dir}/cp.txt`, "--pubkey", `${dir}/host.key`]);
    assert.equal(r.code, 0, r.stdout + r.stderr);

    await writeKeyFiles(`${dir}/other.key`, generateKeyPair());
    r = await cli(["verify", f, "--head", `${dir}/cp.txt`, "--pubkey", `${dir}/other.key.pub`]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /bad-anchor/);

    r = await cli(["prove", f, "--seq", "2"]);
    assert.equal(r.code, 0, r.stderr);
    const inc = JSON.parse(r.stdout);
    assert.equal(inc.type, "inclusion");
    assert.equal(`${inc.size}:${inc.root}`, anchor);
    r = await cli(["prove", f, "--from-size", "2"]);
    assert.equal(JSON.parse(r.stdout).proof.length > 0, true);

    const text = await Deno.readTextFile(f);
    await Deno.writeTextFile(f, text.replace('"data":1,', '"data":7,'));
    r = await cli(["verify", f]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^TAMPERED: edited at .*audit\.jsonl:2 \(seq 1\)/);
    r = await cli(["verify", f, "--format", "json"]);
    assert.equal(r.code, 1);
    const report = JSON.parse(r.stdout);
    assert.deepEqual([report.problem.class, report.problem.line, report.problem.seq], [
      "edited",
      2,
      1,
    ]);
    r = await cli(["head", f]);
    assert.equal(r.code, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ledger CLI: rewrite attack passes a bare check and fails against the earlier anchor", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const f = `${dir}/audit.jsonl`;
    await cli(
      ["append", f, "--jsonl", "-"],
      '{"type":"a","data":1}\n{"type":"b","data":2}\n{"type":"c","data":3}\n',
    );
    const anchor = (await cli(["head", f])).stdout.trim();
    // Rewrite entry 0 and recompute every later prev, as an attacker with write access would.
    const { rechain } = await import("./_testing.ts");
    const items = (await Deno.readTextFile(f)).trim().split("\n").map((text) => ({
      file: f,
      text,
    }));
    items[0].text = items[0].text.replace('"data":1', '"data":100');
    await Deno.writeTextFile(f, rechain(items).map((i) => i.text).join("\n") + "\n");
    let r = await cli(["verify", f]);
    assert.equal(r.code, 0, r.stdout);
    r = await cli(["verify", f, "--head", anchor]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^TAMPERED: rewritten at .*:3 \(seq 2\)/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ledger CLI: usage and input errors exit 2 with a message", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cases: [string[], RegExp, string?][] = [
      [[], /missing command/],
      [["frobnicate"], /unknown command "ledger frobnicate"/],
      [["verify"], /needs at least one FILE/],
      [
        ["verify", `${dir}/missing.jsonl`],
        /Cannot read ledger file .*missing\.jsonl: no such file/,
      ],
      [["verify", `${dir}/x`, "--bogus"], /Unknown option '--bogus'/],
      [["verify", `${dir}/x`, "--head", "12:abc"], /Invalid anchor/],
      [["verify", `${dir}/x`, "--format", "yaml"], /unknown --format/],
      [["verify", `${dir}/x`, "--workers", "1.5"], /--workers "1.5": use a whole number/],
      [["verify", `${dir}/x`, "--workers", "two"], /--workers "two": use a whole number/],
      [["append", `${dir}/a.jsonl`], /needs --type/],
      [["append", `${dir}/a.jsonl`, "--type", "t", "--data", "{nope"], /--data is not JSON/],
      [["prove", `${dir}/a.jsonl`], /exactly one of --seq N and --from-size M/],
      [
        ["append", `${dir}/b.jsonl`, "--jsonl", "-"],
        /stdin line 2: .*expected \{"type"/,
        '{"type":"ok"}\n[1,2]\n{"type":"never"}\n',
      ],
    ];
    for (const [args, pattern, stdin] of cases) {
      const r = await cli(args, stdin);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, pattern, args.join(" "));
    }
    // The jsonl run kept the line before the bad one and stopped there.
    const lines = (await Deno.readTextFile(`${dir}/b.jsonl`)).trim().split("\n");
    assert.equal(lines.length, 1);
    const help = await cli(["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /infraveil verify ledger FILE/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ledger CLI: verify follows a rotated set of files", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { openLedger } = await import("./writer.ts");
    const key = generateKeyPair();
    await writeKeyFiles(`${dir}/host.key`, key);
    const ledger = await openLedger(`${dir}/audit-1.jsonl`);
    for (let i = 0; i < 4; i++) await ledger.append({ type: "e", data: i });
    await ledger.rotate(`${dir}/audit-2.jsonl`, { key, origin: "example/log" });
    await ledger.append({ type: "e", data: 4 });
    const anchor = ledger.anchor();
    await ledger.close();
    let r = await cli(["verify", `${dir}/audit-1.jsonl`, `${dir}/audit-2.jsonl`, "--head", anchor]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^ok: 6 entries in 2 file\(s\)/);
    r = await cli(["verify", `${dir}/audit-2.jsonl`, "--pubkey", `${dir}/host.key.pub`]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /builds on 4:.*signed checkpoint verified/);
    r = await cli(["verify", `${dir}/audit-2.jsonl`, `${dir}/audit-1.jsonl`]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /TAMPERED: reordered at .*audit-1\.jsonl:1 \(seq 6\)/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ledger CLI: verify reports the same with and without workers", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/a.jsonl`;
    const input = Array.from({ length: 30 }, (_, i) => JSON.stringify({ type: "t", data: i }))
      .join("\n") + "\n";
    assert.equal((await cli(["append", path, "--jsonl", "-"], input)).code, 0);
    const text = await Deno.readTextFile(path);
    const runs = [];
    for (const content of [text, text.replace('"data":7', '"data":70')]) {
      await Deno.writeTextFile(path, content);
      for (const workers of ["0", "2"]) {
        runs.push(await cli(["verify", path, "--format", "json", "--workers", workers]));
      }
    }
    assert.deepEqual(runs.map((r) => r.code), [0, 0, 1, 1]);
    assert.equal(runs[0].stdout, runs[1].stdout);
    assert.equal(runs[2].stdout, runs[3].stdout);
    assert.equal(JSON.parse(runs[3].stdout).problem.class, "edited");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ledger CLI: verify accepts and names a writer's preallocated zeros, and refuses bytes after them", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const f = `${dir}/audit.jsonl`;
    const r0 = await cli(["append", f, "--type", "boot"]);
    assert.equal(r0.code, 0, r0.stderr);
    const lines = await Deno.readFile(f);
    await Deno.writeFile(f, new Uint8Array(4096), { append: true });
    let r = await cli(["verify", f]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^ok: 1 entries/);
    assert.match(r.stdout, /ends in 4096 zero bytes a writer preallocated/);
    r = await cli(["head", f]);
    assert.equal(r.code, 0, r.stderr);
    // Anything after the zeros makes the tail a damaged line.
    await Deno.writeTextFile(f, "{}\n", { append: true });
    r = await cli(["verify", f]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^TAMPERED: malformed at .*:2 \(seq 1\)/);
    // Appending through the CLI reuses the zeros once the file is whole again.
    await Deno.writeFile(f, lines);
    await Deno.writeFile(f, new Uint8Array(100), { append: true });
    r = await cli(["append", f, "--type", "next"]);
    assert.equal(r.code, 0, r.stderr);
    r = await cli(["verify", f]);
    assert.equal(r.code, 0, r.stdout);
    assert.doesNotMatch(r.stdout, /zero bytes/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
