/**
 * File I/O for key files, for the members' command-line entry points. Library code takes keys
 * as values; only entry points read files.
 *
 * @module
 */
import type { Ed25519KeyPair, Ed25519PublicKey } from "./ed25519.ts";
import { TrustError } from "./error.ts";
import {
  checkPrivateKeyMode,
  formatPrivateKeyFile,
  formatPublicKeyFile,
  parseKeyFile,
} from "./key_file.ts";

/** Reads a key file through one open handle, so its mode and its bytes are the same file's. */
async function readKeyText(path: string): Promise<{ text: string; mode: number | null }> {
  let file: Deno.FsFile | undefined;
  try {
    if ((await Deno.lstat(path)).isSymlink) {
      throw new TrustError(
        "BAD_KEY_FILE",
        `Cannot read key file ${path}: it is a symbolic link; point to the file itself`,
      );
    }
    file = await Deno.open(path, { read: true });
    const info = await file.stat();
    if (!info.isFile) {
      throw new TrustError("BAD_KEY_FILE", `Cannot read key file ${path}: not a regular file`);
    }
    const bytes = new Uint8Array(await new Response(file.readable).arrayBuffer());
    file = undefined; // the readable stream closed it
    return { text: new TextDecoder().decode(bytes), mode: info.mode };
  } catch (cause) {
    if (cause instanceof TrustError) throw cause;
    const why = cause instanceof Deno.errors.NotFound ? "no such file" : String(cause);
    throw new TrustError("BAD_KEY_FILE", `Cannot read key file ${path}: ${why}`, { cause });
  } finally {
    file?.close();
  }
}

/**
 * Reads a private key file, refusing one readable by group or others.
 *
 * @param path the file
 * @returns the key pair
 * @throws {TrustError} `BAD_KEY_FILE`, or `INSECURE_KEY_FILE` for loose permissions
 */
export async function readPrivateKeyFile(path: string): Promise<Ed25519KeyPair> {
  const { text, mode } = await readKeyText(path);
  const parsed = parseKeyFile(text, path);
  if (parsed.kind !== "private") {
    throw new TrustError(
      "BAD_KEY_FILE",
      `Cannot load key file ${path}: it holds only a public key; a private key file is needed`,
    );
  }
  checkPrivateKeyMode(mode, path);
  return parsed.key;
}

/**
 * Reads the public key of a key file (public or private; a private file must be 0600).
 *
 * @param path the file
 * @returns the public key
 * @throws {TrustError} `BAD_KEY_FILE` or `INSECURE_KEY_FILE`
 */
export async function readPublicKeyFile(path: string): Promise<Ed25519PublicKey> {
  const { text, mode } = await readKeyText(path);
  const parsed = parseKeyFile(text, path);
  if (parsed.kind === "private") checkPrivateKeyMode(mode, path);
  return { kid: parsed.key.kid, publicKey: parsed.key.publicKey };
}

/**
 * Writes `path` (private, mode 0600) and `path.pub` (public). Refuses to overwrite.
 *
 * @param path the private key file to create
 * @param pair the key pair
 * @throws {TrustError} `BAD_KEY_FILE` when a file exists or cannot be written
 */
export async function writeKeyFiles(path: string, pair: Ed25519KeyPair): Promise<void> {
  // Check both first so a refusal leaves nothing half-written.
  for (const file of [path, `${path}.pub`]) {
    if (await exists(file)) {
      throw new TrustError(
        "BAD_KEY_FILE",
        `Cannot write key file ${file}: it already exists; choose another path or remove it first`,
      );
    }
  }
  for (
    const [file, text, mode] of [
      [path, formatPrivateKeyFile(pair), 0o600],
      [`${path}.pub`, formatPublicKeyFile(pair), 0o644],
    ] as const
  ) {
    try {
      await Deno.writeTextFile(file, text, { createNew: true, mode });
      await Deno.chmod(file, mode); // the umask may have narrowed or widened it
    } catch (cause) {
      const why = cause instanceof Deno.errors.AlreadyExists
        ? "it already exists; choose another path or remove it first"
        : String(cause);
      throw new TrustError("BAD_KEY_FILE", `Cannot write key file ${file}: ${why}`, { cause });
    }
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}
