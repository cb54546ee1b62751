/**
 * `infraveil mcp`: the governed MCP server on stdin/stdout. The only file of this member that
 * reads the environment and the file system.
 *
 * stdout belongs to the MCP protocol: everything this command says goes to stderr.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { createControlApi } from "./control_client.ts";
import { GovernedMcpError } from "./error.ts";
import { checkBaseUrl } from "./identity.ts";
import { serveMcp } from "./server.ts";
import { describeError } from "./tools.ts";
import { readIdentityFile } from "./_io.ts";

const USAGE = `Usage: infraveil mcp [--check]

Serves the governed MCP server over stdio (stdin/stdout) for an AI agent. It reads the fleet,
findings and traces and files change requests with the control plane; it cannot approve or
apply anything. Every call is signed with this agent's key and every response is verified
against the control plane's pinned key.

Environment:
  INFRAVEIL_BASE_URL    the control plane, e.g. https://control.example.com
                        (default: control_url from the identity file)
  INFRAVEIL_AGENT_FILE  this AI agent's identity file, mode 0600
                        (written by \`infraveil control enroll --kind mcp\`)

Options:
  --check     check the configuration and one signed round trip with the control plane
              (fleet status), report on stderr, and exit
  -h, --help  show this help

Exit codes: 0 served / check passed, 1 the control plane's response failed verification or
the control plane refused the identity, 2 usage or configuration error (bad identity file,
missing variable, unreachable control plane). See docs/mcp.md.`;

const encoder = new TextEncoder();

function say(line: string): void {
  Deno.stderr.writeSync(encoder.encode(line + "\n"));
}

/**
 * Runs `infraveil mcp` with the arguments after `mcp`.
 *
 * @param args command-line arguments
 * @returns the exit code
 */
export async function main(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: { check: { type: "boolean" }, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    say(`error: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    say(USAGE);
    return 0;
  }
  try {
    const file = Deno.env.get("INFRAVEIL_AGENT_FILE");
    if (!file) {
      throw new GovernedMcpError(
        "BAD_CONFIG",
        "INFRAVEIL_AGENT_FILE is not set. Point it at the identity file written by " +
          "`infraveil control enroll --kind mcp`",
      );
    }
    const identity = await readIdentityFile(file);
    const envUrl = Deno.env.get("INFRAVEIL_BASE_URL");
    const baseUrl = envUrl || identity.controlUrl;
    if (!baseUrl) {
      throw new GovernedMcpError(
        "BAD_CONFIG",
        `INFRAVEIL_BASE_URL is not set and ${file} has no control_url. Set it to the ` +
          "control plane's URL, e.g. https://control.example.com",
      );
    }
    checkBaseUrl(baseUrl, envUrl ? "INFRAVEIL_BASE_URL" : `${file}: control_url`);
    const api = createControlApi({ baseUrl, identity });

    if (values.check) {
      const fleet = await api.fleetStatus({});
      say(
        `ok: ${identity.name} (tenant ${identity.tenant}, key ${identity.key.kid}) reached ` +
          `${baseUrl}; response verified with control key ${identity.control.kid}; ` +
          `${fleet.hosts.length} host(s)`,
      );
      return 0;
    }

    say(
      `infraveil mcp: serving on stdio as ${identity.name} (tenant ${identity.tenant}) for ${baseUrl}`,
    );
    const closed = Promise.withResolvers<void>();
    serveMcp({ api, agent: identity.name, tenant: identity.tenant, log: say }, {
      onClose: () => closed.resolve(),
    });
    await closed.promise;
    return 0;
  } catch (e) {
    const code = typeof e === "object" && e !== null && "code" in e ? String(e.code) : "";
    say(`error: ${describeError(e)}`);
    return code === "UNVERIFIED_RESPONSE" || code === "CONTROL_REFUSED" ? 1 : 2;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
