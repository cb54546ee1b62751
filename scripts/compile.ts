/**
 * `deno task compile`: builds the standalone executables `infraveil`, `infraveil-agent`,
 * `infraveil-control` and `infraveil-mcp` with `deno compile`, each with its own permission set
 * from the root `deno.json` (`cli`, `agent`, `control`, `mcp`) baked in.
 *
 * `deno compile` downloads its runtime (`denort`) from dl.deno.land the first time; where that
 * host cannot be reached this script says so and exits 1. `tests/compile_flags_test.ts` runs the
 * same entry points with `deno run` and exactly the same flags.
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  applyOverrides,
  isRuntimeDownloadFailure,
  type PermissionSet,
  permissionSets,
  runtimeFlags,
  TARGETS,
} from "./_compile_targets.ts";

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");

const USAGE = `Usage: deno task compile [options]

Builds standalone executables with deno compile, each with its own permission set from the
root deno.json:
${
  TARGETS.map((t) => `  ${t.name.padEnd(18)} ${t.entry.padEnd(16)} set "${t.set}": ${t.summary}`)
    .join("\n")
}

Options:
  --out DIR              where to write them (default dist/bin)
  --only NAME            build only this one (repeatable)
  --target TRIPLE        cross-compile, e.g. aarch64-unknown-linux-gnu (deno compile --target)
  --set SET.KIND=VALUE   override one permission of a set for this build, e.g.
                         --set mcp.net=control.example.com:443 (VALUE: true, false or a
                         comma-separated list; repeatable)
  --agent-config FILE    give infraveil-agent exactly the permissions this host's launcher
                         config needs (infraveil agent permissions --format json)
  --dry-run              print the deno compile commands, build nothing
  -h, --help             show this help

Exit codes: 0 built, 1 deno compile failed (e.g. it cannot download its runtime), 2 usage error.`;

const NO_RUNTIME = (stderr: string) =>
  `error: deno compile needs to download the denort runtime from dl.deno.land, which is
unreachable from this machine:
${
    stderr.split("\n").filter((l) => /dl\.deno\.land|error|dns|Connect/i.test(l)).slice(0, 3)
      .map((l) => `  ${l.trim()}`).join("\n")
  }
Build on a machine that can reach dl.deno.land (the executables need no network to run), or
download denort-<target>.zip for Deno ${Deno.version.deno} elsewhere, unzip it here and point
DENORT_BIN at the denort binary. Until then, run the same entry points with deno run and the
same permissions: deno run -P=<set> <entry> (see docs/operations.md).`;

async function agentSetFor(config: string): Promise<PermissionSet> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "-P=cli",
      `${ROOT}/main.ts`,
      "agent",
      "permissions",
      "--config",
      config,
      "--format",
      "json",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (out.code !== 0) {
    throw new Error(
      `infraveil agent permissions --config ${config} failed:\n${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

/**
 * Runs `deno task compile`.
 *
 * @param args command-line arguments
 * @returns the exit code
 */
export async function main(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        out: { type: "string", default: "dist/bin" },
        only: { type: "string", multiple: true },
        target: { type: "string" },
        set: { type: "string", multiple: true },
        "agent-config": { type: "string" },
        "dry-run": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }));
  } catch (e) {
    console.error(`error: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const unknown = (values.only ?? []).filter((n) => !TARGETS.some((t) => t.name === n));
  if (unknown.length > 0) {
    console.error(
      `error: --only ${unknown[0]}: no such executable; one of ${
        TARGETS.map((t) => t.name).join(", ")
      }`,
    );
    return 2;
  }
  let sets: Record<string, PermissionSet>;
  try {
    const found = permissionSets(await Deno.readTextFile(`${ROOT}/deno.json`));
    for (const name of found.missing) {
      console.error(
        `warning: deno.json has no permission set "${name}"; using the one proposed in scripts/_compile_targets.ts`,
      );
    }
    sets = found.sets;
    if (values["agent-config"]) sets.agent = await agentSetFor(values["agent-config"]);
    sets = applyOverrides(sets, values.set ?? []);
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    return 2;
  }
  const targets = TARGETS.filter((t) => !values.only || values.only.includes(t.name));
  const out = values.out!.startsWith("/") ? values.out! : `${Deno.cwd()}/${values.out}`;
  if (!values["dry-run"]) await Deno.mkdir(out, { recursive: true });
  for (const t of targets) {
    const argv = [
      "compile",
      "--quiet",
      ...runtimeFlags(t, sets),
      ...(values.target ? ["--target", values.target] : []),
      "--output",
      `${out}/${t.name}`,
      `${ROOT}/${t.entry}`,
    ];
    const shown = `deno ${argv.join(" ").replaceAll(`${ROOT}/`, "")}`;
    if (values["dry-run"]) {
      console.log(shown);
      continue;
    }
    console.log(`building ${t.name} (permission set "${t.set}")`);
    const r = await new Deno.Command(Deno.execPath(), {
      args: argv,
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdout: "inherit",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(r.stderr);
    if (r.code !== 0) {
      if (isRuntimeDownloadFailure(stderr)) {
        console.error(NO_RUNTIME(stderr));
      } else {
        console.error(stderr.trimEnd());
        console.error(`error: ${shown} failed (exit ${r.code})`);
      }
      return 1;
    }
    if (stderr.trim()) console.error(stderr.trimEnd());
    console.log(`  wrote ${out}/${t.name}`);
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
