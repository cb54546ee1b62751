/**
 * `infraveil release sign|bundle|tenant-keys` and `infraveil verify signature`: making and
 * checking signed releases from the command line.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { signMinisign, toMinisignPublicKey, TrustError } from "@infraveil/trust";
import { readPrivateKeyFile } from "@infraveil/trust/io";
import { pathProblem } from "./_archive.ts";
import { parseTimestamp } from "./_version.ts";
import { createAttestation, verifyAttestation } from "./attestation.ts";
import { createBundle } from "./bundle.ts";
import { AgentError } from "./error.ts";
import { generateTenantKey } from "./tenant_key.ts";
import {
  loadPublicKey,
  readFileOnce,
  readRevocationFile,
  readTenantKeyFile,
  readText,
  writeTenantKeyFile,
} from "./_io.ts";

const RELEASE_USAGE = `Usage:
  infraveil release sign --file F --key KEY [--out F.attestation.json]
                         [--builder-id ID] [--source-uri URI] [--source-revision COMMIT]
      sign F: a DSSE in-toto attestation (SLSA provenance v1) and F.minisig
  infraveil release bundle --src DIR --entry FILE --version V --release-key KEY
                           --tenant-keys TENANTKEYFILE --out BUNDLE [--expires 90d|TIMESTAMP]
      pack, encrypt, sign and MAC an agent bundle
  infraveil release tenant-keys --out FILE
      make a tenant key file (mode 0600)
See docs/release.md.`;

const VERIFY_USAGE = `Usage:
  infraveil verify signature --file F --attestation A --pubkey P
                             [--name NAME] [--revoked KID]... [--revoked-file FILE]
P is a key file, a base64 raw Ed25519 key, or a minisign public key string.
Exit codes: 0 verified; 1 verification failed (digest mismatch, bad signature, unknown or
revoked key, wrong payload type, subject name mismatch); 2 unreadable or malformed input.
The same release also verifies with: minisign -Vm F -P <minisign public key>`;

const DAY_MS = 86_400_000;

function baseName(path: string): string {
  return path.replace(/\/+$/, "").split("/").pop() ?? path;
}

function fail(code: "BAD_INPUT", message: string): never {
  throw new AgentError(code, message);
}

function parse<T extends Record<string, { type: "string" | "boolean"; multiple?: boolean }>>(
  args: string[],
  options: T,
) {
  return parseArgs({
    args,
    options: { ...options, help: { type: "boolean", short: "h" } },
    strict: true,
  });
}

/**
 * Runs `infraveil release` with the arguments after `release`.
 *
 * @param args command-line arguments
 * @param options `now` and `random` for tests
 * @returns the exit code
 */
export async function releaseMain(
  args: string[],
  options: { now?: () => number } = {},
): Promise<number> {
  const { now = Date.now } = options;
  const [command, ...rest] = args;
  try {
    if (command === "sign") {
      const { values } = parse(rest, {
        file: { type: "string" },
        key: { type: "string" },
        out: { type: "string" },
        "builder-id": { type: "string" },
        "source-uri": { type: "string" },
        "source-revision": { type: "string" },
      });
      if (values.help) return print(RELEASE_USAGE);
      if (!values.file || !values.key) {
        return usage(RELEASE_USAGE, "release sign needs --file and --key");
      }
      const file = values.file as string;
      const data = await readInput(file, "file");
      const key = await readPrivateKeyFile(values.key as string);
      const name = baseName(file);
      const source = {
        uri: (values["source-uri"] as string | undefined) ?? await gitRemote(),
        revision: (values["source-revision"] as string | undefined) ?? await gitRevision(),
      };
      const envelope = createAttestation(data, name, key, {
        builderId: values["builder-id"] as string | undefined,
        source: {
          ...(source.uri ? { uri: source.uri } : {}),
          ...(source.revision ? { revision: source.revision } : {}),
        },
        now,
      });
      const out = (values.out as string | undefined) ?? `${file}.attestation.json`;
      await writeOutput(out, JSON.stringify(envelope, null, 2) + "\n");
      await writeOutput(`${file}.minisig`, signMinisign(data, key, { fileName: name, now }));
      console.log(`Signed ${file} with release key ${key.kid}`);
      console.log(`  attestation: ${out}`);
      console.log(`  minisign:    ${file}.minisig`);
      console.log(`Verify with: minisign -Vm ${file} -P ${toMinisignPublicKey(key)}`);
      return 0;
    }
    if (command === "bundle") {
      const { values } = parse(rest, {
        src: { type: "string" },
        entry: { type: "string" },
        version: { type: "string" },
        "release-key": { type: "string" },
        "tenant-keys": { type: "string" },
        out: { type: "string" },
        expires: { type: "string" },
      });
      if (values.help) return print(RELEASE_USAGE);
      for (
        const flag of ["src", "entry", "version", "release-key", "tenant-keys", "out"] as const
      ) {
        if (!values[flag]) return usage(RELEASE_USAGE, `release bundle needs --${flag}`);
      }
      const src = (values.src as string).replace(/\/+$/, "") || "/";
      let entry = values.entry as string;
      if (entry.startsWith(`${src}/`)) entry = entry.slice(src.length + 1);
      entry = entry.replace(/^\.\//, "");
      const expires = parseExpiry((values.expires as string | undefined) ?? "90d", now());
      const files = await collectFiles(src);
      const releaseKey = await readPrivateKeyFile(values["release-key"] as string);
      const tenantKey = await readTenantKeyFile(values["tenant-keys"] as string, "BAD_INPUT");
      const bundle = await createBundle(files, {
        entry,
        version: values.version as string,
        expires,
        releaseKey,
        tenantKey,
        now,
      });
      await writeOutput(values.out as string, bundle);
      console.log(
        `Wrote ${values.out}: version ${values.version}, ${files.length} files, entry ${entry}, release key ${releaseKey.kid}, tenant key ${tenantKey.kid}, expires ${
          new Date(expires).toISOString()
        }`,
      );
      return 0;
    }
    if (command === "tenant-keys") {
      const { values } = parse(rest, { out: { type: "string" } });
      if (values.help) return print(RELEASE_USAGE);
      if (!values.out) return usage(RELEASE_USAGE, "release tenant-keys needs --out FILE");
      const key = generateTenantKey();
      await writeTenantKeyFile(values.out as string, key);
      console.log(`Wrote ${values.out} (0600): tenant key ${key.kid}`);
      return 0;
    }
    if (command === "--help" || command === "-h" || command === "help") return print(RELEASE_USAGE);
    return usage(
      RELEASE_USAGE,
      command === undefined ? "missing command" : `unknown command "release ${command}"`,
    );
  } catch (e) {
    return report(e, RELEASE_USAGE);
  }
}

/**
 * Runs `infraveil verify signature` with the arguments after `signature`.
 *
 * @param args command-line arguments
 * @returns 0 verified, 1 verification failed, 2 unreadable or malformed input
 */
export async function verifySignatureMain(args: string[]): Promise<number> {
  try {
    const { values } = parse(args, {
      file: { type: "string" },
      attestation: { type: "string" },
      pubkey: { type: "string" },
      name: { type: "string" },
      revoked: { type: "string", multiple: true },
      "revoked-file": { type: "string" },
    });
    if (values.help) return print(VERIFY_USAGE);
    if (!values.file || !values.attestation || !values.pubkey) {
      return usage(VERIFY_USAGE, "verify signature needs --file, --attestation and --pubkey");
    }
    const file = values.file as string;
    const revokedKids = [...((values.revoked as string[] | undefined) ?? [])];
    if (values["revoked-file"]) {
      revokedKids.push(...await readRevocationFile(values["revoked-file"] as string));
    }
    const key = await loadPublicKey(values.pubkey as string);
    const data = await readInput(file, "file");
    const text = await readText(values.attestation as string, "attestation");
    let envelope: unknown;
    try {
      envelope = JSON.parse(text);
    } catch (e) {
      fail("BAD_INPUT", `Attestation ${values.attestation} is not JSON: ${(e as Error).message}`);
    }
    const name = (values.name as string | undefined) ?? baseName(file);
    const out = await verifyAttestation(envelope, data, { name, keys: [key], revokedKids });
    console.log(`Verified ${file}`);
    console.log(`  subject:   ${out.subject}`);
    console.log(`  sha256:    ${out.sha256}`);
    console.log(`  signer:    kid ${out.kid}`);
    const details = [
      out.builderId && `builder ${out.builderId}`,
      out.buildType && `build type ${out.buildType}`,
      out.finishedOn && `built ${out.finishedOn}`,
      out.source && `source ${[out.source.uri, out.source.revision].filter(Boolean).join(" @ ")}`,
    ].filter(Boolean);
    console.log(
      `  predicate: ${out.predicateType}${details.length ? `; ${details.join("; ")}` : ""}`,
    );
    return 0;
  } catch (e) {
    if (e instanceof AgentError && e.code !== "MALFORMED" && e.code !== "BAD_INPUT") {
      const reason = e.code.toLowerCase().replaceAll("_", " ");
      console.error(`verification failed (${reason}): ${e.message}`);
      return 1;
    }
    return report(e, VERIFY_USAGE);
  }
}

function report(e: unknown, text: string): number {
  if (e instanceof AgentError || e instanceof TrustError) {
    console.error(`error: ${e.message}`);
    return 2;
  }
  if (e instanceof TypeError && "code" in e && String(e.code).startsWith("ERR_PARSE_ARGS")) {
    return usage(text, e.message);
  }
  throw e;
}

function print(text: string): number {
  console.log(text);
  return 0;
}

function usage(text: string, problem: string): number {
  console.error(`error: ${problem}\n\n${text}`);
  return 2;
}

async function readInput(path: string, what: string): Promise<Uint8Array> {
  try {
    return await readFileOnce(path);
  } catch (cause) {
    const problem = cause instanceof Deno.errors.NotFound
      ? "no such file"
      : (cause as Error).message;
    throw new AgentError("BAD_INPUT", `Cannot read ${what} ${path}: ${problem}`, { cause });
  }
}

async function writeOutput(path: string, data: string | Uint8Array): Promise<void> {
  try {
    if (typeof data === "string") await Deno.writeTextFile(path, data);
    else await Deno.writeFile(path, data);
  } catch (cause) {
    throw new AgentError("BAD_INPUT", `Cannot write ${path}: ${(cause as Error).message}`, {
      cause,
    });
  }
}

function parseExpiry(text: string, now: number): number {
  const days = /^(\d{1,5})d$/.exec(text);
  if (days) return now + Number(days[1]) * DAY_MS;
  const at = parseTimestamp(text);
  if (at === null) {
    fail(
      "BAD_INPUT",
      `--expires "${text}" is neither a number of days (90d) nor YYYY-MM-DDTHH:MM:SSZ`,
    );
  }
  return at;
}

/** Every regular file under `src`, by path relative to it. Symbolic links are refused. */
async function collectFiles(src: string): Promise<{ path: string; data: Uint8Array }[]> {
  const files: { path: string; data: Uint8Array }[] = [];
  const walk = async (dir: string, prefix: string): Promise<void> => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(dir));
    } catch (cause) {
      fail("BAD_INPUT", `Cannot read directory ${dir}: ${(cause as Error).message}`);
    }
    for (const entry of entries!) {
      const path = prefix + entry.name;
      if (entry.isSymlink) {
        fail("BAD_INPUT", `${src}/${path} is a symbolic link; bundles hold regular files only`);
      }
      if (entry.isDirectory) await walk(`${dir}/${entry.name}`, `${path}/`);
      else if (entry.isFile) {
        const problem = pathProblem(path);
        if (problem) fail("BAD_INPUT", `Cannot bundle ${src}/${path}: ${problem}`);
        files.push({ path, data: await readInput(`${dir}/${entry.name}`, "file") });
      } else fail("BAD_INPUT", `${src}/${path} is not a regular file`);
    }
  };
  await walk(src, "");
  if (files.length === 0) fail("BAD_INPUT", `${src} holds no files`);
  return files;
}

async function git(...args: string[]): Promise<string | undefined> {
  try {
    const out = await new Deno.Command("git", { args, stdout: "piped", stderr: "null" }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() || undefined : undefined;
  } catch {
    return undefined; // no git, no permission, or not a repository: the revision is not known
  }
}

async function gitRevision(): Promise<string | undefined> {
  const rev = await git("rev-parse", "HEAD");
  return rev && /^[0-9a-f]{40}([0-9a-f]{24})?$/.test(rev) ? rev : undefined;
}

async function gitRemote(): Promise<string | undefined> {
  const url = await git("remote", "get-url", "origin");
  if (!url) return undefined;
  // Never publish credentials embedded in a remote URL.
  const clean = url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/]*@/i, "$1");
  return clean.startsWith("git+") ? clean : `git+${clean}`;
}
