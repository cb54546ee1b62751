/**
 * The action input: its JSON Schema, a strict validator that names every violation by JSON
 * path, and the reader for one action, a JSON array of actions, or JSON Lines.
 *
 * @module
 */
import type { PolicyAction } from "./types.ts";

const IDENT = "^[a-z][a-z0-9_]*$";
const CATEGORY = "^[A-Za-z_][A-Za-z0-9_-]*$";
/** Normalized repository-relative path (same rule as the evaluator's `isNormalizedPath`). */
const PATH = "^(?!/)(?!.*//)(?!.*/$)(?!(?:.*/)?\\.\\.?(?:/|$))[^\\\\\\u0000-\\u001f]+$";

/** JSON Schema (draft 2020-12) of one action; `infraveil policy schema` prints it. */
export const actionSchema: Readonly<Record<string, unknown>> = Object.freeze({
  $schema: "https://json-schema.org/draft/2020-12/schema",
  $id: "urn:infraveil:policy:action:1",
  title: "infraveil policy action",
  description:
    "One action an agent asks to perform; the policy decides allow, approval_required or deny.",
  type: "object",
  required: ["agent", "action"],
  additionalProperties: false,
  properties: {
    agent: {
      type: "string",
      minLength: 1,
      maxLength: 256,
      description: 'The agent asking; matched exactly against `agent "<name>"` blocks.',
    },
    action: {
      type: "string",
      pattern: IDENT,
      maxLength: 64,
      description:
        "The action: deploy, rollback, restart, remediate, scale, config_change, rotate_secret, delete, db_migrate, drop_table or read. Other names are denied.",
    },
    environment: {
      type: "string",
      minLength: 1,
      maxLength: 256,
      description:
        'Selects the `policy "<environment>"` block; may be omitted when the file has exactly one.',
    },
    service: {
      type: "string",
      minLength: 1,
      maxLength: 256,
      description: "The service acted on; every target belongs to it.",
    },
    targets: {
      type: "array",
      items: { type: "string", minLength: 1, maxLength: 256 },
      uniqueItems: true,
      maxItems: 10000,
      description: "The hosts acted on. Executors never act beyond this list.",
    },
    files: {
      type: "array",
      items: { type: "string", pattern: PATH, maxLength: 4096 },
      uniqueItems: true,
      maxItems: 100000,
      description:
        'Changed files, repository-relative and "/"-separated, without ".", ".." or empty segments. Required for deploy and rollback.',
    },
    category: {
      type: "string",
      pattern: CATEGORY,
      maxLength: 64,
      description: "Finding category (e.g. auth, crypto). Required for remediate.",
    },
    reason: { type: "string", maxLength: 10000, description: "Free text for approvers." },
  },
  allOf: [
    {
      if: { properties: { action: { enum: ["deploy", "rollback"] } }, required: ["action"] },
      then: { required: ["files"] },
    },
    {
      if: { properties: { action: { const: "remediate" } }, required: ["action"] },
      then: { required: ["category"] },
    },
  ],
});

/** One schema violation: the JSON path and what is wrong. */
export interface ActionError {
  /** JSON path of the offending value, e.g. `$.files[2]`. */
  path: string;
  /** What is wrong and how to fix it. */
  message: string;
}

const KEYS = [
  "agent",
  "action",
  "environment",
  "service",
  "targets",
  "files",
  "category",
  "reason",
];
const IDENT_RE = new RegExp(IDENT);
const CATEGORY_RE = new RegExp(CATEGORY);
const PATH_RE = new RegExp(PATH);

function member(base: string, key: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key)
    ? `${base}.${key}`
    : `${base}[${JSON.stringify(key)}]`;
}

function typeName(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "array" : typeof v;
}

/**
 * Validate a parsed JSON value against {@linkcode actionSchema}.
 *
 * @param value Any JSON value.
 * @param base JSON path prefix for messages (default `$`).
 * @returns Every violation, each with its JSON path; empty when valid.
 *
 * @example
 * ```ts
 * import { validateAction } from "@infraveil/policy";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(validateAction({ agent: "a", action: "restart" }), []);
 * const errors = validateAction({ agent: "a", action: "deploy", files: ["ok", "../x"] });
 * assert.equal(errors[0].path, "$.files[1]");
 * ```
 */
export function validateAction(value: unknown, base = "$"): ActionError[] {
  const errors: ActionError[] = [];
  const fail = (path: string, message: string): void => {
    errors.push({ path, message });
  };
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    fail(base, `must be an object, got ${typeName(value)}`);
    return errors;
  }
  const o = value as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!KEYS.includes(k)) fail(member(base, k), `unknown property; allowed: ${KEYS.join(", ")}`);
  }
  const str = (k: string, opts: { min?: number; max: number; re?: RegExp; hint?: string }) => {
    const v = o[k];
    if (v === undefined) return;
    const p = member(base, k);
    if (typeof v !== "string") return fail(p, `must be a string, got ${typeName(v)}`);
    if (v.length < (opts.min ?? 0)) return fail(p, "must not be empty");
    if (v.length > opts.max) return fail(p, `must be at most ${opts.max} characters`);
    if (opts.re && !opts.re.test(v)) fail(p, `${JSON.stringify(v)} ${opts.hint}`);
  };
  for (const k of ["agent", "action"]) {
    if (!Object.hasOwn(o, k)) fail(member(base, k), "is required");
  }
  str("agent", { min: 1, max: 256 });
  str("action", {
    max: 64,
    re: IDENT_RE,
    hint: "is not an action name (lowercase letters, digits, _)",
  });
  str("environment", { min: 1, max: 256 });
  str("service", { min: 1, max: 256 });
  str("category", {
    max: 64,
    re: CATEGORY_RE,
    hint: "is not a category name (letters, digits, _ and -)",
  });
  str("reason", { max: 10000 });
  const list = (k: string, max: number, item: (v: string, p: string) => void) => {
    const v = o[k];
    if (v === undefined) return;
    const p = member(base, k);
    if (!Array.isArray(v)) return fail(p, `must be an array of strings, got ${typeName(v)}`);
    if (v.length > max) return fail(p, `must have at most ${max} items`);
    const seen = new Map<string, number>();
    v.forEach((x, i) => {
      const ip = `${p}[${i}]`;
      if (typeof x !== "string") return fail(ip, `must be a string, got ${typeName(x)}`);
      const prev = seen.get(x);
      if (prev !== undefined) return fail(ip, `duplicates ${p}[${prev}]`);
      seen.set(x, i);
      item(x, ip);
    });
  };
  list("targets", 10000, (x, p) => {
    if (x.length === 0) fail(p, "must not be empty");
    else if (x.length > 256) fail(p, "must be at most 256 characters");
  });
  list("files", 100000, (x, p) => {
    if (x.length > 4096) fail(p, "must be at most 4096 characters");
    else if (!PATH_RE.test(x)) {
      fail(
        p,
        `${
          JSON.stringify(x)
        } must be a repository-relative path with "/" separators and no leading "/", no "." or ".." or empty segments, no "\\" or control characters`,
      );
    }
  });
  if ((o.action === "deploy" || o.action === "rollback") && o.files === undefined) {
    fail(member(base, "files"), `is required for ${o.action} (list the changed files)`);
  }
  if (o.action === "remediate" && o.category === undefined) {
    fail(member(base, "category"), "is required for remediate (the finding's category)");
  }
  return errors;
}

/** One action read from input, with the label used in messages (`$[2]`, `line 3`). */
export interface ActionInput {
  /** Where it came from: `$` for a single object, `$[i]` in an array, `line N` in JSONL. */
  label: string;
  /** JSON path prefix for its errors. */
  path: string;
  /** The parsed value (not yet validated). */
  value: unknown;
}

/**
 * Read actions from text: one JSON object, a JSON array of objects, or JSON Lines.
 *
 * @param text The input text.
 * @returns The values, or an error message naming the line when the text is not JSON.
 */
export function readActions(text: string): { items: ActionInput[]; error?: string } {
  const t = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const trimmed = t.trim();
  if (trimmed === "") return { items: [], error: "no action: the input is empty" };
  if (trimmed.startsWith("[")) {
    let v: unknown;
    try {
      v = JSON.parse(trimmed);
    } catch (e) {
      return { items: [], error: `invalid JSON: ${(e as Error).message}` };
    }
    const arr = v as unknown[];
    if (arr.length === 0) return { items: [], error: "no action: the array is empty" };
    return { items: arr.map((value, i) => ({ label: `$[${i}]`, path: `$[${i}]`, value })) };
  }
  try {
    return { items: [{ label: "$", path: "$", value: JSON.parse(trimmed) }] };
  } catch (whole) {
    const lines = t.split("\n");
    if (lines.filter((l) => l.trim() !== "").length < 2) {
      return { items: [], error: `invalid JSON: ${(whole as Error).message}` };
    }
    const items: ActionInput[] = [];
    for (let i = 0; i < lines.length; i++) {
      if (lines[i].trim() === "") continue;
      try {
        items.push({ label: `line ${i + 1}`, path: "$", value: JSON.parse(lines[i]) });
      } catch (e) {
        return { items: [], error: `invalid JSON on line ${i + 1}: ${(e as Error).message}` };
      }
    }
    return { items };
  }
}

/** Narrow a validated value to {@linkcode PolicyAction}. */
export function asAction(value: unknown): PolicyAction {
  return value as PolicyAction;
}
