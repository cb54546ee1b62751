import assert from "node:assert/strict";
import fc from "fast-check";
import { decodeBase64, generateKeyPair, keyPairFromSeed } from "@infraveil/trust";
import {
  cosignNote,
  formatCheckpoint,
  formatVerifierKey,
  noteKeyHash,
  parseCheckpoint,
  parseCheckpointNote,
  parseNote,
  parseVerifierKey,
  signCheckpoint,
  verifiersForKey,
  verifyCheckpoint,
  verifyNote,
} from "./checkpoint.ts";
import { LedgerError } from "./error.ts";

// golang.org/x/mod/sumdb/note's documented example key and note.
const PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const PETER_SKEY_B64 = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const PETER_TEXT = "If you think cryptography is the answer to your problem,\n" +
  "then you don't know what your problem is.\n";
const PETER_NOTE = PETER_TEXT +
  "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

Deno.test("verifyNote() accepts the Go sumdb/note example and names its key", () => {
  const v = parseVerifierKey(PETER_VKEY);
  assert.equal(v.name, "PeterNeumann");
  assert.equal(formatVerifierKey(v), PETER_VKEY);
  const out = verifyNote(PETER_NOTE, [v]);
  assert.equal(out.body, PETER_TEXT);
  assert.deepEqual(verifiersForKey(PETER_NOTE, v.publicKey), [v]);
});

Deno.test("signature lines reproduce the Go example byte for byte", () => {
  const seed = decodeBase64(PETER_SKEY_B64).slice(1);
  const key = keyPairFromSeed(seed);
  const signed = cosignNote(
    PETER_TEXT +
      "\n— Other AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
    {
      name: "PeterNeumann",
      key,
    },
  );
  assert.ok(signed.endsWith(PETER_NOTE.slice(PETER_TEXT.length + 1)));
});

Deno.test("verifyNote() rejects an altered body, a wrong key and a forged known-key line", () => {
  const v = parseVerifierKey(PETER_VKEY);
  assert.throws(() => verifyNote(PETER_NOTE.replace("answer", "Answer"), [v]), /does not verify/);
  const other = generateKeyPair();
  assert.throws(
    () => verifyNote(PETER_NOTE, [{ name: "PeterNeumann", publicKey: other.publicKey }]),
    /not signed by any trusted key/,
  );
  assert.throws(
    () => verifyNote(PETER_NOTE, []),
    (e) => e instanceof LedgerError && e.code === "BAD_SIGNATURE",
  );
});

Deno.test("parseNote() is strict about the format", () => {
  const bad = [
    PETER_TEXT, // no signatures
    PETER_NOTE.slice(0, -1), // no final newline
    PETER_NOTE.replace("— ", "-- "), // not an em dash
    PETER_NOTE.replace("PeterNeumann x08", "Peter Neumann x08"), // space in name
    PETER_NOTE.replace("x08go", "x08g!"), // not base64
    PETER_NOTE.replace("If you", "If\tyou"), // control character
    "\n\n— a AAAAAAA=\n",
  ];
  for (const text of bad) {
    assert.throws(() => parseNote(text), LedgerError, JSON.stringify(text.slice(0, 40)));
  }
});

Deno.test("signCheckpoint() and verifyCheckpoint() round-trip; cosignNote() adds a second key", () => {
  const host = generateKeyPair();
  const control = generateKeyPair();
  const cp = { origin: "infraveil/ledger/web-1", size: 42, root: new Uint8Array(32).fill(7) };
  const note = signCheckpoint(cp, { name: cp.origin, key: host });
  assert.equal(note.split("\n")[0], cp.origin);
  assert.equal(note.split("\n")[1], "42");
  const both = cosignNote(note, { name: "control", key: control });
  assert.equal(parseNote(both).signatures.length, 2);
  assert.throws(() => cosignNote(both, { name: "control", key: control }), /already signed/);
  const hostV = { name: cp.origin, publicKey: host.publicKey };
  const ctlV = { name: "control", publicKey: control.publicKey };
  assert.deepEqual(verifyCheckpoint(both, [hostV]), cp);
  assert.equal(verifyNote(both, [hostV, ctlV]).verifiedBy.length, 2);
  assert.deepEqual(parseCheckpointNote(both), cp);
  // The control plane's signature line moved onto another checkpoint does not verify.
  const other = signCheckpoint({ ...cp, size: 43 }, { name: cp.origin, key: host });
  const moved = other + both.split("\n").slice(-2)[0] + "\n";
  assert.throws(() => verifyNote(moved, [ctlV]), /does not verify/);
  assert.equal(noteKeyHash(cp.origin, host.publicKey).length, 4);
});

Deno.test("parseCheckpoint() rejects malformed bodies", () => {
  const root = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
  for (
    const body of [
      `o\n01\n${root}\n`,
      `o\n-1\n${root}\n`,
      `o\n1\nAAAA\n`,
      `\n1\n${root}\n`,
      `o\n1\n${root}`,
      `o\n1\n${root}\n\n`,
      `o\n1\n`,
    ]
  ) assert.throws(() => parseCheckpoint(body), LedgerError, JSON.stringify(body));
  const cp = parseCheckpoint(`o\n1\n${root}\next one\n`);
  assert.deepEqual(cp.extensions, ["ext one"]);
  assert.equal(formatCheckpoint(cp), `o\n1\n${root}\next one\n`);
});

Deno.test("parseNote() and parseCheckpointNote() throw only LedgerError on arbitrary text", () => {
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 300 }), (text) => {
      for (const f of [parseNote, parseCheckpointNote]) {
        try {
          f(text);
        } catch (e) {
          assert.ok(e instanceof LedgerError, String(e));
        }
      }
    }),
  );
});
