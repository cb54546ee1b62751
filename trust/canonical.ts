/**
 * Canonical JSON (RFC 8785, JCS) for everything that is hashed or signed.
 *
 * Values that JCS cannot represent faithfully are refused, not silently changed: non-finite
 * numbers, `undefined`, functions, symbols, bigints, strings with lone surrogates, and objects
 * that are not plain (dates, maps, class instances).
 *
 * @module
 */
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
  try {
    return serialize(value, 0);
  } catch (e) {
    if (e !== REFUSED) throw e;
    // The fast pass only knows that something was refused: the checker says what and where.
    check(value, "$", 0);
    throw new TrustError("NOT_CANONICAL", "Value has no JSON form");
  }
}

const REFUSED = new Error("not canonical");

/**
 * One pass over the value, refusing exactly what {@link check} refuses (with a bare marker; the
 * caller re-runs the checker for the message). Keys are sorted by UTF-16 code units and
 * primitives written by `JSON.stringify`, whose string escapes and shortest round-trip number
 * form are those RFC 8785 prescribes (ECMAScript `Number.prototype.toString`, `-0` as `0`).
 */
function serialize(value: unknown, depth: number): string {
  if (depth > 256) throw REFUSED;
  switch (typeof value) {
    case "string":
      if (!value.isWellFormed()) throw REFUSED;
      return JSON.stringify(value);
    case "number":
      if (!Number.isFinite(value)) throw REFUSED;
      return JSON.stringify(value);
    case "boolean":
      return value ? "true" : "false";
    case "object": {
      if (value === null) return "null";
      if (Array.isArray(value)) {
        let out = "[";
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ",";
          out += serialize(value[i], depth + 1);
        }
        return out + "]";
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) throw REFUSED;
      const keys = Object.keys(value).sort();
      let out = "{";
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i];
        if (!k.isWellFormed()) throw REFUSED;
        if (i > 0) out += ",";
        out += JSON.stringify(k) + ":" +
          serialize((value as Record<string, unknown>)[k], depth + 1);
      }
      return out + "}";
    }
    default:
      throw REFUSED;
  }
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
