/**
 * Proxy throughput and latency against Debian's nginx, on loopback, in one run.
 *
 *   deno run -A scripts/proxy_wrk_bench.ts [--duration 5] [--runs 3] [--connections 64]
 *
 * Starts one nginx (a static backend plus an nginx reverse proxy to it, keepalive upstream) and
 * the infraveil proxy (rules off; tracing off, then on), drives each with `wrk` in interleaved
 * rounds, and prints medians and the ratios the proxy issue sets:
 *   - proxy (rules off) req/s ÷ nginx proxy req/s            (target ≥ 0.5)
 *   - added p99 vs direct at half the proxy's peak req/s       (target ≤ 1 ms)
 *   - throughput lost with tracing on                          (target ≤ 10 %)
 * Everything runs on 127.0.0.1 and is stopped before exit, also on failure.
 *
 * @module
 */

import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    duration: { type: "string", default: "5" },
    runs: { type: "string", default: "3" },
    connections: { type: "string", default: "64" },
    threads: { type: "string", default: "1" },
    // Listener threads of the proxy; nginx runs "worker_processes auto" (one per CPU).
    "proxy-threads": { type: "string", default: String(navigator.hardwareConcurrency) },
  },
  strict: true,
});
const DURATION = Number(values.duration);
const RUNS = Number(values.runs);
const CONNS = Number(values.connections);
const THREADS = Number(values.threads);
const PROXY_THREADS = Number(values["proxy-threads"]);

const root = new URL("..", import.meta.url).pathname;
const children: Deno.ChildProcess[] = [];
const tmp = await Deno.makeTempDir({ prefix: "infraveil-bench-" });

function which(cmd: string): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin").split(":").concat(["/usr/sbin"])) {
    try {
      if (Deno.statSync(`${dir}/${cmd}`).isFile) return `${dir}/${cmd}`;
    } catch { /* next */ }
  }
  return undefined;
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function waitFor(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      c.close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`nothing listening on 127.0.0.1:${port}`);
}

function spawn(cmd: string, args: string[]): Deno.ChildProcess {
  const p = new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).spawn();
  children.push(p);
  return p;
}

async function stop(p: Deno.ChildProcess): Promise<void> {
  try {
    p.kill("SIGTERM");
  } catch { /* exited */ }
  const t = setTimeout(() => {
    try {
      p.kill("SIGKILL");
    } catch { /* exited */ }
  }, 3000);
  await p.status;
  clearTimeout(t);
  await p.stderr.cancel().catch(() => {});
  children.splice(children.indexOf(p), 1);
}

interface WrkResult {
  rps: number;
  p99ms: number;
  p50ms: number;
}

function toMs(v: string): number {
  const m = /^([0-9.]+)(us|ms|s)$/.exec(v);
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === "us" ? n / 1000 : m[2] === "ms" ? n : n * 1000;
}

async function wrk(url: string, opts: { conns: number; delayMs?: number }): Promise<WrkResult> {
  const args = [
    `-t${Math.min(THREADS, opts.conns)}`,
    `-c${opts.conns}`,
    `-d${DURATION}s`,
    "--latency",
  ];
  if (opts.delayMs !== undefined) {
    const script = `${tmp}/delay.lua`;
    await Deno.writeTextFile(script, `function delay() return ${opts.delayMs} end\n`);
    args.push("-s", script);
  }
  args.push(url);
  const out = await new Deno.Command("wrk", { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  const rps = Number(/Requests\/sec:\s+([0-9.]+)/.exec(text)?.[1]);
  const p99 = toMs(/^\s+99%\s+(\S+)/m.exec(text)?.[1] ?? "");
  const p50 = toMs(/^\s+50%\s+(\S+)/m.exec(text)?.[1] ?? "");
  const errors = /Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)/.exec(text);
  if (!Number.isFinite(rps)) throw new Error(`wrk output not understood:\n${text}`);
  if (errors) console.error(`  note (${url}): ${errors[0]}`);
  return { rps, p99ms: p99, p50ms: p50 };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main(): Promise<number> {
  for (const tool of ["nginx", "wrk"]) {
    if (!which(tool)) {
      console.error(`${tool} not found: apt-get install -y nginx wrk`);
      return 2;
    }
  }
  const backendPort = freePort();
  const nginxPort = freePort();
  await Deno.mkdir(`${tmp}/logs`);
  await Deno.writeTextFile(
    `${tmp}/nginx.conf`,
    `worker_processes auto;
pid ${tmp}/nginx.pid;
error_log ${tmp}/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${tmp}/body; proxy_temp_path ${tmp}/proxy;
  fastcgi_temp_path ${tmp}/fcgi; uwsgi_temp_path ${tmp}/uwsgi; scgi_temp_path ${tmp}/scgi;
  keepalive_requests 1000000;
  upstream backend { server 127.0.0.1:${backendPort}; keepalive 128; }
  server {
    listen 127.0.0.1:${backendPort};
    location / { default_type text/plain; return 200 "hello from the benchmark backend\\n"; }
  }
  server {
    listen 127.0.0.1:${nginxPort};
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }
}
`,
  );
  const nginx = spawn("nginx", ["-p", tmp, "-c", `${tmp}/nginx.conf`, "-g", "daemon off;"]);
  await waitFor(backendPort);
  await waitFor(nginxPort);

  const proxyConfig = async (
    name: string,
    tracing: boolean,
    workers = PROXY_THREADS,
  ): Promise<{ port: number; file: string }> => {
    const port = freePort();
    const file = `${tmp}/${name}.jsonc`;
    await Deno.writeTextFile(
      file,
      JSON.stringify({
        listen: `127.0.0.1:${port}`,
        backend: `http://127.0.0.1:${backendPort}`,
        rules: { baseline: false },
        tracing: { enabled: tracing },
        workers,
      }),
    );
    return { port, file };
  };
  const plain = await proxyConfig("plain", false);
  const traced = await proxyConfig("traced", true);
  const single = await proxyConfig("single", false, 1);
  const startProxy = async (cfg: { port: number; file: string }): Promise<Deno.ChildProcess> => {
    const p = spawn(Deno.execPath(), [
      "run",
      "-A",
      "--unstable-net", // SO_REUSEPORT for the listener threads
      `${root}proxy/main.ts`,
      "--config",
      cfg.file,
    ]);
    await waitFor(cfg.port);
    return p;
  };

  const targets = {
    direct: `http://127.0.0.1:${backendPort}/`,
    nginx: `http://127.0.0.1:${nginxPort}/`,
    proxy: `http://127.0.0.1:${plain.port}/`,
    traced: `http://127.0.0.1:${traced.port}/`,
    proxy1: `http://127.0.0.1:${single.port}/`,
  };
  const peak: Record<string, WrkResult[]> = {
    direct: [],
    nginx: [],
    proxy: [],
    traced: [],
    proxy1: [],
  };
  console.log(
    `wrk -t${THREADS} -c${CONNS} -d${DURATION}s, ${RUNS} interleaved rounds; backend nginx static on ` +
      `:${backendPort}; proxy = ${PROXY_THREADS} listener threads (proxy1 = 1), rules off`,
  );
  const p1 = await startProxy(plain);
  const p2 = await startProxy(traced);
  const p3 = await startProxy(single);
  // Warm up the JIT and the upstream pools.
  for (const url of [targets.proxy, targets.traced, targets.proxy1, targets.nginx]) {
    await new Deno.Command("wrk", { args: ["-t1", `-c${CONNS}`, "-d2s", url], stdout: "null" })
      .output();
  }
  for (let r = 0; r < RUNS; r++) {
    for (const [name, url] of Object.entries(targets)) {
      const res = await wrk(url, { conns: CONNS });
      peak[name].push(res);
      console.log(
        `  round ${r + 1} ${name.padEnd(7)} ${res.rps.toFixed(0).padStart(8)} req/s  p99 ${
          res.p99ms.toFixed(2)
        } ms`,
      );
    }
  }
  const rps = (n: string): number => median(peak[n].map((x) => x.rps));

  // Half of the proxy's peak: constant-ish rate with wrk's delay() hook.
  const half = rps("proxy") / 2;
  const delayMs = 2;
  const conns = Math.max(2, Math.round((half * (delayMs + 0.1)) / 1000));
  const halfRes: Record<string, WrkResult[]> = { direct: [], proxy: [] };
  for (let r = 0; r < RUNS; r++) {
    for (const name of ["direct", "proxy"] as const) {
      const res = await wrk(targets[name], { conns, delayMs });
      halfRes[name].push(res);
      console.log(
        `  half-load round ${r + 1} ${name.padEnd(7)} ${
          res.rps.toFixed(0).padStart(8)
        } req/s  p50 ${res.p50ms.toFixed(3)} ms  p99 ${res.p99ms.toFixed(3)} ms`,
      );
    }
  }
  await stop(p1);
  await stop(p2);
  await stop(p3);
  await stop(nginx);

  const p99 = (n: string): number => median(halfRes[n].map((x) => x.p99ms));
  const ratio = rps("proxy") / rps("nginx");
  const added = p99("proxy") - p99("direct");
  const tracingCost = 1 - rps("traced") / rps("proxy");
  console.log("\nmedians:");
  for (const n of Object.keys(peak)) {
    console.log(`  ${n.padEnd(7)} ${rps(n).toFixed(0).padStart(8)} req/s`);
  }
  console.log(
    `\nproxy/nginx throughput ratio (rules off, tracing off, ${PROXY_THREADS} threads): ${
      ratio.toFixed(2)
    } (single thread ${(rps("proxy1") / rps("nginx")).toFixed(2)})  (target >= 0.50) ${
      ratio >= 0.5 ? "PASS" : "FAIL"
    }`,
  );
  console.log(
    `added p99 at half peak (~${half.toFixed(0)} req/s, ${conns} conns): ${added.toFixed(3)} ms ` +
      `(proxy ${p99("proxy").toFixed(3)} − direct ${p99("direct").toFixed(3)}; target <= 1 ms) ${
        added <= 1 ? "PASS" : "FAIL"
      }`,
  );
  console.log(
    `tracing cost: ${(tracingCost * 100).toFixed(1)} % of throughput (target <= 10 %) ${
      tracingCost <= 0.1 ? "PASS" : "FAIL"
    }`,
  );
  return 0;
}

let code = 1;
try {
  code = await main();
} finally {
  for (const p of [...children]) await stop(p);
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
}
Deno.exit(code);
