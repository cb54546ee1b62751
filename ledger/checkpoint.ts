/**
 * C2SP signed notes and `tlog-checkpoint` bodies with Ed25519 keys: sign, co-sign, parse and
 * verify, strictly.
 *
 * A note is `BODY` + `\n` + one or more signature lines `— NAME BASE64(keyhash ‖ sig)\n`,
 * where the key hash is the first 4 bytes of SHA-256(NAME ‖ 0x0A ‖ 0x01 ‖ public key) and the
 * signature is Ed25519 over the body bytes. A checkpoint body is `ORIGIN\nSIZE\nBASE64ROOT\n`
 * optionally followed by extension lines.
 *
 * @module
 */
import {
  decodeBase64,
  type Ed25519KeyPair,
  encodeBase64,
  encodeHex,
  sha256,
  signEd25519,
  utf8,
  verifyEd25519,
} from "@infraveil/trust";
import type { Anchor } from "./anchor.ts";
import { LedgerError } from "./error.ts";

/** A checkpoint: the origin (log identity), size and root of a tree head. */
export interface Checkpoint extends Anchor {
  /** The log's origin line, e.g. `infraveil/ledger/web-1`. */
  origin: string;
  /** Extension lines after the root, if any. */
  extensions?: string[];
}

/** A key that signs notes: a name plus an Ed25519 key pair. */
export interface NoteSigner {
  /** The key name written on the signature line (no spaces, no `+`). */
  name: string;
  /** The Ed25519 key pair. */
  key: Ed25519KeyPair;
}

/** A key that verifies notes: a name plus an Ed25519 public key. */
export interface NoteVerifier {
  /** The key name. */
  name: string;
  /** Raw 32-byte Ed25519 public key. */
  publicKey: Uint8Array;
}

/** One signature line of a note. */
export interface NoteSignature {
  /** Key name. */
  name: string;
  /** 4-byte key hash. */
  keyHash: Uint8Array;
  /** The signature bytes after the key hash. */
  signature: Uint8Array;
}

/** A parsed (not yet verified) note. */
export interface ParsedNote {
  /** The signed text, ending in `\n`. */
  body: string;
  /** Its signature lines, in order. */
  signatures: NoteSignature[];
}

const SIG_PREFIX = "\u2014 ";
const MAX_SIGNATURES = 100;
const ED25519_ALG = 0x01;

function bad(message: string): LedgerError {
  return new LedgerError("BAD_CHECKPOINT", message);
}

function checkKeyName(name: string): void {
  if (typeof name !== "string" || name === "" || /[\s+]/u.test(name) || !name.isWellFormed()) {
    throw bad(
      `Invalid note key name ${JSON.stringify(name)}: it must be non-empty, without spaces or "+"`,
    );
  }
}

/**
 * The 4-byte key hash of an Ed25519 note key: SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key)[0:4].
 *
 * @param name key name
 * @param publicKey raw 32-byte public key
 * @returns 4 bytes
 */
export function noteKeyHash(name: string, publicKey: Uint8Array): Uint8Array {
  const n = utf8(name);
  const buf = new Uint8Array(n.length + 2 + publicKey.length);
  buf.set(n, 0);
  buf[n.length] = 0x0a;
  buf[n.length + 1] = ED25519_ALG;
  buf.set(publicKey, n.length + 2);
  return sha256(buf).slice(0, 4);
}

/**
 * The verifier key text `NAME+HASH+BASE64(0x01 ‖ key)` used by note tooling.
 *
 * @param verifier name and public key
 * @returns the verifier key text
 */
export function formatVerifierKey(verifier: NoteVerifier): string {
  checkKeyName(verifier.name);
  const raw = new Uint8Array(33);
  raw[0] = ED25519_ALG;
  raw.set(verifier.publicKey, 1);
  return `${verifier.name}+${encodeHex(noteKeyHash(verifier.name, verifier.publicKey))}+${
    encodeBase64(raw)
  }`;
}

/**
 * Parses a verifier key `NAME+HASH+BASE64(0x01 ‖ key)`, checking the hash.
 *
 * @param text the verifier key
 * @returns name and public key
 * @throws {LedgerError} `BAD_CHECKPOINT` when malformed or the hash does not match
 */
export function parseVerifierKey(text: string): NoteVerifier {
  const parts = text.split("+");
  if (parts.length !== 3 || !/^[0-9a-f]{8}$/.test(parts[1])) {
    throw bad("Invalid verifier key: expected NAME+HASH+KEY (HASH 8 lowercase hex digits)");
  }
  const [name, hash, key] = parts;
  checkKeyName(name);
  let raw: Uint8Array;
  try {
    raw = decodeBase64(key);
  } catch {
    throw bad("Invalid verifier key: the key is not base64");
  }
  if (raw.length !== 33 || raw[0] !== ED25519_ALG) {
    throw bad("Invalid verifier key: only Ed25519 keys (algorithm 1, 32 bytes) are supported");
  }
  const publicKey = raw.slice(1);
  if (encodeHex(noteKeyHash(name, publicKey)) !== hash) {
    throw bad("Invalid verifier key: the key hash does not match the name and key");
  }
  return { name, publicKey };
}

function checkText(text: string, what: string): void {
  if (!text.isWellFormed()) throw bad(`Invalid ${what}: not valid UTF-8 text`);
  // Control characters other than newline are not allowed in notes.
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u0009\u000b-\u001f\u007f]/.test(text)) {
    throw bad(`Invalid ${what}: it contains a control character`);
  }
}

/**
 * Formats a checkpoint body.
 *
 * @param checkpoint origin, size, root and optional extension lines
 * @returns the body text, ending in `\n`
 * @throws {LedgerError} `BAD_CHECKPOINT` for an invalid origin, size, root or extension
 */
export function formatCheckpoint(checkpoint: Checkpoint): string {
  const { origin, size, root, extensions = [] } = checkpoint;
  if (typeof origin !== "string" || origin === "" || origin.includes("\n")) {
    throw bad("Invalid checkpoint origin: it must be one non-empty line");
  }
  checkText(origin, "checkpoint origin");
  if (!Number.isSafeInteger(size) || size < 0) throw bad(`Invalid checkpoint size ${size}`);
  if (!(root instanceof Uint8Array) || root.length !== 32) {
    throw bad("Invalid checkpoint root: it must be 32 bytes");
  }
  for (const ext of extensions) {
    if (ext === "" || ext.includes("\n")) throw bad("Invalid checkpoint extension line");
    checkText(ext, "checkpoint extension");
  }
  return [origin, String(size), encodeBase64(root), ...extensions].join("\n") + "\n";
}

/**
 * Parses a checkpoint body strictly.
 *
 * @param body the note body (ending in `\n`)
 * @returns the checkpoint
 * @throws {LedgerError} `BAD_CHECKPOINT` naming the bad line
 */
export function parseCheckpoint(body: string): Checkpoint {
  checkText(body, "checkpoint");
  if (!body.endsWith("\n")) throw bad("Invalid checkpoint: the body must end with a newline");
  const lines = body.slice(0, -1).split("\n");
  if (lines.length < 3) throw bad("Invalid checkpoint: expected origin, size and root lines");
  const [origin, sizeText, rootText, ...extensions] = lines;
  if (origin === "") throw bad("Invalid checkpoint: line 1 (origin) is empty");
  if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText))) {
    throw bad(
      `Invalid checkpoint: line 2 (size) ${JSON.stringify(sizeText)} is not a decimal size`,
    );
  }
  let root: Uint8Array;
  try {
    root = decodeBase64(rootText);
  } catch {
    throw bad("Invalid checkpoint: line 3 (root) is not base64");
  }
  if (root.length !== 32) throw bad("Invalid checkpoint: line 3 (root) is not 32 bytes");
  if (extensions.some((e) => e === "")) throw bad("Invalid checkpoint: empty extension line");
  const cp: Checkpoint = { origin, size: Number(sizeText), root };
  if (extensions.length > 0) cp.extensions = extensions;
  return cp;
}

/**
 * Splits a signed note into body and signature lines, strictly.
 *
 * @param text the note
 * @returns body and signatures (not verified)
 * @throws {LedgerError} `BAD_CHECKPOINT` naming the problem
 */
export function parseNote(text: string): ParsedNote {
  if (typeof text !== "string") throw bad("Invalid note: not text");
  checkText(text, "note");
  if (!text.endsWith("\n")) throw bad("Invalid note: it must end with a newline");
  const split = text.lastIndexOf("\n\n");
  if (split < 0) throw bad("Invalid note: no blank line before the signatures");
  const body = text.slice(0, split + 1);
  const sigLines = text.slice(split + 2, -1).split("\n");
  if (body === "\n" || body.length === 0) throw bad("Invalid note: empty body");
  if (sigLines.length > MAX_SIGNATURES) throw bad("Invalid note: too many signatures");
  const signatures: NoteSignature[] = [];
  for (const [i, line] of sigLines.entries()) {
    if (!line.startsWith(SIG_PREFIX)) {
      throw bad(`Invalid note: signature line ${i + 1} does not start with "— "`);
    }
    const rest = line.slice(SIG_PREFIX.length);
    const space = rest.indexOf(" ");
    if (space <= 0 || rest.indexOf(" ", space + 1) >= 0) {
      throw bad(`Invalid note: signature line ${i + 1} is not "— NAME SIGNATURE"`);
    }
    const name = rest.slice(0, space);
    checkKeyName(name);
    let raw: Uint8Array;
    try {
      raw = decodeBase64(rest.slice(space + 1));
    } catch {
      throw bad(`Invalid note: signature line ${i + 1} is not base64`);
    }
    if (raw.length < 5) throw bad(`Invalid note: signature line ${i + 1} is too short`);
    signatures.push({ name, keyHash: raw.slice(0, 4), signature: raw.slice(4) });
  }
  return { body, signatures };
}

function signatureLine(body: string, signer: NoteSigner): string {
  checkKeyName(signer.name);
  const sig = signEd25519(signer.key.privateKey, utf8(body));
  const raw = new Uint8Array(68);
  raw.set(noteKeyHash(signer.name, signer.key.publicKey), 0);
  raw.set(sig, 4);
  return `${SIG_PREFIX}${signer.name} ${encodeBase64(raw)}\n`;
}

/**
 * Signs a checkpoint as a C2SP signed note.
 *
 * @param checkpoint origin, size and root
 * @param signer key name and key pair
 * @returns the note text
 * @throws {LedgerError} `BAD_CHECKPOINT` for an invalid checkpoint or key name
 * @example
 * ```ts
 * import { signCheckpoint, verifyCheckpoint } from "@infraveil/ledger";
 * import { generateKeyPair } from "@infraveil/trust";
 * const key = generateKeyPair();
 * const note = signCheckpoint(
 *   { origin: "example/log", size: 0, root: new Uint8Array(32) },
 *   { name: "example/log", key },
 * );
 * const cp = verifyCheckpoint(note, [{ name: "example/log", publicKey: key.publicKey }]);
 * if (cp.origin !== "example/log") throw new Error();
 * ```
 */
export function signCheckpoint(checkpoint: Checkpoint, signer: NoteSigner): string {
  const body = formatCheckpoint(checkpoint);
  return `${body}\n${signatureLine(body, signer)}`;
}

/**
 * Adds a signature line to a note (a co-signature, e.g. the control plane's after it checked
 * a consistency proof). The note's format is checked first; its existing signatures are not.
 *
 * @param note the note
 * @param signer key name and key pair
 * @returns the note with one more signature line
 * @throws {LedgerError} `BAD_CHECKPOINT` for a malformed note or a key that already signed it
 */
export function cosignNote(note: string, signer: NoteSigner): string {
  const parsed = parseNote(note);
  const hash = noteKeyHash(signer.name, signer.key.publicKey);
  if (
    parsed.signatures.some((s) =>
      s.name === signer.name && encodeHex(s.keyHash) === encodeHex(hash)
    )
  ) {
    throw bad(`Cannot co-sign: key ${signer.name} already signed this note`);
  }
  return note + signatureLine(parsed.body, signer);
}

/** The result of {@link verifyNote}. */
export interface VerifiedNote {
  /** The signed body. */
  body: string;
  /** The known keys whose signatures verified. */
  verifiedBy: NoteVerifier[];
}

/**
 * Verifies a note: at least one signature by a known key must verify, and a signature that
 * claims a known key (same name and key hash) but does not verify fails the note. Signatures by
 * unknown keys are ignored.
 *
 * @param note the note
 * @param verifiers the known keys
 * @returns the body and the keys that verified it
 * @throws {LedgerError} `BAD_CHECKPOINT` when malformed, `BAD_SIGNATURE` when no known key
 *   verified it or a known key's signature is invalid
 */
export function verifyNote(note: string, verifiers: readonly NoteVerifier[]): VerifiedNote {
  const parsed = parseNote(note);
  const message = utf8(parsed.body);
  const verifiedBy: NoteVerifier[] = [];
  for (const sig of parsed.signatures) {
    for (const v of verifiers) {
      if (v.name !== sig.name) continue;
      if (encodeHex(noteKeyHash(v.name, v.publicKey)) !== encodeHex(sig.keyHash)) continue;
      if (!verifyEd25519(v.publicKey, message, sig.signature)) {
        throw new LedgerError(
          "BAD_SIGNATURE",
          `Note signature by ${v.name} does not verify: the note was altered or signed by another key`,
        );
      }
      if (!verifiedBy.includes(v)) verifiedBy.push(v);
    }
  }
  if (verifiedBy.length === 0) {
    const names = parsed.signatures.map((s) => s.name).join(", ");
    throw new LedgerError(
      "BAD_SIGNATURE",
      `Note is not signed by any trusted key (signed by: ${names}); pass the signer's public key`,
    );
  }
  return { body: parsed.body, verifiedBy };
}

/**
 * The verifiers a raw public key stands for in a note: one per signature line whose key hash
 * matches that key under the line's name. Lets a caller trust a key without knowing its name.
 *
 * @param note the note
 * @param publicKey raw 32-byte Ed25519 public key
 * @returns the matching verifiers (empty when the key signed nothing in the note)
 * @throws {LedgerError} `BAD_CHECKPOINT` for a malformed note
 */
export function verifiersForKey(note: string, publicKey: Uint8Array): NoteVerifier[] {
  const out: NoteVerifier[] = [];
  for (const sig of parseNote(note).signatures) {
    if (encodeHex(noteKeyHash(sig.name, publicKey)) === encodeHex(sig.keyHash)) {
      if (!out.some((v) => v.name === sig.name)) out.push({ name: sig.name, publicKey });
    }
  }
  return out;
}

/**
 * Verifies a signed checkpoint note and parses its body.
 *
 * @param note the note
 * @param verifiers the known keys
 * @returns the checkpoint
 * @throws {LedgerError} as {@link verifyNote} and {@link parseCheckpoint}
 */
export function verifyCheckpoint(note: string, verifiers: readonly NoteVerifier[]): Checkpoint {
  return parseCheckpoint(verifyNote(note, verifiers).body);
}

/**
 * Parses a checkpoint note without verifying any signature (for display or for a caller that
 * verifies separately).
 *
 * @param note the note
 * @returns the checkpoint
 * @throws {LedgerError} `BAD_CHECKPOINT` for a malformed note or body
 */
export function parseCheckpointNote(note: string): Checkpoint {
  return parseCheckpoint(parseNote(note).body);
}
