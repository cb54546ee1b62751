/**
 * The policy content hash that the control plane and the agent use to know they enforce the same
 * policy: `"sha256:" + hex(SHA-256(UTF-8(JCS(model))))`, where the model is the parsed policy's
 * meaning (see `canonicalPolicyText`). Independent of comments and layout.
 *
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { canonicalPolicyText, toHex } from "./_canonical.ts";
import { parsePolicy } from "./parse.ts";
import type { ParsedPolicy, PolicyDocument } from "./types.ts";

/**
 * Content hash of a policy, `sha256:<64 hex>`.
 *
 * @param input Policy text, a {@linkcode ParsedPolicy}, or a {@linkcode PolicyDocument}.
 * @returns The hash; equal for texts that differ only in comments and layout.
 *
 * @example Comments and layout do not change the hash
 * ```ts
 * import { policyHash } from "@infraveil/policy";
 * import assert from "node:assert/strict";
 *
 * const a = policyHash('policy "p" {\n  version 1\n}\n');
 * const b = policyHash('# prod\npolicy "p" {\n\n    version 1   // v1\n}\n');
 * assert.equal(a, b);
 * assert.match(a, /^sha256:[0-9a-f]{64}$/);
 * ```
 */
export function policyHash(input: string | ParsedPolicy | PolicyDocument): string {
  const doc = typeof input === "string"
    ? parsePolicy(input).policy
    : "policy" in input
    ? input.policy
    : input;
  return "sha256:" + toHex(sha256(new TextEncoder().encode(canonicalPolicyText(doc))));
}
