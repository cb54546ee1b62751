/**
 * Test helpers: keys, small agent sources, and bundles crafted to say something unusual while
 * being validly encrypted, signed and MACed.
 *
 * @module
 */
import { type Ed25519KeyPair, keyPairFromSeed } from "@infraveil/trust";
import { type ArchiveFile, packArchive } from "./_archive.ts";
import { sha256HexBulk } from "./_digest.ts";
import { formatTimestamp } from "./_version.ts";
import {
  type BundleManifest,
  encryptPayload,
  MANIFEST_FORMAT,
  type ManifestFile,
  sealBundle,
} from "./bundle.ts";
import { type TenantKey, tenantKeyId } from "./tenant_key.ts";

/** A fixed instant: 2026-01-01T00:00:00Z. */
export const T0: number = Date.UTC(2026, 0, 1);
/** One day in ms. */
export const DAY: number = 86_400_000;

/** A deterministic key pair from a one-byte seed. */
export function testKey(seed: number): Ed25519KeyPair {
  return keyPairFromSeed(new Uint8Array(32).fill(seed));
}

/** Deterministic tenant keys from a one-byte seed. */
export function testTenant(seed: number): TenantKey {
  const bundleKey = new Uint8Array(32).fill(seed);
  const macKey = new Uint8Array(32).fill(seed + 1);
  return { kid: tenantKeyId(bundleKey, macKey), bundleKey, macKey };
}

const enc = new TextEncoder();

/** A two-file agent whose entry imports its sibling and reports what it was given. */
export function agentFiles(marker = "ok"): ArchiveFile[] {
  return [
    {
      path: "main.ts",
      data: enc.encode(
        `import { tag } from "./lib.ts";\n` +
          `export function start(ctx: any): number {\n` +
          `  (globalThis as any).__launched = { tag: tag(), ctx };\n` +
          `  return 0;\n}\n`,
      ),
    },
    { path: "lib.ts", data: enc.encode(`export const tag = (): string => "${marker}";\n`) },
  ];
}

/** What {@link craftBundle} may override. */
export interface CraftOptions {
  /** Files actually packed and encrypted. */
  files: ArchiveFile[];
  /** Files the manifest lists (default: those packed). */
  listed?: ArchiveFile[];
  version?: string;
  created?: number;
  expires?: number;
  entry?: string;
  releaseKey?: Ed25519KeyPair;
  tenantKey?: TenantKey;
  /** Tenant key used for the MAC (default `tenantKey`). */
  macTenant?: TenantKey;
  iv?: Uint8Array;
  /** Replace the manifest's ciphertext digest. */
  ciphertextSha256?: string;
}

function listing(files: ArchiveFile[]): ManifestFile[] {
  return files.map((f) => ({ path: f.path, sha256: sha256HexBulk(f.data), size: f.data.length }))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Builds a validly encrypted, signed and MACed bundle whose manifest may lie. */
export async function craftBundle(options: CraftOptions): Promise<Uint8Array> {
  const {
    files,
    listed = files,
    version = "1.0.0",
    created = T0,
    expires = T0 + 30 * DAY,
    entry = "main.ts",
    releaseKey = testKey(1),
    tenantKey = testTenant(10),
    macTenant = tenantKey,
    iv = new Uint8Array(12).fill(7),
  } = options;
  const payload = await encryptPayload(tenantKey.bundleKey, iv, packArchive(files));
  const manifest: BundleManifest = {
    format: MANIFEST_FORMAT,
    version,
    created: formatTimestamp(created),
    expires: formatTimestamp(expires),
    entry,
    files: listing(listed),
    ciphertext_sha256: options.ciphertextSha256 ?? sha256HexBulk(iv, payload),
  };
  return sealBundle(manifest, { releaseKey, tenantKey: macTenant, iv, payload });
}
