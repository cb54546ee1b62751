/**
 * `infraveil keys …`: generate key files and print public keys.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { generateKeyPair } from "./ed25519.ts";
import { encodeBase64 } from "./encoding.ts";
import { TrustError } from "./error.ts";
import { readPublicKeyFile, writeKeyFiles } from "./io.ts";
import { formatPublicKeyFile } from "./key_file.ts";
import { toMinisignPublicKey } from "./minisign.ts";

const USAGE = `Usage:
  infraveil keys generate --out FILE        write FILE (private, 0600) and FILE.pub
  infraveil keys public FILE [--format json|minisign|raw]
                                            print the public key of a key file
Formats: json (a public key file), minisign (for \`minisign -P\`), raw (base64 of the 32 bytes).`;

/**
 * Runs `infraveil keys` with the arguments after `keys`.
 *
 * @param args command-line arguments
 * @returns the exit code
 */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  try {
    if (command === "generate") {
      const { values, positionals } = parseArgs({
        args: rest,
        options: { out: { type: "string" }, help: { type: "boolean", short: "h" } },
        strict: true,
      });
      if (values.help) return help();
      if (!values.out || positionals.length > 0) return usage("keys generate needs --out FILE");
      const pair = generateKeyPair();
      await writeKeyFiles(values.out, pair);
      console.log(`Wrote ${values.out} (private, 0600) and ${values.out}.pub; key id ${pair.kid}`);
      return 0;
    }
    if (command === "public") {
      const { values, positionals } = parseArgs({
        args: rest,
        options: {
          format: { type: "string", default: "json" },
          help: { type: "boolean", short: "h" },
        },
        allowPositionals: true,
        strict: true,
      });
      if (values.help) return help();
      if (positionals.length !== 1) return usage("keys public needs exactly one FILE");
      const format = values.format;
      if (format !== "json" && format !== "minisign" && format !== "raw") {
        return usage(`unknown --format "${format}"; use json, minisign or raw`);
      }
      const key = await readPublicKeyFile(positionals[0]);
      const out = format === "json"
        ? formatPublicKeyFile(key).trimEnd()
        : format === "minisign"
        ? toMinisignPublicKey(key)
        : encodeBase64(key.publicKey);
      console.log(out);
      return 0;
    }
    if (command === "--help" || command === "-h" || command === "help") return help();
    return usage(command === undefined ? "missing command" : `unknown command "keys ${command}"`);
  } catch (e) {
    if (e instanceof TrustError) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    if (e instanceof TypeError && "code" in e && String(e.code).startsWith("ERR_PARSE_ARGS")) {
      return usage(e.message);
    }
    throw e;
  }
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
