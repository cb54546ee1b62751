/**
 * The standalone executables' permissions, without `deno compile` (which needs to download its
 * runtime): each entry point runs under `deno run` with exactly the flags `scripts/compile.ts`
 * bakes into its executable (`runtimeFlags`, from the same permission sets and `--set`
 * overrides). Each answers `--help`, does one real thing inside its set, and is refused
 * (`NotCapable`) one step outside it.
 */
import assert from "node:assert/strict";
import { createBundle, formatTenantKeyFile, generateTenantKey } from "@infraveil/agent";
import { formatPublicKeyFile, generateKeyPair } from "@infraveil/trust";
import {
  applyOverrides,
  type CompileTarget,
  isRuntimeDownloadFailure,
  permissionFlags,
  type PermissionSet,
  permissionSets,
  runtimeFlags,
  TARGETS,
} from "../scripts/_compile_targets.ts";
import { freePort } from "./_harness.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const IN_CI = Deno.env.get("CI") === "true";
const found = permissionSets(await Deno.readTextFile(`${ROOT}deno.json`));
if (found.missing.length > 0) {
  console.error(
    `%croot deno.json lacks permission set(s) ${
      found.missing.join(", ")
    }: testing the ones proposed in scripts/_compile_targets.ts`,
    "color: yellow",
  );
}
const OPTS = { sanitizeResources: false, sanitizeOps: false };

function target(name: string): CompileTarget {
  return TARGETS.find((t) => t.name === name)!;
}

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** `deno run FLAGS ENTRY ARGS`, the flags being exactly the executable's. */
async function run(
  t: CompileTarget,
  args: string[],
  options: { sets?: Record<string, PermissionSet>; env?: Record<string, string> } = {},
): Promise<Ran> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      ...runtimeFlags(t, options.sets ?? found.sets),
      `${ROOT}${t.entry}`,
      ...args,
    ],
    env: { NO_COLOR: "1", ...options.env },
    clearEnv: true,
    stdin: "null",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  const until = Date.now() + 15_000;
  while (Date.now() < until) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

Deno.test("the root deno.json has a permission set for every executable (CI)", {
  ignore: !IN_CI,
}, () => {
  assert.deepEqual(found.missing, [], "add the proposed sets of scripts/_compile_targets.ts");
});

Deno.test("permissionFlags() maps a set to flags and refuses what it cannot map", () => {
  assert.deepEqual(
    permissionFlags({ read: true, net: ["a:1", "b:2"], env: false, run: [] }, "x"),
    ["--allow-read", "--allow-net=a:1,b:2"],
  );
  assert.throws(
    () => permissionFlags({ all: true } as PermissionSet, "x"),
    /unknown permission "all"/,
  );
  assert.throws(() => permissionFlags({ read: "yes" } as unknown as PermissionSet, "x"), /x\.read/);
  const over = applyOverrides({ mcp: { net: ["a:1"] } }, ["mcp.net=b:2,c:3", "mcp.read=false"]);
  assert.deepEqual(over.mcp, { net: ["b:2", "c:3"], read: false });
  assert.throws(() => applyOverrides({ mcp: {} }, ["mcp.all=true"]), /SET\.KIND=VALUE/);
  assert.throws(() => applyOverrides({ mcp: {} }, ["nope.net=x"]), /no permission set "nope"/);
  // No executable is compiled with a blanket grant of everything.
  for (const t of TARGETS) {
    const flags = runtimeFlags(t, found.sets);
    assert.ok(!flags.includes("-A") && !flags.includes("--allow-all"), t.name);
    assert.ok(flags.includes("--no-prompt"), t.name);
  }
});

Deno.test("isRuntimeDownloadFailure() recognises deno compile's failed runtime download", () => {
  assert.ok(isRuntimeDownloadFailure(
    "Download https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip\n" +
      "error sending request for url (https://dl.deno.land/…): client error (Connect): dns error",
  ));
  assert.ok(!isRuntimeDownloadFailure('error: Module not found "file:///x/main.ts"'));
});

Deno.test("scripts/compile.ts --dry-run passes each executable its own set's flags", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", `${ROOT}scripts/compile.ts`, "--dry-run"],
    stderr: "null",
  }).output();
  assert.equal(out.code, 0);
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  assert.equal(lines.length, TARGETS.length);
  for (const [i, t] of TARGETS.entries()) {
    assert.equal(
      lines[i],
      `deno compile --quiet ${
        runtimeFlags(t, found.sets).join(" ")
      } --output dist/bin/${t.name} ${t.entry}`,
    );
  }
});

for (const t of TARGETS) {
  Deno.test(`${t.name}: --help works under its own permissions`, OPTS, async () => {
    const r = await run(t, ["--help"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout + r.stderr, /Usage/);
  });
}

Deno.test(
  "infraveil (set cli): generates a key; cannot reach a host outside 127.0.0.1",
  OPTS,
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "iv-compile-" });
    try {
      const t = target("infraveil");
      const r = await run(t, ["keys", "generate", "--out", `${dir}/k.key`]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok((await Deno.stat(`${dir}/k.key.pub`)).isFile);
      const refused = await run(t, [
        "control",
        "approve",
        "req_x",
        "--tenant",
        "acme",
        "--token",
        "ivt_x.y",
        "--url",
        "http://192.0.2.1:8700",
      ]);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /NotCapable: Requires net access to "192\.0\.2\.1:8700"/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  "infraveil-control and infraveil-mcp (sets control, mcp): serve, check; refused outside",
  OPTS,
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "iv-compile-" });
    const control = target("infraveil-control");
    const mcp = target("infraveil-mcp");
    const port = freePort();
    // The same overrides `deno task compile --set …` would bake in for this data directory, port
    // and identity file.
    const sets = applyOverrides(found.sets, [
      `control.read=${dir}`,
      `control.write=${dir}`,
      `control.net=127.0.0.1:${port}`,
      `mcp.read=${dir}/claude.json`,
      `mcp.net=127.0.0.1:${port}`,
    ]);
    let server: Deno.ChildProcess | undefined;
    try {
      // Outside the reference set: the data directory must be in /var/lib/infraveil.
      const refused = await run(control, [
        "init",
        "--data",
        `${dir}/c`,
        "--tenant",
        "acme",
        "--admin",
        "a@example.com",
      ]);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /NotCapable: Requires write access to/);
      // Inside it, the file system is reached (and the missing key reported as such).
      const missing = await run(control, ["serve", "--data", `/var/lib/infraveil/missing-${port}`]);
      assert.equal(missing.code, 2, missing.stderr);
      assert.doesNotMatch(missing.stderr, /NotCapable/);
      assert.match(missing.stderr, /no such file/);

      const data = `${dir}/c`;
      const init = await run(control, [
        "init",
        "--data",
        data,
        "--tenant",
        "acme",
        "--admin",
        "a@example.com",
      ], { sets });
      assert.equal(init.code, 0, init.stderr);
      const enroll = await run(control, [
        "enroll",
        "--data",
        data,
        "--tenant",
        "acme",
        "--kind",
        "mcp",
        "--name",
        "claude",
        "--operator",
        "a@example.com",
        "--out",
        `${dir}/claude.json`,
      ], { sets });
      assert.equal(enroll.code, 0, enroll.stderr);
      server = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--quiet",
          ...runtimeFlags(control, sets),
          `${ROOT}${control.entry}`,
          "serve",
          "--data",
          data,
          "--listen",
          `127.0.0.1:${port}`,
        ],
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      await waitFor(async () => {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`);
        await res.body?.cancel();
        return res.ok;
      }, "the control plane");

      const env = {
        INFRAVEIL_BASE_URL: `http://127.0.0.1:${port}`,
        INFRAVEIL_AGENT_FILE: `${dir}/claude.json`,
      };
      const check = await run(mcp, ["--check"], { sets, env });
      assert.equal(check.code, 0, check.stderr);
      assert.match(check.stderr, /^ok: claude \(tenant acme/m);
      // The reference set reads identity files in /etc/infraveil/mcp only.
      const outside = await run(mcp, ["--check"], { env });
      assert.equal(outside.code, 2);
      assert.match(outside.stderr, /NotCapable: Requires read access to/);
      // And it may read no environment variable but its two.
      const envRefused = await run(mcp, ["--check"], {
        sets: applyOverrides(sets, ["mcp.env=INFRAVEIL_AGENT_FILE"]),
        env,
      });
      assert.notEqual(envRefused.code, 0);
      assert.match(envRefused.stderr, /Requires env access to "INFRAVEIL_BASE_URL"/);
    } finally {
      if (server) {
        server.kill("SIGTERM");
        await server.status;
      }
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  "infraveil-agent (set agent): verifies a bundle with its host's set; refused outside",
  OPTS,
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "iv-compile-" });
    try {
      const release = generateKeyPair();
      const tenant = generateTenantKey();
      const bundle = await createBundle(
        [{
          path: "main.js",
          data: new TextEncoder().encode("export function start() { return 0; }\n"),
        }],
        {
          entry: "main.js",
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
      await Deno.writeTextFile(`${dir}/control.pub`, formatPublicKeyFile(generateKeyPair()));
      await Deno.writeTextFile(
        `${dir}/agent.json`,
        JSON.stringify({
          host: "web-1",
          tenant: "acme",
          service: "shop",
          environment: "production",
          state_dir: `${dir}/state`,
          control: { url: "https://control.example.com", public_key: "control.pub" },
          proxy: { listen: "127.0.0.1:18080", backend: "http://127.0.0.1:13000" },
          ledger: { dir: `${dir}/ledger` },
          health: { listen: "127.0.0.1:19464" },
          actions: {},
        }),
      );
      await Deno.writeTextFile(
        `${dir}/launcher.json`,
        JSON.stringify({
          bundle: "agent.bundle",
          release_keys: ["release.pub"],
          tenant_key_file: "tenant.key",
          state_dir: `${dir}/launcher`,
          agent_config: "agent.json",
        }),
      );
      // What `deno task compile --agent-config FILE` bakes in: the host's own set.
      const printed = await run(target("infraveil"), [
        "agent",
        "permissions",
        "--config",
        `${dir}/launcher.json`,
        "--format",
        "json",
      ]);
      assert.equal(printed.code, 0, printed.stderr);
      const sets = { ...found.sets, agent: JSON.parse(printed.stdout) as PermissionSet };
      const agent = target("infraveil-agent");
      const ok = await run(agent, ["verify", "--config", `${dir}/launcher.json`], { sets });
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /verified: version 1\.0\.0/);
      // The reference set knows /etc/infraveil only.
      const refused = await run(agent, ["verify", "--config", `${dir}/launcher.json`]);
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, /Requires read access to "[^"]*launcher\.json"/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
