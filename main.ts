/**
 * The `infraveil` command line: a thin dispatcher to each member's own commands. It reads
 * nothing and imports nothing until it knows which command runs, so every command starts fast
 * and with only the code it needs.
 *
 * @module
 */

/** The version of this release of infraveil. */
export const VERSION = "0.1.0";

type Run = (args: string[]) => Promise<number>;

interface Command {
  summary: string;
  run: Run;
}

const COMMANDS: Record<string, Command> = {
  policy: {
    summary: "lint, format, check, explain, test and hash governance policies",
    run: async (a) => (await import("@infraveil/policy/main")).main(a),
  },
  ledger: {
    summary: "append to an audit ledger; print its head and checkpoint; prove entries",
    run: async (a) => (await import("@infraveil/ledger/main")).main(a),
  },
  release: {
    summary: "sign release artifacts; build encrypted, signed agent bundles; make tenant keys",
    run: async (a) => (await import("@infraveil/agent/release")).releaseMain(a),
  },
  agent: {
    summary: "verify the agent bundle against the launcher config, or verify and run it",
    run: async (a) => (await import("@infraveil/agent/main")).main(a),
  },
  control: {
    summary: "control plane: init, serve, enroll, approve, reject, evidence export, authority",
    run: async (a) => (await import("@infraveil/control/main")).main(a),
  },
  mcp: {
    summary: "the governed MCP server (stdio): read the fleet and request changes",
    run: async (a) => (await import("@infraveil/mcp/main")).main(a),
  },
  proxy: {
    summary: "run the defending, tracing reverse proxy in front of one backend",
    run: async (a) => (await import("@infraveil/proxy/main")).main(a),
  },
  keys: {
    summary: "generate Ed25519 key files; print public keys (json, minisign, raw)",
    run: async (a) => (await import("@infraveil/trust/main")).main(a),
  },
};

/** `infraveil verify <what>`: each kind of verification lives with the member that owns it. */
const VERIFY: Record<string, Command> = {
  ledger: {
    summary: "verify audit ledger files (oldest first), optionally against an anchor",
    run: async (a) => (await import("@infraveil/ledger/main")).main(["verify", ...a]),
  },
  signature: {
    summary: "verify a release artifact against its attestation and a public key",
    run: async (a) => (await import("@infraveil/agent/release")).verifySignatureMain(a),
  },
};

function usage(): string {
  const names = [
    ...Object.entries(COMMANDS).map(([n, c]) => [n, c.summary]),
    ...Object.entries(VERIFY).map(([n, c]) => [`verify ${n}`, c.summary]),
  ];
  const width = Math.max(...names.map(([n]) => n.length));
  const lines = names.map(([n, summary]) => `  ${n.padEnd(width)}  ${summary}`);
  return [
    `infraveil ${VERSION}: let an AI agent operate production without holding the keys`,
    "",
    "Usage: infraveil <command> [options]     (infraveil <command> --help for details)",
    "",
    "Commands:",
    ...lines,
    "",
    "Options:",
    "  --help, -h     show this help",
    "  --version, -V  print the version",
    "",
    "Exit codes: 0 success/allowed, 1 denied/verification failed, 2 usage or input error,",
    "            3 policy lint failure.",
  ].join("\n");
}

/**
 * Runs the CLI.
 *
 * @param args command-line arguments
 * @returns the exit code
 */
export async function main(args: string[]): Promise<number> {
  const [first, ...rest] = args;
  if (first === undefined) {
    console.error(usage());
    return 2;
  }
  if (first === "--help" || first === "-h" || first === "help") {
    console.log(usage());
    return 0;
  }
  if (first === "--version" || first === "-V") {
    console.log(`infraveil ${VERSION}`);
    return 0;
  }
  if (first === "verify") {
    const [what, ...more] = rest;
    const cmd = what === undefined ? undefined : VERIFY[what];
    if (!cmd) {
      const known = Object.keys(VERIFY).join(", ") || "(none)";
      console.error(
        `error: ${
          what === undefined ? "verify needs a subject" : `unknown verify subject "${what}"`
        }; one of: ${known}\n\n${usage()}`,
      );
      return 2;
    }
    return await cmd.run(more);
  }
  const cmd = COMMANDS[first];
  if (!cmd) {
    console.error(
      `error: unknown ${first.startsWith("-") ? "option" : "command"} "${first}"\n\n${usage()}`,
    );
    return 2;
  }
  return await cmd.run(rest);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
