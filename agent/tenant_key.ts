/**
 * Tenant key files: `{"kty":"infraveil-tenant","kid":…,"bundle_key":…,"mac_key":…}`, two
 * independent 32-byte secrets in base64url — the AES-256-GCM key that encrypts a tenant's agent
 * bundles and the HMAC-SHA256 key that MACs their manifests.
 *
 * `kid` is the first 16 hex characters of SHA-256 of
 * `"infraveil-tenant/v1\n" ‖ bundle_key ‖ mac_key`: it names the pair without revealing it, and
 * lets a damaged file be told apart from a wrong one. Pure: `_io.ts` reads and writes files.
 *
 * @module
 */
import {
  concatBytes,
  decodeBase64Url,
  encodeBase64Url,
  encodeHex,
  sha256,
  utf8,
} from "@infraveil/trust";
import { AgentError } from "./error.ts";

/** A tenant's bundle keys. */
export interface TenantKey {
  /** Key id, 16 hex characters. */
  readonly kid: string;
  /** 32-byte AES-256-GCM key for bundle payloads. */
  readonly bundleKey: Uint8Array;
  /** 32-byte HMAC-SHA256 key for bundle manifests. */
  readonly macKey: Uint8Array;
}

/**
 * The key id of a tenant key pair.
 *
 * @param bundleKey the 32-byte bundle key
 * @param macKey the 32-byte MAC key
 * @returns 16 lowercase hex characters
 */
export function tenantKeyId(bundleKey: Uint8Array, macKey: Uint8Array): string {
  return encodeHex(sha256(concatBytes(utf8("infraveil-tenant/v1\n"), bundleKey, macKey))).slice(
    0,
    16,
  );
}

/**
 * Makes new tenant keys.
 *
 * @param random fills a buffer with secure random bytes (default: WebCrypto)
 * @returns the keys
 * @example
 * ```ts
 * import { generateTenantKey, parseTenantKeyFile, formatTenantKeyFile } from "@infraveil/agent";
 * const key = generateTenantKey();
 * if (parseTenantKeyFile(formatTenantKeyFile(key), "t.key").kid !== key.kid) throw new Error();
 * ```
 */
export function generateTenantKey(
  random: (buf: Uint8Array) => Uint8Array = (b) => crypto.getRandomValues(b),
): TenantKey {
  const bundleKey = random(new Uint8Array(32));
  const macKey = random(new Uint8Array(32));
  return { kid: tenantKeyId(bundleKey, macKey), bundleKey, macKey };
}

/**
 * The text of a tenant key file.
 *
 * @param key the tenant keys
 * @returns JSON text ending in a newline
 */
export function formatTenantKeyFile(key: TenantKey): string {
  return JSON.stringify(
    {
      kty: "infraveil-tenant",
      kid: key.kid,
      bundle_key: encodeBase64Url(key.bundleKey),
      mac_key: encodeBase64Url(key.macKey),
    },
    null,
    2,
  ) + "\n";
}

/**
 * Parses a tenant key file strictly.
 *
 * @param text the file's contents
 * @param source the file name, for messages
 * @returns the tenant keys
 * @throws {AgentError} `BAD_CONFIG` naming the file and field that is wrong
 */
export function parseTenantKeyFile(text: string, source: string): TenantKey {
  const bad = (problem: string): AgentError =>
    new AgentError(
      "BAD_CONFIG",
      `Cannot load tenant key file ${source}: ${problem}. Restore it, or make a new one with \`infraveil release tenant-keys --out FILE\` (bundles must then be rebuilt)`,
    );
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw bad(text.trim() === "" ? "the file is empty" : "the file is not JSON (truncated?)");
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw bad("expected a JSON object");
  }
  const obj = json as Record<string, unknown>;
  if (obj.kty !== "infraveil-tenant") {
    throw bad(`field "kty" is ${JSON.stringify(obj.kty)}, expected "infraveil-tenant"`);
  }
  for (const field of Object.keys(obj)) {
    if (!["kty", "kid", "bundle_key", "mac_key"].includes(field)) {
      throw bad(`unknown field "${field}"`);
    }
  }
  const key = (field: "bundle_key" | "mac_key"): Uint8Array => {
    const value = obj[field];
    if (typeof value !== "string") throw bad(`field "${field}" is missing or not a string`);
    let bytes: Uint8Array;
    try {
      bytes = decodeBase64Url(value);
    } catch {
      throw bad(`field "${field}" is not base64url`);
    }
    if (bytes.length !== 32) throw bad(`field "${field}" is ${bytes.length} bytes, expected 32`);
    return bytes;
  };
  const bundleKey = key("bundle_key");
  const macKey = key("mac_key");
  const kid = tenantKeyId(bundleKey, macKey);
  if (obj.kid !== kid) {
    throw bad(`field "kid" is ${JSON.stringify(obj.kid)} but the keys' id is "${kid}"`);
  }
  return { kid, bundleKey, macKey };
}
