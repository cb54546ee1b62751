/**
 * `infraveil agent verify|run --config FILE`: the launcher's command line. Reads the config,
 * the keys and the bundle (once), then hands them to {@link launch}.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { openLedger } from "@infraveil/ledger";
import { AgentError } from "./error.ts";
import { launch, LAUNCHER_EXIT_CODES, type RefusalRecord } from "./launcher.ts";
import {
  fileVersionState,
  ledgerCheckedVersionState,
  loadPublicKey,
  readFileOnce,
  readLauncherConfig,
  readTenantKeyFile,
} from "./_io.ts";

const USAGE = `Usage:
  infraveil agent verify --config FILE        check the bundle the config names, run nothing
  infraveil agent run --config FILE [-- ARGS] check it, then start its entry with ARGS
  infraveil agent permissions --config FILE [--format flags|json]
                                              print the deno permission flags (or the
                                              permission set) the agent process needs

The check, in order: AES-256-GCM decryption with the tenant key; the release signature
(trusted, unrevoked key) and the tenant MAC over the manifest; every file's digest, nothing
missing or extra, the ciphertext digest, no rollback, not expired.

Exit codes: 0 verified (verify) or the entry's own code (run); 2 usage or config error;
10 bundle unreadable, 11 not a bundle, 12 cannot decrypt, 13 unknown release key,
14 revoked release key, 15 bad signature, 16 bad tenant MAC, 17 bad manifest, 18 bad archive,
19 file digest mismatch, 20 file missing, 21 unexpected file, 22 ciphertext digest mismatch,
23 rollback, 24 expired, 25 state error, 26 entry cannot be loaded, 27 entry failed.
See docs/release.md.`;

/**
 * Appends a refusal to the ledger file named in the config. The ledger is opened only for that
 * append and closed at once, so it is never held (locked) while the agent runs. A ledger that
 * cannot be opened or written makes this throw; the caller reports it, and the refusal itself
 * still stands with its exit code.
 */
async function recordInLedger(path: string, entry: RefusalRecord): Promise<void> {
  const ledger = await openLedger(path, { mode: "fsync", actor: "launcher" });
  try {
    await ledger.append({ ...entry, data: { ...entry.data } });
  } finally {
    await ledger.close();
  }
}

/**
 * Runs `infraveil agent` with the arguments after `agent`.
 *
 * @param args command-line arguments
 * @returns the exit code
 */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  if (command === "--help" || command === "-h" || command === "help") return help();
  if (command === "permissions") return await permissionsCommand(rest);
  if (command !== "verify" && command !== "run") {
    return usage(command === undefined ? "missing command" : `unknown command "agent ${command}"`);
  }
  const dash = rest.indexOf("--");
  const entryArgs = dash === -1 ? [] : rest.slice(dash + 1);
  let values;
  try {
    ({ values } = parseArgs({
      args: dash === -1 ? rest : rest.slice(0, dash),
      options: { config: { type: "string" }, help: { type: "boolean", short: "h" } },
      strict: true,
    }));
  } catch (e) {
    return usage((e as Error).message);
  }
  if (values.help) return help();
  if (!values.config) return usage(`agent ${command} needs --config FILE`);
  if (command === "verify" && entryArgs.length > 0) return usage("agent verify takes no ARGS");

  try {
    const config = await readLauncherConfig(values.config);
    const ledgerPath = config.ledger;
    const recordRefusal = ledgerPath
      ? (entry: RefusalRecord) => recordInLedger(ledgerPath, entry)
      : undefined;
    const slash = values.config.lastIndexOf("/");
    const configDir = slash === -1 ? "." : values.config.slice(0, slash) || "/";
    let keys;
    try {
      keys = {
        trustedKeys: await Promise.all(
          config.releaseKeys.map((spec) => loadPublicKey(spec, configDir, "BAD_CONFIG")),
        ),
        tenantKey: await readTenantKeyFile(config.tenantKeyFile),
      };
    } catch (e) {
      if (e instanceof AgentError && recordRefusal) {
        await recordRefusal({
          type: "agent.launch.refused",
          actor: "launcher",
          data: {
            code: e.code,
            exit_code: 2,
            message: e.message,
            mode: command,
            bundle: config.bundle,
          },
        }).catch((why) => warnNotRecorded(why));
      }
      throw e;
    }
    const outcome = await launch(
      {
        ...keys,
        revokedKids: config.revokedKids,
        mode: command,
        bundleName: config.bundle,
        stateDir: config.stateDir,
        args: entryArgs,
        agentConfig: config.agentConfig,
      },
      {
        readBundle: () => readFileOnce(config.bundle),
        // The agent's ledger records every version that ran: a deleted or older state file
        // cannot turn rollback protection off.
        state: config.agentConfig
          ? ledgerCheckedVersionState(fileVersionState(config.stateDir), {
            stateFile: `${config.stateDir}/last_version.json`,
            agentConfig: config.agentConfig,
          })
          : fileVersionState(config.stateDir),
        recordRefusal,
      },
    );
    if (outcome.recordError !== undefined) warnNotRecorded(outcome.recordError);
    if (outcome.error) {
      console.error(`${outcome.message}`);
      const { code } = outcome.error;
      const ran = code === "ENTRY_FAILED"
        ? ""
        : code === "LOAD_FAILED"
        ? "; the entry did not start"
        : "; nothing of the bundle ran";
      console.error(`(refused: ${code}, exit ${outcome.exitCode}${ran})`);
    } else if (command === "verify") {
      console.log(outcome.message);
    }
    return outcome.exitCode;
  } catch (e) {
    if (!(e instanceof AgentError)) throw e;
    console.error(`error: ${e.message}`);
    return LAUNCHER_EXIT_CODES[e.code];
  }
}

/**
 * `agent permissions`: the process permissions derived from the launcher and agent configs,
 * as `deno run` flags (for the systemd unit) or as a permission set (for deno.json).
 */
async function permissionsCommand(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        config: { type: "string" },
        format: { type: "string", default: "flags" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }));
  } catch (e) {
    return usage((e as Error).message);
  }
  if (values.help) return help();
  if (!values.config) return usage("agent permissions needs --config FILE");
  if (values.format !== "flags" && values.format !== "json") {
    return usage(`--format must be "flags" or "json", not "${values.format}"`);
  }
  try {
    const launcher = await readLauncherConfig(values.config);
    if (!launcher.agentConfig) {
      throw new AgentError(
        "BAD_CONFIG",
        `Launcher config ${values.config} names no "agent_config"; add the agent config file`,
      );
    }
    // Loaded only here: `verify` and `run` must not pull the agent's code into the launcher.
    const { readAgentConfig } = await import("./agent_entry.ts");
    const { permissionFlags, processPermissions } = await import("./permissions.ts");
    const agent = await readAgentConfig(launcher.agentConfig);
    const dirOf = (p: string) => p.slice(0, p.lastIndexOf("/")) || "/";
    const isFile = (p: string) => Deno.stat(p).then((s) => s.isFile, () => false);
    const inDir = (base: string, spec: string) => (spec.startsWith("/") ? spec : `${base}/${spec}`);
    const releaseKeyFiles: string[] = [];
    for (const spec of launcher.releaseKeys) {
      const path = inDir(dirOf(values.config), spec);
      if (await isFile(path)) releaseKeyFiles.push(path);
    }
    const controlKey = inDir(dirOf(launcher.agentConfig), agent.control.publicKey);
    const p = processPermissions(agent, {
      launcherConfig: values.config,
      agentConfig: launcher.agentConfig,
      bundle: launcher.bundle,
      tenantKeyFile: launcher.tenantKeyFile,
      releaseKeyFiles,
      launcherStateDir: launcher.stateDir,
      controlKeyFile: (await isFile(controlKey)) ? controlKey : undefined,
      enrollmentTokenFile: agent.control.enrollmentTokenFile,
      ledgerFile: launcher.ledger,
    });
    if (values.format === "json") {
      const set: Record<string, unknown> = { read: p.read, write: p.write, net: p.net };
      if (p.run.length > 0) set.run = p.run;
      console.log(JSON.stringify(set, null, 2));
    } else {
      console.log(["--unstable-worker-options", "--no-prompt", ...permissionFlags(p)].join("\n"));
    }
    return 0;
  } catch (e) {
    if (!(e instanceof AgentError)) throw e;
    console.error(`error: ${e.message}`);
    return 2;
  }
}

function warnNotRecorded(e: unknown): void {
  console.error(
    `warning: refusal not recorded in the ledger: ${e instanceof Error ? e.message : e}`,
  );
}

function help(): number {
  console.log(USAGE);
  return 0;
}

function usage(problem: string): number {
  console.error(`error: ${problem}\n\n${USAGE}`);
  return 2;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
