/**
 * `infraveil proxy`: runs the reverse proxy on its own. The only file of the package that
 * reads arguments, the environment and files.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  parseBackend,
  parseConfig,
  parseHostPort,
  type ProxyConfig,
  resolveConfig,
} from "./config.ts";
import { loadCrsEngine } from "./crs_loader.ts";
import { ProxyError } from "./errors.ts";
import { createProxy } from "./proxy.ts";
import type { RuleEngine } from "./rule_engine.ts";

const USAGE = `Usage: infraveil proxy [--listen HOST:PORT] [--backend URL] [--config FILE]

Runs the infraveil reverse proxy in front of one backend.

Options:
  --listen HOST:PORT   address to listen on (default 127.0.0.1:8080, or the config's "listen")
  --backend URL        backend origin, e.g. http://127.0.0.1:3000 (or the config's "backend")
  --config FILE        JSONC configuration file (see docs/proxy.md)
  --check              validate the configuration and exit
  -h, --help           show this help

Flags override the configuration file. Stop with Ctrl-C (SIGINT) or SIGTERM.
Exit codes: 0 stopped cleanly, 1 runtime failure, 2 usage or configuration error.
`;

/**
 * Runs the proxy CLI.
 *
 * @param args Arguments after `infraveil proxy`.
 * @returns The exit code.
 */
export async function main(args: string[]): Promise<number> {
  let values: {
    listen?: string;
    backend?: string;
    config?: string;
    check?: boolean;
    help?: boolean;
  };
  try {
    ({ values } = parseArgs({
      args,
      options: {
        listen: { type: "string" },
        backend: { type: "string" },
        config: { type: "string" },
        check: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    console.error(`infraveil proxy: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  let config: ProxyConfig;
  let baseDir = Deno.cwd();
  try {
    if (values.config !== undefined) {
      let text: string;
      try {
        text = await Deno.readTextFile(values.config);
      } catch (err) {
        console.error(
          `infraveil proxy: cannot read config file ${values.config}: ${(err as Error).message}`,
        );
        return 2;
      }
      config = parseConfig(text, values.config);
      const slash = values.config.lastIndexOf("/");
      if (slash > 0) baseDir = values.config.slice(0, slash);
      if (!baseDir.startsWith("/")) baseDir = `${Deno.cwd()}/${baseDir}`;
    } else {
      config = resolveConfig({});
    }
  } catch (err) {
    if (err instanceof ProxyError) {
      console.error(`infraveil proxy: ${err.message}`);
      return 2;
    }
    throw err;
  }
  if (values.listen !== undefined) {
    if (!parseHostPort(values.listen)) {
      console.error(
        `infraveil proxy: --listen must be HOST:PORT (e.g. 127.0.0.1:8080), got "${values.listen}"`,
      );
      return 2;
    }
    config.listen = values.listen;
  }
  if (values.backend !== undefined) {
    const b = parseBackend(values.backend);
    if (typeof b === "string") {
      console.error(`infraveil proxy: --backend: ${b}`);
      return 2;
    }
    config.backend = values.backend;
  }
  const engines: RuleEngine[] = [];
  if (config.rules.engine === "crs") {
    try {
      engines.push(
        await loadCrsEngine(config.rules, {
          baseDir,
          files: {
            readFile: (p) => Deno.readTextFileSync(p),
            listDir: (p) => [...Deno.readDirSync(p)].map((e) => e.name),
          },
        }),
      );
    } catch (err) {
      console.error(`infraveil proxy: ${(err as Error).message}`);
      return 2;
    }
  }
  if (values.check) {
    console.log(`configuration OK (listen ${config.listen}, backend ${config.backend})`);
    return 0;
  }
  // SO_REUSEPORT is behind --unstable-net, whose APIs are absent without it.
  if (
    config.workers > 1 &&
    typeof (Deno as unknown as { listenDatagram?: unknown }).listenDatagram !== "function"
  ) {
    console.error(
      `infraveil proxy: "workers": ${config.workers} needs Deno's --unstable-net flag ` +
        `(SO_REUSEPORT) — run with --unstable-net, or set "workers": 1`,
    );
    return 2;
  }
  const proxy = createProxy({
    config,
    ruleEngines: engines,
    onError: (e) => console.error(`infraveil proxy: internal error: ${(e as Error)?.stack ?? e}`),
  });
  let addr: { hostname: string; port: number };
  try {
    addr = proxy.listen();
  } catch (err) {
    console.error(`infraveil proxy: ${(err as Error).message}`);
    return 2;
  }
  // Extra listener threads share the port through SO_REUSEPORT, like nginx's worker processes.
  const threads: Worker[] = [];
  const bound = addr.hostname.includes(":")
    ? `[${addr.hostname}]:${addr.port}`
    : `${addr.hostname}:${addr.port}`;
  for (let i = 1; i < config.workers; i++) {
    const w = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
    threads.push(w);
    const ready = new Promise<void>((resolve, reject) => {
      w.onmessage = (e) => {
        if (e.data?.type === "listening") resolve();
        else if (e.data?.type === "error") reject(new Error(e.data.message));
      };
      w.onerror = (e) => {
        e.preventDefault();
        reject(new Error(e.message));
      };
    });
    w.postMessage({
      type: "start",
      config: { ...config, listen: bound },
      exportToParent: false,
      baseDir,
    });
    try {
      await ready;
    } catch (err) {
      console.error(`infraveil proxy: worker thread ${i} failed: ${(err as Error).message}`);
      for (const t of threads) t.terminate();
      await proxy.close();
      return 1;
    }
  }
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  console.error(
    `infraveil proxy: listening on http://${host}:${addr.port} → ${config.backend} ` +
      `(mode ${config.mode}, rules: ${
        [config.rules.baseline ? "baseline" : "", ...engines.map((e) => e.name)].filter(Boolean)
          .join(", ") || "none"
      }, threads: ${config.workers})`,
  );
  const { promise, resolve } = Promise.withResolvers<void>();
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, resolve);
  await promise;
  for (const s of signals) Deno.removeSignalListener(s, resolve);
  await Promise.all(threads.map((w) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 3000);
      w.onmessage = (e) => {
        if (e.data?.type === "stopped") {
          clearTimeout(t);
          resolve();
        }
      };
      w.postMessage({ type: "stop" });
    })
  ));
  for (const w of threads) w.terminate();
  await proxy.close();
  console.error("infraveil proxy: stopped");
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
