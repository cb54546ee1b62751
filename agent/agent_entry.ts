/**
 * The bundle's entry: the agent itself. The launcher imports it from verified memory and calls
 * {@link start}; it reads the agent config the launcher config names, loads the keys, spawns
 * the workers from the bundle's own verified files (`blob:` URLs, never from disk) and runs
 * until SIGTERM or SIGINT.
 *
 * In a release this file, like each worker, is one self-contained JavaScript module made by
 * `scripts/agent_build.ts` (`deno bundle`), so that the launcher's loader — which lets a bundle
 * import only its own files and `node:` built-ins — can load it; see docs/agent.md.
 *
 * @module
 */
import {
  type Ed25519KeyPair,
  formatPrivateKeyFile,
  generateKeyPair,
  parseKeyFile,
} from "@infraveil/trust";
import { type AgentConfig, parseAgentConfig } from "./agent_config.ts";
import { startAgent } from "./agent.ts";
import type { ControlLink } from "./control_link.ts";
import { createControlLink } from "./control_client_link.ts";
import { AgentError } from "./error.ts";
import type { LaunchContext } from "./launcher.ts";
import type { WorkerUrls } from "./supervisor.ts";
import { planModules } from "./_loader.ts";
import { loadPublicKey } from "./_io.ts";

/** The worker files of a release bundle. */
export const BUNDLE_WORKER_FILES: Readonly<Record<keyof WorkerUrls, string>> = {
  ledger: "ledger_worker.js",
  proxy: "proxy_worker.js",
  exec: "exec_worker.js",
};

/**
 * Makes `blob:` URLs of the bundle's worker files. Each must be one self-contained module (it
 * may import only `node:` built-ins): the same rule the launcher applies to the entry, so no
 * worker can pull in code that was not verified with the bundle.
 *
 * @param files the verified bundle files
 * @returns the worker URLs
 * @throws {AgentError} `LOAD_FAILED` naming the file that is missing or not self-contained
 */
export function bundleWorkerUrls(files: ReadonlyMap<string, Uint8Array>): WorkerUrls {
  const urls = {} as Record<keyof WorkerUrls, string>;
  for (const [name, path] of Object.entries(BUNDLE_WORKER_FILES)) {
    const plan = planModules(files, path);
    if (plan.modules.length !== 1) {
      throw new AgentError(
        "LOAD_FAILED",
        `Bundle worker ${path} imports other bundle files; build workers with scripts/agent_build.ts`,
      );
    }
    urls[name as keyof WorkerUrls] = URL.createObjectURL(
      new Blob([plan.modules[0].source], { type: "text/javascript" }),
    );
  }
  return urls;
}

/**
 * Reads the agent config file.
 *
 * @param path the file
 * @returns the config
 */
export async function readAgentConfig(path: string): Promise<AgentConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new AgentError("BAD_CONFIG", `Cannot read agent config ${path}: ${e}`, { cause: e });
  }
  const slash = path.lastIndexOf("/");
  return parseAgentConfig(text, path, slash === -1 ? "." : path.slice(0, slash) || "/");
}

/**
 * This host's identity key, `stateDir/host.key` (mode 0600), made on first use.
 *
 * @param stateDir the agent's state directory
 * @returns the key pair
 */
export async function loadHostKey(stateDir: string): Promise<Ed25519KeyPair> {
  const path = `${stateDir}/host.key`;
  let text: string | null = null;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      throw new AgentError("STATE_ERROR", `Cannot read host key ${path}: ${e}`, { cause: e });
    }
  }
  if (text === null) {
    const key = generateKeyPair();
    await Deno.mkdir(stateDir, { recursive: true, mode: 0o700 });
    await Deno.writeTextFile(path, formatPrivateKeyFile(key), { createNew: true, mode: 0o600 });
    await Deno.chmod(path, 0o600);
    return key;
  }
  let parsed;
  try {
    parsed = parseKeyFile(text, path);
  } catch (e) {
    throw new AgentError("STATE_ERROR", (e as Error).message, { cause: e });
  }
  if (parsed.kind !== "private") {
    throw new AgentError("STATE_ERROR", `Host key ${path} holds no private key`);
  }
  return parsed.key;
}

/** What {@link runAgentProcess} needs besides the config. */
export interface RunAgentProcessOptions {
  /** The agent config file. */
  configPath: string;
  /** The running version. */
  version: string;
  /** The worker modules. */
  workerUrls: WorkerUrls;
  /** The verified release, recorded at start. */
  release?: { manifestSha256: string; releaseKid: string; tenantKid: string };
  /** Overrides the control-plane link (tests). */
  link?: ControlLink;
  /** Resolves to stop the agent (default: SIGTERM or SIGINT). */
  stopSignal?: Promise<unknown>;
}

/**
 * Loads the config and keys, starts the agent and runs it until stopped.
 *
 * @param options config file, version, worker modules
 * @returns the exit code
 */
export async function runAgentProcess(options: RunAgentProcessOptions): Promise<number> {
  const config = await readAgentConfig(options.configPath);
  const slash = options.configPath.lastIndexOf("/");
  const baseDir = slash === -1 ? "." : options.configPath.slice(0, slash) || "/";
  const controlKey = await loadPublicKey(config.control.publicKey, baseDir, "BAD_CONFIG");
  const hostKey = await loadHostKey(config.stateDir);
  let enrollmentToken: string | null = null;
  const enrolled = await Deno.stat(`${config.stateDir}/enrollment.json`).then(
    () => true,
    () => false,
  );
  if (!enrolled && config.control.enrollmentTokenFile) {
    try {
      enrollmentToken = (await Deno.readTextFile(config.control.enrollmentTokenFile)).trim();
    } catch (e) {
      throw new AgentError(
        "BAD_CONFIG",
        `Cannot read enrollment token ${config.control.enrollmentTokenFile}: ${e}`,
      );
    }
  }
  const link = options.link ?? createControlLink({
    config,
    hostKey,
    controlKey: controlKey.publicKey,
  });
  const agent = await startAgent({
    config,
    version: options.version,
    release: options.release,
    controlKey: { kid: controlKey.kid, publicKey: controlKey.publicKey },
    hostKey,
    enrollmentToken,
    link,
    workerUrls: options.workerUrls,
  });
  console.error(
    `infraveil agent ${options.version} on ${config.host}: proxy ${config.proxy.listen} → ${config.proxy.backend}, health ${agent.healthUrl}`,
  );
  const stopSignal = options.stopSignal ?? new Promise<string>((resolve) => {
    for (const sig of ["SIGTERM", "SIGINT"] as const) {
      Deno.addSignalListener(sig, () => resolve(sig));
    }
  });
  await Promise.race([stopSignal, agent.finished]);
  await agent.stop();
  return 0;
}

/**
 * The bundle entry: runs the agent from the verified bundle.
 *
 * @param context what the launcher passes: the verified bundle, state dir, agent config
 * @returns the exit code
 */
export async function start(context: LaunchContext): Promise<number> {
  if (context.agentConfig === null) {
    console.error(
      `error: the launcher config names no "agent_config"; add the agent config file to it (docs/agent.md)`,
    );
    return 2;
  }
  try {
    return await runAgentProcess({
      configPath: context.agentConfig,
      version: context.bundle.manifest.version,
      workerUrls: bundleWorkerUrls(context.bundle.files),
      release: {
        manifestSha256: context.bundle.manifestSha256,
        releaseKid: context.bundle.releaseKid,
        tenantKid: context.bundle.tenantKid,
      },
    });
  } catch (e) {
    if (!(e instanceof AgentError)) throw e;
    console.error(`error: ${e.message}`);
    return e.code === "BAD_CONFIG" ? 2 : 1;
  }
}
