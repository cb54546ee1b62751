/**
 * Small strict readers for request bodies: each names the field that is wrong and what is
 * allowed, and unknown fields are refused.
 *
 * @module
 */
import { ControlError } from "./error.ts";

/** A JSON object read from a request. */
export type Obj = Record<string, unknown>;

function bad(field: string, message: string): ControlError {
  return new ControlError("BAD_REQUEST", `Invalid field "${field}": ${message}`, {
    details: { field },
  });
}

/**
 * Checks that a value is an object and has only the allowed fields.
 *
 * @param value the value
 * @param allowed the allowed field names
 * @param where name for messages
 * @returns the object
 */
export function object(value: unknown, allowed: readonly string[], where = "body"): Obj {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ControlError("BAD_REQUEST", `Invalid ${where}: expected a JSON object`);
  }
  for (const k of Object.keys(value)) {
    if (!allowed.includes(k)) {
      throw new ControlError(
        "BAD_REQUEST",
        `Invalid ${where}: unknown field "${k}"; allowed: ${allowed.join(", ")}`,
        { details: { field: k } },
      );
    }
  }
  return value as Obj;
}

/** Options of {@link str}. */
export interface StrOptions {
  /** Longest allowed length (default 256). */
  max?: number;
  /** Pattern the value must match. */
  pattern?: RegExp;
  /** What the pattern means, for the message. */
  patternHint?: string;
}

/**
 * A required string field.
 *
 * @param o the object
 * @param field the field
 * @param options limits
 * @returns the value
 */
export function str(o: Obj, field: string, options: StrOptions = {}): string {
  const v = o[field];
  const { max = 256, pattern, patternHint } = options;
  if (typeof v !== "string" || v.length === 0) throw bad(field, "must be a non-empty string");
  if (v.length > max) throw bad(field, `must be at most ${max} characters`);
  if (pattern && !pattern.test(v)) throw bad(field, patternHint ?? `must match ${pattern}`);
  return v;
}

/**
 * An optional string field.
 *
 * @param o the object
 * @param field the field
 * @param options limits
 * @returns the value or undefined
 */
export function optStr(o: Obj, field: string, options: StrOptions = {}): string | undefined {
  return o[field] === undefined || o[field] === null ? undefined : str(o, field, options);
}

/**
 * An optional integer field within bounds.
 *
 * @param o the object
 * @param field the field
 * @param min smallest value
 * @param max largest value
 * @returns the value or undefined
 */
export function optInt(o: Obj, field: string, min: number, max: number): number | undefined {
  const v = o[field];
  if (v === undefined || v === null) return undefined;
  if (!Number.isSafeInteger(v) || (v as number) < min || (v as number) > max) {
    throw bad(field, `must be an integer in [${min}, ${max}]`);
  }
  return v as number;
}

/**
 * An optional boolean field.
 *
 * @param o the object
 * @param field the field
 * @returns the value or undefined
 */
export function optBool(o: Obj, field: string): boolean | undefined {
  const v = o[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") throw bad(field, "must be true or false");
  return v;
}

/**
 * An optional array of strings.
 *
 * @param o the object
 * @param field the field
 * @param options item limits and the most items
 * @returns the value or undefined
 */
export function optStrArray(
  o: Obj,
  field: string,
  options: StrOptions & { maxItems?: number; unique?: boolean } = {},
): string[] | undefined {
  const v = o[field];
  if (v === undefined || v === null) return undefined;
  const { maxItems = 1000, unique = true } = options;
  if (!Array.isArray(v)) throw bad(field, "must be an array of strings");
  if (v.length > maxItems) throw bad(field, `must have at most ${maxItems} items`);
  v.forEach((_, i) => str(v as unknown as Obj, String(i), options));
  if (unique && new Set(v).size !== v.length) throw bad(field, "must not repeat items");
  return v as string[];
}

/** Names of hosts, services, identities: letters, digits and `._-`, at most 128. */
export const NAME_RE: RegExp = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** What {@link NAME_RE} allows. */
export const NAME_HINT =
  "use 1–128 letters, digits, '.', '_' or '-', starting with a letter or digit";

/**
 * A page cursor (opaque to clients): base64url JSON `[time, id]`.
 *
 * @param key the last row's key
 * @returns the cursor
 */
export function encodeCursor(key: [number, string]): string {
  return btoa(JSON.stringify(key)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * Reads a cursor.
 *
 * @param cursor the cursor, or undefined
 * @returns the key
 */
export function decodeCursor(cursor: string | undefined): [number, string] | undefined {
  if (cursor === undefined || cursor === "") return undefined;
  try {
    const padded = cursor.replace(/-/g, "+").replace(/_/g, "/");
    const v = JSON.parse(atob(padded + "=".repeat((4 - (padded.length % 4)) % 4)));
    if (
      Array.isArray(v) && v.length === 2 && Number.isSafeInteger(v[0]) && typeof v[1] === "string"
    ) {
      return [v[0], v[1]];
    }
  } catch {
    // fall through
  }
  throw new ControlError(
    "BAD_REQUEST",
    'Invalid field "cursor": pass the next_cursor of the previous page',
    {
      details: { field: "cursor" },
    },
  );
}
