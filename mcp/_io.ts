/**
 * File I/O for `main.ts`: reads the identity file and checks its permission bits. Library
 * modules take the parsed identity as a value.
 *
 * @module
 */
import { checkPrivateKeyMode, TrustError } from "@infraveil/trust";
import { GovernedMcpError } from "./error.ts";
import { type McpIdentity, parseIdentityFile } from "./identity.ts";

/**
 * Reads and parses an identity file, refusing one readable by group or others.
 *
 * @param path the file
 * @returns the identity
 * @throws {GovernedMcpError} `BAD_IDENTITY` naming the file and the problem
 */
export async function readIdentityFile(path: string): Promise<McpIdentity> {
  let text: string;
  let mode: number | null;
  try {
    text = await Deno.readTextFile(path);
    mode = (await Deno.stat(path)).mode;
  } catch (cause) {
    const why = cause instanceof Deno.errors.NotFound
      ? "no such file"
      : cause instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : String(cause);
    throw new GovernedMcpError(
      "BAD_IDENTITY",
      `Cannot read identity file ${path}: ${why}. Set INFRAVEIL_AGENT_FILE to the file ` +
        "`infraveil control enroll --kind mcp` wrote",
      { cause },
    );
  }
  try {
    checkPrivateKeyMode(mode, path);
  } catch (e) {
    if (e instanceof TrustError) {
      throw new GovernedMcpError(
        "BAD_IDENTITY",
        e.message.replace("private key file", "identity file"),
        { cause: e },
      );
    }
    throw e;
  }
  return parseIdentityFile(text, path);
}
