import assert from "node:assert/strict";
import { runCommand } from "./exec_worker.ts";

Deno.test("runCommand() passes arguments verbatim, without a shell, with only the given environment", async () => {
  const r = await runCommand({
    command: "/bin/sh",
    args: ["-c", 'printf "%s|" "$0" "$1" "$X" "${HOME:-none}"', "a b; rm -rf /", "$(id)"],
    env: { X: "x" },
    timeoutMs: 5_000,
    maxOutputBytes: 1_000,
  });
  assert.equal(r.exitCode, 0);
  assert.equal(r.stdout, "a b; rm -rf /|$(id)|x|none|");
});

Deno.test("runCommand() keeps bounded output and counts the rest", async () => {
  const r = await runCommand({
    command: "/bin/sh",
    args: ["-c", "head -c 100000 /dev/zero | tr '\\0' x; echo err >&2; exit 3"],
    env: {},
    timeoutMs: 5_000,
    maxOutputBytes: 10,
  });
  assert.equal(r.exitCode, 3);
  assert.equal(r.stdout, "xxxxxxxxxx");
  assert.equal(r.stdoutBytes, 100_000);
  assert.equal(r.stderr, "err\n");
});

Deno.test("runCommand() kills a command at its timeout", async () => {
  const r = await runCommand({
    command: "/bin/sleep",
    args: ["10"],
    env: {},
    timeoutMs: 100,
    maxOutputBytes: 10,
  });
  assert.equal(r.timedOut, true);
  assert.equal(r.exitCode, null);
  assert.equal(r.signal, "SIGTERM");
  assert.ok(r.durationMs < 2_000);
});

Deno.test("runCommand() reports a program that cannot start", async () => {
  const r = await runCommand({
    command: "/nonexistent/program",
    args: [],
    env: {},
    timeoutMs: 1_000,
    maxOutputBytes: 10,
  });
  assert.equal(r.exitCode, null);
  assert.match(r.error!, /NotFound/);
});
