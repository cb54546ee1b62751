/**
 * Agent bundles: the container format, the manifest, and making a bundle.
 *
 * ```
 * offset   size  field
 * 0        8     magic "IVBUNDLE"
 * 8        2     format version, u16 big-endian (1)
 * 10       4     manifest length M, u32 big-endian
 * 14       4     payload length P, u32 big-endian (ciphertext + 16-byte tag)
 * 18       M     manifest: canonical JSON (RFC 8785), UTF-8
 * 18+M     8     release key id (the 8 bytes whose hex is the key's kid)
 * 26+M     64    Ed25519 signature over "infraveil-bundle-manifest/v1\n" ‖ manifest
 * 90+M     32    HMAC-SHA256 under the tenant MAC key over the same bytes
 * 122+M    12    AES-256-GCM IV
 * 134+M    P     payload: the IVA1 archive of the files, encrypted with AES-256-GCM under the
 *                tenant bundle key in 64 KiB segments, each followed by its 16-byte tag
 * ```
 *
 * Segment i (from 0) of the archive is encrypted with the 96-bit nonce IV ⊕ i (i as a
 * big-endian u32 over the IV's last four bytes) and one byte of associated data, 0x01 for the
 * last segment and 0x00 for the others, so segments cannot be reordered, dropped or truncated
 * (the STREAM construction with 64 KiB segments, as in age). Segments let the launcher decrypt a large bundle in
 * place, in bounded extra memory.
 *
 * The manifest stays outside the ciphertext and is not associated data: it is authenticated by
 * the release signature and the tenant MAC, and it binds the encrypted section through
 * `ciphertext_sha256` (SHA-256 of IV ‖ payload). So a change to the manifest is
 * reported as a bad signature, not as a decryption failure. docs/release.md gives the reasons.
 *
 * This module parses and builds; the launcher decides the order of the checks.
 *
 * @module
 */
import {
  canonicalJson,
  concatBytes,
  decodeHex,
  decryptAesGcm,
  type Ed25519KeyPair,
  encodeHex,
  encryptAesGcm,
  hmacSha256,
  signEd25519,
  utf8,
} from "@infraveil/trust";
import { type ArchiveFile, packArchive, pathProblem } from "./_archive.ts";
import { sha256HexBulk } from "./_digest.ts";
import { formatTimestamp, isVersion, parseTimestamp } from "./_version.ts";
import { AgentError } from "./error.ts";
import type { TenantKey } from "./tenant_key.ts";

/** The container's magic bytes. */
export const BUNDLE_MAGIC: Uint8Array = utf8("IVBUNDLE");
/** The only container format version. */
export const BUNDLE_FORMAT_VERSION = 1;
/** The manifest's `format` field. */
export const MANIFEST_FORMAT = "infraveil-agent-manifest/v1";
/** Prefix of the bytes that are signed and MACed. */
export const MANIFEST_CONTEXT = "infraveil-bundle-manifest/v1\n";
/** Largest manifest accepted. */
export const MAX_MANIFEST_BYTES = 8 << 20;
/** Plaintext bytes per encrypted payload segment. */
export const SEGMENT_BYTES = 64 << 10;

const HEADER_BYTES = 18;
const KID_BYTES = 8;
const SIGNATURE_BYTES = 64;
const MAC_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** One file as listed in the manifest. */
export interface ManifestFile {
  /** Path inside the bundle. */
  path: string;
  /** SHA-256 of the file, lowercase hex. */
  sha256: string;
  /** Size in bytes. */
  size: number;
}

/** The signed description of a bundle. */
export interface BundleManifest {
  /** Always {@link MANIFEST_FORMAT}. */
  format: typeof MANIFEST_FORMAT;
  /** Release version (SemVer, no build metadata). */
  version: string;
  /** When the bundle was made, `YYYY-MM-DDTHH:MM:SSZ`. */
  created: string;
  /** After this instant the launcher refuses the bundle. */
  expires: string;
  /** Path of the module the launcher imports. */
  entry: string;
  /** Every file, sorted by path (UTF-8 byte order). */
  files: ManifestFile[];
  /** SHA-256 of the IV and the encrypted payload (IV ‖ payload), lowercase hex. */
  ciphertext_sha256: string;
}

/** The sections of a bundle container, as views into its bytes. */
export interface BundleParts {
  /** Manifest bytes (canonical JSON). */
  manifest: Uint8Array;
  /** Release key id, 16 hex characters. */
  releaseKid: string;
  /** Ed25519 signature. */
  signature: Uint8Array;
  /** HMAC-SHA256 tag. */
  mac: Uint8Array;
  /** AES-GCM IV. */
  iv: Uint8Array;
  /** The encrypted segments, each followed by its GCM tag. */
  payload: Uint8Array;
  /** IV ‖ payload: what `ciphertext_sha256` covers. */
  encrypted: Uint8Array;
}

/**
 * Splits a bundle into its sections, checking only the framing: magic, version and lengths.
 * Nothing in it is authenticated yet.
 *
 * @param bytes the bundle
 * @returns views of its sections
 * @throws {AgentError} `BAD_FORMAT` when it is not a version 1 bundle or its lengths do not add up
 */
export function parseBundle(bytes: Uint8Array): BundleParts {
  const fail = (problem: string): never => {
    throw new AgentError(
      "BAD_FORMAT",
      `Not a valid infraveil agent bundle: ${problem}. Rebuild it with \`infraveil release bundle\``,
    );
  };
  if (bytes.length < HEADER_BYTES) fail(`${bytes.length} bytes is shorter than the header`);
  for (let i = 0; i < BUNDLE_MAGIC.length; i++) {
    if (bytes[i] !== BUNDLE_MAGIC[i]) fail(`byte ${i} does not match the magic "IVBUNDLE"`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint16(8);
  if (version !== BUNDLE_FORMAT_VERSION) {
    fail(`format version ${version} is not supported (this launcher reads version 1)`);
  }
  const m = view.getUint32(10);
  const p = view.getUint32(14);
  if (m === 0 || m > MAX_MANIFEST_BYTES) fail(`manifest length ${m} is out of range`);
  const lastSegment = p % (SEGMENT_BYTES + TAG_BYTES);
  if (p < TAG_BYTES || (lastSegment > 0 && lastSegment < TAG_BYTES)) {
    fail(`payload length ${p} does not end in a whole GCM tag`);
  }
  const expected = HEADER_BYTES + m + KID_BYTES + SIGNATURE_BYTES + MAC_BYTES + IV_BYTES + p;
  if (expected !== bytes.length) {
    fail(`the header's lengths add up to ${expected} bytes but the bundle has ${bytes.length}`);
  }
  let at = HEADER_BYTES;
  const take = (n: number): Uint8Array => bytes.subarray(at, at += n);
  const manifest = take(m);
  const releaseKid = encodeHex(take(KID_BYTES));
  const signature = take(SIGNATURE_BYTES);
  const mac = take(MAC_BYTES);
  const encrypted = bytes.subarray(at);
  const iv = take(IV_BYTES);
  const payload = take(p);
  return { manifest, releaseKid, signature, mac, iv, payload, encrypted };
}

/**
 * Assembles a bundle container from its sections.
 *
 * @param parts manifest, key id, signature, MAC, IV and payload (`encrypted` is ignored)
 * @returns the bundle bytes
 * @throws {AgentError} `BAD_FORMAT` when a section has the wrong size
 */
export function encodeBundle(parts: Omit<BundleParts, "encrypted">): Uint8Array {
  const { manifest, signature, mac, iv, payload } = parts;
  const kid = decodeHex(parts.releaseKid);
  if (
    manifest.length === 0 || manifest.length > MAX_MANIFEST_BYTES || kid.length !== KID_BYTES ||
    signature.length !== SIGNATURE_BYTES || mac.length !== MAC_BYTES ||
    iv.length !== IV_BYTES || payload.length < TAG_BYTES || payload.length > 0xffff_ffff
  ) {
    throw new AgentError("BAD_FORMAT", "Cannot encode bundle: a section has the wrong size");
  }
  const header = new Uint8Array(HEADER_BYTES);
  const view = new DataView(header.buffer);
  header.set(BUNDLE_MAGIC, 0);
  view.setUint16(8, BUNDLE_FORMAT_VERSION);
  view.setUint32(10, manifest.length);
  view.setUint32(14, payload.length);
  return concatBytes(header, manifest, kid, signature, mac, iv, payload);
}

/**
 * The bytes that the release key signs and the tenant key MACs.
 *
 * @param manifest the manifest bytes as they appear in the bundle
 * @returns `"infraveil-bundle-manifest/v1\n"` followed by the manifest
 */
export function manifestSigningInput(manifest: Uint8Array): Uint8Array {
  return concatBytes(utf8(MANIFEST_CONTEXT), manifest);
}

const HEX64 = /^[0-9a-f]{64}$/;
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Parses and checks a manifest's bytes. Call it only after the signature and MAC over these
 * bytes have verified: it is strict, but it is not a security boundary on its own.
 *
 * @param bytes the manifest bytes
 * @returns the manifest
 * @throws {AgentError} `BAD_MANIFEST` naming the field that is wrong
 */
export function parseManifest(bytes: Uint8Array): BundleManifest {
  const fail = (problem: string): never => {
    throw new AgentError("BAD_MANIFEST", `Bundle manifest is invalid: ${problem}`);
  };
  let text = "";
  let json: unknown;
  try {
    text = decoder.decode(bytes);
    json = JSON.parse(text);
  } catch {
    fail("not UTF-8 JSON");
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) fail("not an object");
  let canonical = "";
  try {
    canonical = canonicalJson(json);
  } catch {
    fail("not canonical JSON");
  }
  // Also refuses duplicate keys, which JSON.parse would silently collapse.
  if (canonical !== text) fail("not in canonical (RFC 8785) form");
  const obj = json as Record<string, unknown>;
  const fields = ["ciphertext_sha256", "created", "entry", "expires", "files", "format", "version"];
  for (const key of Object.keys(obj)) if (!fields.includes(key)) fail(`unknown field "${key}"`);
  for (const key of fields) if (!(key in obj)) fail(`field "${key}" is missing`);
  if (obj.format !== MANIFEST_FORMAT) fail(`field "format" is not "${MANIFEST_FORMAT}"`);
  if (typeof obj.version !== "string" || !isVersion(obj.version)) {
    fail(`field "version" is not a version such as 1.2.3 or 1.2.3-rc.1`);
  }
  const created = typeof obj.created === "string" ? parseTimestamp(obj.created) : null;
  const expires = typeof obj.expires === "string" ? parseTimestamp(obj.expires) : null;
  if (created === null) fail(`field "created" is not a YYYY-MM-DDTHH:MM:SSZ timestamp`);
  if (expires === null) fail(`field "expires" is not a YYYY-MM-DDTHH:MM:SSZ timestamp`);
  if (expires! <= created!) fail(`field "expires" is not after "created"`);
  if (typeof obj.ciphertext_sha256 !== "string" || !HEX64.test(obj.ciphertext_sha256)) {
    fail(`field "ciphertext_sha256" is not 64 lowercase hex digits`);
  }
  if (!Array.isArray(obj.files)) fail(`field "files" is not an array`);
  const files = obj.files as unknown[];
  let previous: Uint8Array | null = null;
  for (const [i, f] of files.entries()) {
    const where = `files[${i}]`;
    if (typeof f !== "object" || f === null || Array.isArray(f)) fail(`${where} is not an object`);
    const file = f as Record<string, unknown>;
    const keys = Object.keys(file).sort().join(",");
    if (keys !== "path,sha256,size") fail(`${where} must have exactly path, sha256 and size`);
    if (typeof file.path !== "string" || pathProblem(file.path) !== null) {
      fail(`${where}.path is not an acceptable path`);
    }
    if (typeof file.sha256 !== "string" || !HEX64.test(file.sha256)) {
      fail(`${where}.sha256 is not 64 lowercase hex digits`);
    }
    if (!Number.isSafeInteger(file.size) || (file.size as number) < 0) {
      fail(`${where}.size is not a non-negative integer`);
    }
    const name = utf8(file.path as string);
    if (previous && compareBytes(previous, name) >= 0) {
      fail(`${where}.path is out of order or repeated`);
    }
    previous = name;
  }
  if (typeof obj.entry !== "string" || !files.some((f) => (f as ManifestFile).path === obj.entry)) {
    fail(`field "entry" does not name a listed file`);
  }
  return obj as unknown as BundleManifest;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

function segmentNonce(iv: Uint8Array, index: number): Uint8Array {
  const nonce = iv.slice();
  const view = new DataView(nonce.buffer);
  view.setUint32(8, view.getUint32(8) ^ index);
  return nonce;
}

async function aesKey(key: Uint8Array, usage: "encrypt" | "decrypt"): Promise<CryptoKey> {
  return await crypto.subtle.importKey("raw", key as Uint8Array<ArrayBuffer>, "AES-GCM", false, [
    usage,
  ]);
}

/**
 * Encrypts an archive into a bundle payload (segmented AES-256-GCM, see the module overview).
 *
 * @param bundleKey the tenant's 32-byte bundle key
 * @param iv a fresh 12-byte IV
 * @param plaintext the archive
 * @returns the payload
 */
export async function encryptPayload(
  bundleKey: Uint8Array,
  iv: Uint8Array,
  plaintext: Uint8Array,
): Promise<Uint8Array> {
  const key = await aesKey(bundleKey, "encrypt");
  const count = Math.max(1, Math.ceil(plaintext.length / SEGMENT_BYTES));
  const out = new Uint8Array(plaintext.length + count * TAG_BYTES);
  for (let i = 0; i < count; i++) {
    const segment = plaintext.subarray(i * SEGMENT_BYTES, (i + 1) * SEGMENT_BYTES);
    const aad = new Uint8Array([i === count - 1 ? 1 : 0]);
    out.set(
      await encryptAesGcm(key, segmentNonce(iv, i), segment, { aad }),
      i * (SEGMENT_BYTES + TAG_BYTES),
    );
  }
  return out;
}

/**
 * Decrypts and authenticates a bundle payload, segment by segment.
 *
 * @param bundleKey the tenant's 32-byte bundle key
 * @param iv the bundle's IV
 * @param payload the encrypted segments
 * @param options `inPlace`: write the plaintext over `payload` (its first bytes), so that
 *   decrypting needs only one segment of extra memory; `payload` is then consumed
 * @returns the archive
 * @throws {TrustError} `DECRYPT_FAILED` when any segment does not authenticate
 */
export async function decryptPayload(
  bundleKey: Uint8Array,
  iv: Uint8Array,
  payload: Uint8Array,
  options: { inPlace?: boolean } = {},
): Promise<Uint8Array> {
  const key = await aesKey(bundleKey, "decrypt");
  const stride = SEGMENT_BYTES + TAG_BYTES;
  const count = Math.ceil(payload.length / stride);
  const length = payload.length - count * TAG_BYTES;
  const out = options.inPlace ? payload : new Uint8Array(length);
  for (let i = 0; i < count; i++) {
    const segment = payload.subarray(i * stride, (i + 1) * stride);
    const aad = new Uint8Array([i === count - 1 ? 1 : 0]);
    // Plaintext i lands at i × SEGMENT_BYTES, before segment i + 1 starts: nothing unread is
    // overwritten.
    const plain = await decryptAesGcm(key, segmentNonce(iv, i), segment, { aad });
    out.set(plain, i * SEGMENT_BYTES);
    // Free the segment's buffer now rather than at the next GC: keeps peak memory near the
    // bundle's own size.
    (plain.buffer as ArrayBuffer).transfer(0);
  }
  return out.subarray(0, length);
}

/** What {@link sealBundle} needs. */
export interface SealBundleOptions {
  /** The release key that signs the manifest. */
  releaseKey: Pick<Ed25519KeyPair, "kid" | "privateKey">;
  /** The tenant keys; only `macKey` is used here. */
  tenantKey: Pick<TenantKey, "macKey">;
  /** The AES-GCM IV the payload was encrypted with. */
  iv: Uint8Array;
  /** The encrypted payload ({@link encryptPayload}). */
  payload: Uint8Array;
}

/**
 * Signs, MACs and frames a manifest and an already encrypted payload. The manifest is written
 * as given (canonical JSON): {@link createBundle} is the usual way to make a bundle; this lower
 * step exists for tools and for tests that need a validly signed manifest saying something
 * unusual.
 *
 * @param manifest the manifest
 * @param options keys, IV and payload
 * @returns the bundle bytes
 */
export function sealBundle(manifest: BundleManifest, options: SealBundleOptions): Uint8Array {
  const { releaseKey, tenantKey, iv, payload } = options;
  const manifestBytes = utf8(canonicalJson(manifest));
  const message = manifestSigningInput(manifestBytes);
  return encodeBundle({
    manifest: manifestBytes,
    releaseKid: releaseKey.kid,
    signature: signEd25519(releaseKey.privateKey, message),
    mac: hmacSha256(tenantKey.macKey, message),
    iv,
    payload,
  });
}

/** What {@link createBundle} needs. */
export interface CreateBundleOptions {
  /** Path of the entry module among the files. */
  entry: string;
  /** Release version. */
  version: string;
  /** Expiry, ms since the epoch. */
  expires: number;
  /** The release key that signs the manifest. */
  releaseKey: Pick<Ed25519KeyPair, "kid" | "privateKey">;
  /** The tenant's keys: the payload is encrypted and the manifest MACed with them. */
  tenantKey: TenantKey;
  /** Current time in ms (default `Date.now`). */
  now?: () => number;
  /** Fills a buffer with secure random bytes, for the IV (default: WebCrypto). */
  random?: (buf: Uint8Array) => Uint8Array;
}

/**
 * Makes a bundle: packs the files, encrypts the archive (AES-256-GCM, fresh random IV), writes
 * the manifest, signs it with the release key and MACs it with the tenant key.
 *
 * @param files the agent's files
 * @param options entry, version, expiry and keys
 * @returns the bundle bytes
 * @throws {AgentError} `BAD_INPUT` for a bad version, entry or expiry; `BAD_ARCHIVE` for bad paths
 * @example
 * ```ts
 * import { generateKeyPair } from "@infraveil/trust";
 * import { createBundle, generateTenantKey, parseBundle } from "@infraveil/agent";
 * const bundle = await createBundle(
 *   [{ path: "main.ts", data: new TextEncoder().encode("export function start() {}") }],
 *   {
 *     entry: "main.ts", version: "1.0.0", expires: Date.now() + 86_400_000,
 *     releaseKey: generateKeyPair(), tenantKey: generateTenantKey(),
 *   },
 * );
 * if (parseBundle(bundle).iv.length !== 12) throw new Error();
 * ```
 */
export async function createBundle(
  files: readonly ArchiveFile[],
  options: CreateBundleOptions,
): Promise<Uint8Array> {
  const { entry, version, expires, releaseKey, tenantKey } = options;
  const { now = Date.now, random = (b: Uint8Array) => crypto.getRandomValues(b) } = options;
  if (!isVersion(version)) {
    throw new AgentError(
      "BAD_INPUT",
      `Version "${version}" is not MAJOR.MINOR.PATCH with an optional -prerelease (no +build)`,
    );
  }
  if (!files.some((f) => f.path === entry)) {
    throw new AgentError("BAD_INPUT", `Entry "${entry}" is not one of the bundle's files`);
  }
  const created = formatTimestamp(now());
  const expiresText = formatTimestamp(expires);
  const expiresMs = parseTimestamp(expiresText);
  if (expiresMs === null || expiresMs <= parseTimestamp(created)!) {
    throw new AgentError("BAD_INPUT", `Expiry ${expiresText} must be after the creation time`);
  }
  const archive = packArchive(files);
  const iv = random(new Uint8Array(IV_BYTES));
  const payload = await encryptPayload(tenantKey.bundleKey, iv, archive);
  const listed: ManifestFile[] = files.map((f) => ({
    path: f.path,
    sha256: sha256HexBulk(f.data),
    size: f.data.length,
  })).sort((a, b) => compareBytes(utf8(a.path), utf8(b.path)));
  const manifest: BundleManifest = {
    format: MANIFEST_FORMAT,
    version,
    created,
    expires: expiresText,
    entry,
    files: listed,
    ciphertext_sha256: sha256HexBulk(iv, payload),
  };
  return sealBundle(manifest, { releaseKey, tenantKey, iv, payload });
}
