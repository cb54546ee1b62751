/**
 * Test helper: the hex leaf hash of a line of text.
 *
 * @module
 */
import { encodeHex, utf8 } from "@infraveil/trust";
import { hashLeaf } from "./merkle.ts";

/** Hex RFC 6962 leaf hash of a line (without its newline). */
export function leafHashOfLine(line: string): string {
  return encodeHex(hashLeaf(utf8(line)));
}
