/**
 * Benchmark: the launcher's self-check (`infraveil agent verify`) of a 50 MiB bundle against
 * `sha256sum` of the same file, measured in the same run, and the self-check's peak memory.
 *
 *   deno run -A scripts/agent_bench.ts [--runs 5] [--mib 50]
 *
 * Each self-check runs in a fresh child process (`agent verify` as the CLI runs it, Deno start-up
 * included) that reports its own peak RSS (VmHWM); `sha256sum` runs as a process too. Prints
 * medians and the ratios the issue sets: time ≤ 3× sha256sum, memory ≤ 3× the bundle size.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { formatPublicKeyFile, generateKeyPair } from "@infraveil/trust";
import { createBundle, formatTenantKeyFile, generateTenantKey } from "@infraveil/agent";
import { main } from "@infraveil/agent/main";

const self = new URL(import.meta.url).pathname;

async function child(config: string): Promise<void> {
  const started = performance.now();
  const code = await main(["verify", "--config", config]);
  const ms = performance.now() - started;
  const status = await Deno.readTextFile("/proc/self/status");
  const hwmKib = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1]);
  console.log(JSON.stringify({ code, ms, hwmKib }));
}

async function timed(cmd: string, args: string[]): Promise<{ ms: number; stdout: string }> {
  const started = performance.now();
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const ms = performance.now() - started;
  if (!out.success) {
    throw new Error(`${cmd} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return { ms, stdout: new TextDecoder().decode(out.stdout) };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function bench(runs: number, mib: number): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "iv-agent-bench-" });
  try {
    const release = generateKeyPair();
    const tenant = generateTenantKey();
    const data = new Uint8Array(mib << 20);
    for (let i = 0; i < data.length; i += 65536) {
      crypto.getRandomValues(data.subarray(i, i + 65536));
    }
    const enc = new TextEncoder();
    const bundle = await createBundle(
      [
        { path: "main.ts", data: enc.encode(`export function start() { return 0; }\n`) },
        { path: "payload.bin", data },
      ],
      {
        entry: "main.ts",
        version: "1.0.0",
        expires: Date.now() + 86_400_000,
        releaseKey: release,
        tenantKey: tenant,
      },
    );
    await Deno.writeFile(`${dir}/agent.bundle`, bundle);
    await Deno.writeTextFile(`${dir}/release.pub`, formatPublicKeyFile(release));
    await Deno.writeTextFile(`${dir}/tenant.key`, formatTenantKeyFile(tenant), { mode: 0o600 });
    await Deno.chmod(`${dir}/tenant.key`, 0o600);
    await Deno.writeTextFile(
      `${dir}/launcher.json`,
      JSON.stringify({
        bundle: "agent.bundle",
        release_keys: ["release.pub"],
        tenant_key_file: "tenant.key",
        state_dir: "state",
      }),
    );
    const size = bundle.length;
    const deno = Deno.execPath();
    const childArgs = ["run", "-A", "--quiet", self, "--child", `${dir}/launcher.json`];

    // Warm the page cache and Deno's module cache.
    await timed("sha256sum", [`${dir}/agent.bundle`]);
    await timed(deno, childArgs);

    const sums: number[] = [];
    const checks: number[] = [];
    const inProcess: number[] = [];
    let peakKib = 0;
    for (let i = 0; i < runs; i++) {
      sums.push((await timed("sha256sum", [`${dir}/agent.bundle`])).ms);
      const out = await timed(deno, childArgs);
      const report = JSON.parse(out.stdout.trim().split("\n").at(-1)!);
      if (report.code !== 0) throw new Error(`self-check exited ${report.code}`);
      checks.push(out.ms);
      inProcess.push(report.ms);
      peakKib = Math.max(peakKib, report.hwmKib);
    }
    const sum = median(sums);
    const check = median(checks);
    const sizeMib = size / (1 << 20);
    const peakMib = peakKib / 1024;
    console.log(`agent self-check of a ${sizeMib.toFixed(1)} MiB bundle, ${runs} runs (medians):`);
    console.log(`  sha256sum (process):          ${sum.toFixed(0)} ms`);
    console.log(
      `  agent verify (process):       ${check.toFixed(0)} ms  → ${
        (check / sum).toFixed(2)
      }× sha256sum (target ≤ 3×)`,
    );
    console.log(
      `  agent verify (in-process):    ${median(inProcess).toFixed(0)} ms  → ${
        (median(inProcess) / sum).toFixed(2)
      }× sha256sum`,
    );
    console.log(
      `  peak RSS of the self-check:   ${peakMib.toFixed(0)} MiB  → ${
        (peakMib / sizeMib).toFixed(2)
      }× the bundle (target ≤ 3×)`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      child: { type: "string" },
      runs: { type: "string", default: "5" },
      mib: { type: "string", default: "50" },
    },
    strict: true,
  });
  if (values.child) await child(values.child);
  else await bench(Number(values.runs), Number(values.mib));
}
