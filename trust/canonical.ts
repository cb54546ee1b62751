/**
 * Canonical JSON (RFC 8785, JCS) for everything that is hashed or signed.
 *
 * Values that JCS cannot represent faithfully are refused, not silently changed: non-finite
 * numbers, `undefined`, functions, symbols, bigints, strings with lone surrogates, and objects
 * that are not plain (dates, maps, class instances).
 *
 * @module
 */
import canonicalize from "canonicalize";
import { utf8 } from "./encoding.ts";
import { TrustError } from "./error.ts";

function check(value: unknown, path: string, depth: number): void {
  if (depth > 256) throw new TrustError("NOT_CANONICAL", `Value nested too deeply at ${path}`);
  switch (typeof value) {
    case "string":
      if (!value.isWellFormed()) {
        throw new TrustError("NOT_CANONICAL", `String at ${path} contains a lone surrogate`);
      }
      return;
    case "number":
      if (!Number.isFinite(value)) {
        throw new TrustError("NOT_CANONICAL", `Number at ${path} is not finite (${value})`);
      }
      return;
    case "boolean":
      return;
    case "object": {
      if (value === null) return;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) check(value[i], `${path}[${i}]`, depth + 1);
        return;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        throw new TrustError("NOT_CANONICAL", `Value at ${path} is not a plain object`);
      }
      for (const [k, v] of Object.entries(value)) {
        if (!k.isWellFormed()) {
          throw new TrustError("NOT_CANONICAL", `Key at ${path} contains a lone surrogate`);
        }
        check(v, `${path}.${k}`, depth + 1);
      }
      return;
    }
    default:
      throw new TrustError("NOT_CANONICAL", `Value at ${path} has type ${typeof value}`);
  }
}

/**
 * Serializes a JSON value as RFC 8785 canonical JSON.
 *
 * @param value a JSON value (plain objects, arrays, strings, finite numbers, booleans, null)
 * @returns the canonical text
 * @throws {TrustError} `NOT_CANONICAL` for a value JSON cannot represent exactly
 * @example
 * ```ts
 * import { canonicalJson } from "@infraveil/trust";
 * if (canonicalJson({ b: 1, a: [1e21, "x"] }) !== '{"a":[1e+21,"x"],"b":1}') throw new Error();
 * ```
 */
export function canonicalJson(value: unknown): string {
  check(value, "$", 0);
  const text = canonicalize(value);
  if (text === undefined) throw new TrustError("NOT_CANONICAL", "Value has no JSON form");
  return text;
}

/**
 * UTF-8 bytes of the canonical JSON of a value.
 *
 * @param value a JSON value
 * @returns the canonical bytes
 * @throws {TrustError} `NOT_CANONICAL` for a value JSON cannot represent exactly
 */
export function canonicalBytes(value: unknown): Uint8Array {
  return utf8(canonicalJson(value));
}
