/**
 * Every command in the docs runs. The test takes every ```sh block of README.md and docs/*.md
 * and runs its commands, file by file, in order, in one shell per file whose working directory
 * is a scratch copy of the checkout (symbolic links to its files; whatever a command writes
 * lands in the scratch directory), with `infraveil` on the PATH (the CLI under its `cli`
 * permission set) and HOME pointing into the scratch directory.
 *
 * Conventions for doc authors:
 * - a trailing `# exit N` says the command is expected to exit N (default 0);
 * - a trailing `# not run: REASON` keeps a command from running (long-running services, remote
 *   hosts, operator set-up, the whole test suite); a block whose first line is
 *   `# not run: REASON` is skipped whole. Commands shown only for reading belong in a `text` or
 *   `console` fence instead;
 * - host paths `/var/lib/infraveil` and `/etc/infraveil` and the port `:8700` are mapped into the
 *   scratch directory and a free port, so operator commands run as written.
 *
 * The test fails when a command exits with another code than expected, or when an unmarked
 * command did not run at all.
 */
import assert from "node:assert/strict";
import { freePort } from "./_harness.ts";

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");

/** One command of a doc. */
export interface DocCommand {
  /** The doc, relative to the root. */
  file: string;
  /** 1-based line where it starts. */
  line: number;
  /** The command as written (continuation lines joined). */
  text: string;
  /** Expected exit code. */
  expect: number;
  /** Why it is not run, when it is not. */
  skip?: string;
}

const ANNOTATION = /\s#\s*(?:exit (\d+)|not run:\s*(.*?))\s*$/;

/**
 * The commands of every ```sh block of a Markdown text.
 *
 * @param text the Markdown
 * @param file its name, for messages
 * @returns the commands in order
 */
export function shCommands(text: string, file: string): DocCommand[] {
  const lines = text.split("\n");
  const out: DocCommand[] = [];
  let i = 0;
  while (i < lines.length) {
    const open = /^(\s*)(`{3,})(\S*)\s*$/.exec(lines[i]);
    if (!open) {
      i++;
      continue;
    }
    const fence = open[2];
    const lang = open[3];
    const start = i + 1;
    let end = start;
    while (end < lines.length && !lines[end].trimStart().startsWith(fence)) end++;
    if (lang === "sh") {
      const body = lines.slice(start, end);
      const blockSkip = /^#\s*not run:\s*(.+)$/.exec(body.find((l) => l.trim())?.trim() ?? "");
      let j = 0;
      while (j < body.length) {
        const first = j;
        let cmd = body[j];
        while (cmd.endsWith("\\") && j + 1 < body.length) {
          cmd = cmd + "\n" + body[++j];
        }
        j++;
        const trimmed = cmd.trim();
        if (!trimmed || trimmed.startsWith("#")) continue;
        const m = ANNOTATION.exec(cmd);
        out.push({
          file,
          line: start + first + 1,
          text: (m ? cmd.slice(0, m.index) : cmd).trimEnd(),
          expect: m?.[1] ? Number(m[1]) : 0,
          skip: blockSkip?.[1] ?? (m?.[2] !== undefined ? m[2] || "(no reason)" : undefined),
        });
      }
    }
    i = end + 1;
  }
  return out;
}

Deno.test("shCommands() reads blocks, continuations and annotations, and ignores other fences", () => {
  const md = [
    "```sh",
    "a --x \\",
    "  --y   # exit 3",
    "# a comment line",
    "b   # not run: needs a host",
    "```",
    "```text",
    "c",
    "```",
    "```sh",
    "# not run: operator set-up",
    "d",
    "```",
  ].join("\n");
  const cmds = shCommands(md, "x.md");
  assert.deepEqual(cmds.map((c) => [c.line, c.text, c.expect, c.skip]), [
    [2, "a --x \\\n  --y", 3, undefined],
    [5, "b", 0, "needs a host"],
    [12, "d", 0, "operator set-up"],
  ]);
});

async function docs(): Promise<string[]> {
  const files = ["README.md"];
  for await (const e of Deno.readDir(`${ROOT}/docs`)) {
    if (e.isFile && e.name.endsWith(".md")) files.push(`docs/${e.name}`);
  }
  // The quickstart first: it is what a newcomer runs.
  return files.sort((
    a,
    b,
  ) => (a === "docs/quickstart.md" ? -1 : b === "docs/quickstart.md" ? 1 : a.localeCompare(b)));
}

/** A scratch copy of the checkout: links to its entries, a home, a bin with `infraveil`. */
async function scratch(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "iv-docs-" });
  for await (const e of Deno.readDir(ROOT)) {
    if ([".git", "dist", "node_modules", ".test-results", ".ci-out"].includes(e.name)) continue;
    await Deno.symlink(`${ROOT}/${e.name}`, `${dir}/${e.name}`);
  }
  for (const d of ["home", "bin", "var/lib", "etc"]) {
    await Deno.mkdir(`${dir}/${d}`, { recursive: true });
  }
  await Deno.writeTextFile(
    `${dir}/bin/infraveil`,
    `#!/bin/sh\nexec "${Deno.execPath()}" run -P=cli --quiet "${ROOT}/main.ts" "$@"\n`,
    { mode: 0o755 },
  );
  await Deno.chmod(`${dir}/bin/infraveil`, 0o755);
  return dir;
}

function q(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** Runs one doc's commands in one shell; returns each command's exit code by index. */
async function runDoc(
  cmds: DocCommand[],
  dir: string,
): Promise<{ codes: Map<number, number>; log: string; timedOut: boolean }> {
  const port = freePort();
  const marks = `${dir}/.marks`;
  const script = [
    `exec 3>${q(marks)}`,
    // Stop what the doc started in the background (e.g. a control plane), and wait for it.
    `trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT`,
    ...cmds.flatMap((c, i) => {
      if (c.skip !== undefined) return [];
      const text = c.text
        .replaceAll("/var/lib/infraveil", `${dir}/var/lib/infraveil`)
        .replaceAll("/etc/infraveil", `${dir}/etc/infraveil`)
        .replaceAll(":8700", `:${port}`);
      return [`echo ${q(`### [${i}] ${c.file}:${c.line}: ${c.text}`)}`, text, `echo "${i} $?" >&3`];
    }),
  ].join("\n");
  await Deno.writeTextFile(`${dir}/.script.sh`, script + "\n");
  const child = new Deno.Command("bash", {
    args: [`${dir}/.script.sh`],
    cwd: dir,
    env: {
      PATH: `${dir}/bin:${Deno.env.get("PATH")}`,
      HOME: `${dir}/home`,
      NO_COLOR: "1",
      DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
    },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, 60_000);
  const out = await child.output();
  clearTimeout(timer);
  const log = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  const codes = new Map<number, number>();
  const text = await Deno.readTextFile(marks).catch(() => "");
  for (const line of text.split("\n").filter((l) => l)) {
    const [i, code] = line.split(" ").map(Number);
    codes.set(i, code);
  }
  return { codes, log, timedOut };
}

/**
 * Commands that run the whole test suite (this test included) or the benchmarks are never run
 * from here, annotated or not: they would run for minutes or recurse.
 */
const SUITES = /^\s*(?:npx -y deno@\S+|deno) task (?:test|ok|bench)\b/;

const files = await docs();
for (const file of files) {
  const cmds = shCommands(await Deno.readTextFile(`${ROOT}/${file}`), file).map((c) =>
    c.skip === undefined && SUITES.test(c.text)
      ? { ...c, skip: "runs the whole test suite or the benchmarks" }
      : c
  );
  if (cmds.length === 0) continue;
  Deno.test({
    name: `every sh command in ${file} runs as documented`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      for (const c of cmds) {
        if (c.skip !== undefined) {
          assert.notEqual(
            c.skip,
            "(no reason)",
            `${c.file}:${c.line}: "# not run:" needs a reason`,
          );
        }
      }
      if (cmds.every((c) => c.skip !== undefined)) return;
      const dir = await scratch();
      try {
        const { codes, log, timedOut } = await runDoc(cmds, dir);
        const tail = log.split("\n").slice(-40).join("\n");
        for (const [i, c] of cmds.entries()) {
          if (c.skip !== undefined) continue;
          const code = codes.get(i);
          assert.ok(
            code !== undefined,
            `${c.file}:${c.line}: \`${c.text}\` did not run${
              timedOut ? " (timed out)" : ""
            }\n${tail}`,
          );
          assert.equal(
            code,
            c.expect,
            `${c.file}:${c.line}: \`${c.text}\` exited ${code}, expected ${c.expect}\n${tail}`,
          );
        }
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}
