/**
 * The MCP server's identity file, as `infraveil control enroll --kind mcp` writes it:
 *
 * ```json
 * {"kind":"mcp","name":"claude","tenant":"acme","kid":"…","private":"…","public":"…",
 *  "control_url":"https://control.example","control_public_key":"…","control_kid":"…"}
 * ```
 *
 * `name` is the AI agent's name, matched against a policy `agent "<name>"` block; `private` is
 * its Ed25519 seed (base64url); `control_public_key` is the control plane's pinned key: every
 * response is verified against it and nothing else. Parsing is strict and pure; `main.ts`
 * reads the file and checks its permission bits.
 *
 * @module
 */
import {
  decodeBase64Url,
  type Ed25519KeyPair,
  type Ed25519PublicKey,
  keyId,
  keyPairFromSeed,
  timingSafeEqual,
} from "@infraveil/trust";
import { GovernedMcpError } from "./error.ts";

/** A parsed MCP identity. */
export interface McpIdentity {
  /** Always `"mcp"`. */
  kind: "mcp";
  /** The AI agent's name; the policy's `agent "<name>"` block governs it. */
  name: string;
  /** The tenant it belongs to. */
  tenant: string;
  /** Its Ed25519 key pair (signs every call to the control plane). */
  key: Ed25519KeyPair;
  /** The control plane's pinned public key (verifies every response). */
  control: Ed25519PublicKey;
  /** The control plane's URL as written at enrolment, if any. */
  controlUrl?: string;
}

const FIELDS = [
  "kind",
  "name",
  "tenant",
  "kid",
  "private",
  "public",
  "control_url",
  "control_public_key",
  "control_kid",
];

const ENROLL = "Re-create it with `infraveil control enroll --kind mcp`";

function bad(source: string, problem: string, fix = ENROLL): GovernedMcpError {
  return new GovernedMcpError(
    "BAD_IDENTITY",
    `Cannot load identity file ${source}: ${problem}. ${fix}`,
  );
}

function bytes32(obj: Record<string, unknown>, field: string, source: string): Uint8Array {
  const v = obj[field];
  if (typeof v !== "string") throw bad(source, `field "${field}" is missing or not a string`);
  let out: Uint8Array;
  try {
    out = decodeBase64Url(v);
  } catch {
    throw bad(source, `field "${field}" is not base64url`);
  }
  if (out.length !== 32) {
    throw bad(source, `field "${field}" is ${out.length} bytes, expected 32`);
  }
  return out;
}

function text(obj: Record<string, unknown>, field: string, source: string): string {
  const v = obj[field];
  if (typeof v !== "string" || v === "") {
    throw bad(source, `field "${field}" is missing or not a non-empty string`);
  }
  return v;
}

/**
 * Parses the text of an identity file.
 *
 * @param input the file's contents
 * @param source the file name, for error messages
 * @returns the identity
 * @throws {GovernedMcpError} `BAD_IDENTITY` naming the file, the field and the fix
 * @example
 * ```ts
 * import { encodeBase64Url, generateKeyPair } from "@infraveil/trust";
 * import { parseIdentityFile } from "@infraveil/mcp";
 * const me = generateKeyPair();
 * const control = generateKeyPair();
 * const id = parseIdentityFile(JSON.stringify({
 *   kind: "mcp", name: "claude", tenant: "acme", kid: me.kid,
 *   private: encodeBase64Url(me.privateKey), public: encodeBase64Url(me.publicKey),
 *   control_public_key: encodeBase64Url(control.publicKey), control_kid: control.kid,
 * }), "claude.json");
 * if (id.control.kid !== control.kid) throw new Error();
 * ```
 */
export function parseIdentityFile(input: string, source: string): McpIdentity {
  let json: unknown;
  try {
    json = JSON.parse(input);
  } catch {
    throw bad(
      source,
      input.trim() === "" ? "the file is empty" : "the file is not JSON (truncated?)",
    );
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw bad(source, "expected a JSON object");
  }
  const obj = json as Record<string, unknown>;
  for (const field of Object.keys(obj)) {
    if (!FIELDS.includes(field)) throw bad(source, `unknown field "${field}"`, "Remove it");
  }
  if (obj.kind !== "mcp") {
    throw bad(
      source,
      `field "kind" is ${JSON.stringify(obj.kind)}, expected "mcp"`,
      "An MCP server needs an identity enrolled with `infraveil control enroll --kind mcp`; " +
        "an agent's or an approver's identity is not accepted",
    );
  }
  const name = text(obj, "name", source);
  const tenant = text(obj, "tenant", source);
  const publicKey = bytes32(obj, "public", source);
  const kid = keyId(publicKey);
  if (obj.kid !== kid) {
    throw bad(
      source,
      `field "kid" is ${JSON.stringify(obj.kid)} but the public key's id is "${kid}"`,
      "The file is damaged or was edited. " + ENROLL,
    );
  }
  const seed = bytes32(obj, "private", source);
  const key = keyPairFromSeed(seed);
  seed.fill(0);
  if (!timingSafeEqual(key.publicKey, publicKey)) {
    throw bad(source, "the public key does not belong to the private key");
  }
  const controlKey = bytes32(obj, "control_public_key", source);
  const controlKid = keyId(controlKey);
  if (obj.control_kid !== controlKid) {
    throw bad(
      source,
      `field "control_kid" is ${
        JSON.stringify(obj.control_kid)
      } but the pinned control key's id is "${controlKid}"`,
      "The file is damaged or was edited. " + ENROLL,
    );
  }
  if (controlKid === kid) {
    throw bad(source, "the pinned control-plane key is the MCP server's own key");
  }
  let controlUrl: string | undefined;
  if (obj.control_url !== undefined) {
    controlUrl = text(obj, "control_url", source);
    try {
      checkBaseUrl(controlUrl, `field "control_url"`);
    } catch (e) {
      throw bad(source, (e as Error).message, "Fix the URL or remove the field");
    }
  }
  return {
    kind: "mcp",
    name,
    tenant,
    key,
    control: { kid: controlKid, publicKey: controlKey },
    ...(controlUrl === undefined ? {} : { controlUrl }),
  };
}

/**
 * Checks a control-plane base URL: `http:` or `https:`, no credentials, query or fragment.
 *
 * @param url the URL
 * @param where where it came from, for the error message
 * @returns the parsed URL
 * @throws {GovernedMcpError} `BAD_CONFIG` saying what is wrong
 */
export function checkBaseUrl(url: string, where: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new GovernedMcpError(
      "BAD_CONFIG",
      `${where} is not a URL: ${JSON.stringify(url)}. Use e.g. https://control.example.com`,
    );
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") {
    throw new GovernedMcpError(
      "BAD_CONFIG",
      `${where} must be an http(s) URL, got ${JSON.stringify(url)}`,
    );
  }
  if (parsed.username || parsed.password || parsed.search || parsed.hash) {
    throw new GovernedMcpError(
      "BAD_CONFIG",
      `${where} must not carry credentials, a query or a fragment: ${JSON.stringify(url)}`,
    );
  }
  return parsed;
}
