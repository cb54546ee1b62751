/**
 * The short anchor form of a tree head, `SIZE:ROOTHEX`, as the dashboard shows it and
 * `--head` accepts it.
 *
 * @module
 */
import { decodeHex, encodeHex } from "@infraveil/trust";
import { LedgerError } from "./error.ts";

/** A tree head: the number of entries and the RFC 6962 root over them. */
export interface Anchor {
  /** Number of entries. */
  size: number;
  /** 32-byte root. */
  root: Uint8Array;
}

const ANCHOR_RE = /^(0|[1-9][0-9]{0,15}):([0-9a-f]{64})$/;

/**
 * Parses `SIZE:ROOTHEX` (decimal size without leading zeros, root as 64 lowercase hex digits).
 *
 * @param text the anchor
 * @returns the anchor
 * @throws {LedgerError} `BAD_ANCHOR` naming the expected form
 * @example
 * ```ts
 * import { formatAnchor, parseAnchor } from "@infraveil/ledger";
 * const text = "3:" + "ab".repeat(32);
 * if (formatAnchor(parseAnchor(text)) !== text) throw new Error();
 * ```
 */
export function parseAnchor(text: string): Anchor {
  const m = typeof text === "string" ? ANCHOR_RE.exec(text) : null;
  if (!m || !Number.isSafeInteger(Number(m[1]))) {
    throw new LedgerError(
      "BAD_ANCHOR",
      `Invalid anchor ${
        JSON.stringify(String(text).slice(0, 80))
      }: expected SIZE:ROOT with ROOT as 64 lowercase hex characters, e.g. 42:${"0".repeat(64)}`,
    );
  }
  return { size: Number(m[1]), root: decodeHex(m[2]) };
}

/**
 * Formats an anchor as `SIZE:ROOTHEX`.
 *
 * @param anchor size and 32-byte root
 * @returns the short form
 */
export function formatAnchor(anchor: Anchor): string {
  return `${anchor.size}:${encodeHex(anchor.root)}`;
}
