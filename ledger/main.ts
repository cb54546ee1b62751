/**
 * `infraveil ledger append|head|prove` and `infraveil verify ledger` (dispatched here as
 * `verify`). The only file of this package that reads arguments, standard input and files
 * named on the command line.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { decodeBase64, encodeHex, TrustError, utf8 } from "@infraveil/trust";
import { readPrivateKeyFile, readPublicKeyFile } from "@infraveil/trust/io";
import { type Anchor, formatAnchor, parseAnchor } from "./anchor.ts";
import {
  parseCheckpointNote,
  parseVerifierKey,
  signCheckpoint,
  verifiersForKey,
  verifyCheckpoint,
} from "./checkpoint.ts";
import type { JsonValue } from "./entry.ts";
import { LedgerError } from "./error.ts";
import { verifyLedgerFiles } from "./files.ts";
import { MerkleTree } from "./merkle.ts";
import type { AppendInput } from "./state.ts";
import type { VerifyReport } from "./verify.ts";
import { openLedger } from "./writer.ts";
import { leafHashesOf } from "./_hash.ts";
import { fileChunks } from "./_io.ts";

const USAGE = `Usage:
  infraveil ledger append FILE --type T --data JSON [--actor A]
                                        append one entry (durable when the command returns)
  infraveil ledger append FILE --jsonl -  [--actor A]
                                        append one entry per stdin line: {"type":…,"data":…}
  infraveil ledger head FILE… [--key KEYFILE] [--origin ORIGIN]
                                        print the anchor SIZE:ROOT; with --key also a signed
                                        checkpoint note (origin default infraveil/ledger/KID)
  infraveil ledger prove FILE… --seq N [--size S]
                                        inclusion proof of entry N (in the tree of size S)
  infraveil ledger prove FILE… --from-size M [--size S]
                                        consistency proof from size M to size S
  infraveil verify ledger FILE… [--head ANCHOR|CHECKPOINT_FILE] [--pubkey KEY]
                          [--format text|json] [--workers N]
                                        verify files (oldest first); KEY is a key file or a
                                        note verifier key NAME+HASH+KEY; N threads hash and
                                        scan ahead (default: none below 4 cores, else
                                        cores - 1, at most 3)
Exit codes: 0 intact / done, 1 tampered (class, first line and seq named), 2 usage or unreadable.`;

class UsageError extends Error {}

/** An input that cannot be read: exit 2 without the usage text. */
class InputError extends Error {}

/**
 * Runs the ledger commands with the arguments after `ledger` (or `verify ledger` as
 * `["verify", …]`).
 *
 * @param args command-line arguments
 * @returns the exit code
 */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  try {
    switch (command) {
      case "append":
        return await append(rest);
      case "head":
        return await head(rest);
      case "prove":
        return await prove(rest);
      case "verify":
        return await verify(rest);
      case "--help":
      case "-h":
      case "help":
        console.log(USAGE);
        return 0;
      default:
        throw new UsageError(
          command === undefined ? "missing command" : `unknown command "ledger ${command}"`,
        );
    }
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`error: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    if (e instanceof TypeError && "code" in e && String(e.code).startsWith("ERR_PARSE_ARGS")) {
      console.error(`error: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    if (e instanceof LedgerError || e instanceof TrustError || e instanceof InputError) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.PermissionDenied) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

function wantsHelp(rest: string[]): boolean {
  return rest.includes("--help") || rest.includes("-h");
}

async function append(rest: string[]): Promise<number> {
  if (wantsHelp(rest)) return help();
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      type: { type: "string" },
      data: { type: "string" },
      actor: { type: "string" },
      jsonl: { type: "string" },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length !== 1) throw new UsageError("ledger append needs exactly one FILE");
  const path = positionals[0];
  if (values.jsonl !== undefined) {
    if (values.jsonl !== "-") throw new UsageError("--jsonl takes - (standard input)");
    if (values.type !== undefined || values.data !== undefined) {
      throw new UsageError("--jsonl cannot be combined with --type or --data");
    }
    return await appendJsonl(path, values.actor);
  }
  if (values.type === undefined) throw new UsageError("ledger append needs --type T");
  let data: JsonValue = null;
  if (values.data !== undefined) data = parseJson(values.data, "--data");
  const ledger = await openLedger(path, { mode: "fsync", actor: values.actor ?? "cli" });
  try {
    reportQuarantine(ledger.recovered);
    const out = await ledger.append({ type: values.type, data });
    console.log(JSON.stringify({ seq: out.seq, leafHash: out.leafHash, head: ledger.anchor() }));
  } finally {
    await ledger.close();
  }
  return 0;
}

function reportQuarantine(q: { quarantine: string; offset: number; length: number } | null): void {
  if (q) {
    console.error(
      `warning: a torn final line (${q.length} bytes at offset ${q.offset}) was moved to ${q.quarantine}`,
    );
  }
}

function parseJson(text: string, where: string): JsonValue {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${where} is not JSON: ${(e as Error).message}`);
  }
}

async function appendJsonl(path: string, actor: string | undefined): Promise<number> {
  const ledger = await openLedger(path, { mode: "group", actor: actor ?? "cli" });
  reportQuarantine(ledger.recovered);
  let first = -1;
  let last = -1;
  let lineNo = 0;
  let inFlight: Promise<unknown>[] = [];
  let failure: string | null = null;
  try {
    const decoder = new TextDecoderStream();
    let buffered = "";
    const handle = (text: string): boolean => {
      lineNo++;
      if (text.trim() === "") return true;
      let input: AppendInput;
      try {
        const value = JSON.parse(text);
        if (value === null || typeof value !== "object" || Array.isArray(value)) {
          throw new Error("not an object");
        }
        const extra = Object.keys(value).filter((k) => !["type", "data", "actor"].includes(k));
        if (extra.length > 0) throw new Error(`unknown field ${extra[0]}`);
        if (typeof value.type !== "string") throw new Error("missing type");
        input = value as AppendInput;
      } catch (e) {
        failure = `stdin line ${lineNo}: ${(e as Error).message}; expected {"type":…,"data":…}`;
        return false;
      }
      const p = ledger.append(input).then((r) => {
        if (first < 0) first = r.seq;
        last = r.seq;
      });
      // Validation errors reject at once; keep the first and stop.
      p.catch((e) => {
        failure ??= `stdin line ${lineNo}: ${(e as Error).message}`;
      });
      inFlight.push(p);
      return true;
    };
    const reader = Deno.stdin.readable.pipeThrough(decoder).getReader();
    outer: for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += value;
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const text = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (!handle(text) || failure) break outer;
      }
      if (inFlight.length >= 8192) {
        await Promise.allSettled(inFlight);
        inFlight = [];
        if (failure) break;
      }
    }
    if (!failure && buffered.trim() !== "") handle(buffered);
    await Promise.allSettled(inFlight);
  } finally {
    await ledger.close();
  }
  const range = first < 0 ? "no entries appended" : `appended seq ${first}..${last}`;
  if (failure) {
    console.error(`error: ${failure}; ${range}; later lines were not read`);
    return 2;
  }
  console.log(`${range}; head ${ledger.anchor()}`);
  return 0;
}

async function head(rest: string[]): Promise<number> {
  if (wantsHelp(rest)) return help();
  const { values, positionals } = parseArgs({
    args: rest,
    options: { key: { type: "string" }, origin: { type: "string" } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length === 0) throw new UsageError("ledger head needs a FILE");
  const report = await verifyFiles(positionals, {});
  if (!report.ok && report.problem?.class !== "torn") {
    printProblem(report);
    return 1;
  }
  if (!report.ok) {
    console.error(
      `warning: ignoring a torn last line at ${report.problem!.file}:${
        report.problem!.line
      } (a write in progress, or a crash the writer will recover from)`,
    );
  }
  const anchor: Anchor = { size: report.size, root: hexToBytes(report.root) };
  console.log(formatAnchor(anchor));
  if (values.key !== undefined) {
    const key = await readPrivateKeyFile(values.key);
    const origin = values.origin ?? `infraveil/ledger/${key.kid}`;
    console.log();
    await writeOut(signCheckpoint({ origin, ...anchor }, { name: origin, key }));
  } else if (values.origin !== undefined) {
    throw new UsageError("--origin needs --key");
  }
  return 0;
}

async function writeOut(text: string): Promise<void> {
  const bytes = utf8(text);
  let n = 0;
  while (n < bytes.length) n += await Deno.stdout.write(bytes.subarray(n));
}

function hexToBytes(hex: string): Uint8Array {
  return parseAnchor(`0:${hex}`).root;
}

async function verifyFiles(
  paths: string[],
  options: Parameters<typeof verifyLedgerFiles>[1],
): Promise<VerifyReport> {
  for (const p of paths) {
    try {
      const info = await Deno.stat(p);
      if (!info.isFile) throw new InputError(`Cannot read ledger file ${p}: not a regular file`);
    } catch (e) {
      if (e instanceof InputError) throw e;
      const why = e instanceof Deno.errors.NotFound ? "no such file" : String(e);
      throw new InputError(`Cannot read ledger file ${p}: ${why}`);
    }
  }
  // Workers find, hash and scan lines ahead of the verifier (only for large files; the report is
  // the same). They inherit this process's permissions because "none" needs
  // --unstable-worker-options; they read and write nothing either way.
  return await verifyLedgerFiles(paths, { workers: verifyWorkers(), ...options });
}

/**
 * From 4 cores, one worker per core but this one's, at most 3 (this thread analyses chunks too
 * while it waits). Below that, none: workers add about a quarter to the CPU time, which pays
 * off only when a second core is really free, and on small machines it often is not.
 */
function verifyWorkers(): number {
  const cores = globalThis.navigator?.hardwareConcurrency ?? 1;
  return cores < 4 ? 0 : Math.min(3, cores - 1);
}

async function prove(rest: string[]): Promise<number> {
  if (wantsHelp(rest)) return help();
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      seq: { type: "string" },
      "from-size": { type: "string" },
      size: { type: "string" },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length === 0) throw new UsageError("ledger prove needs a FILE");
  if ((values.seq === undefined) === (values["from-size"] === undefined)) {
    throw new UsageError("ledger prove needs exactly one of --seq N and --from-size M");
  }
  const report = await verifyFiles(positionals, {});
  if (!report.ok) {
    printProblem(report);
    return 1;
  }
  if (report.files[0]?.firstSeq !== 0 && report.size > 0) {
    throw new UsageError("ledger prove needs every file from seq 0; pass the earlier files first");
  }
  const tree = new MerkleTree();
  const lines: string[] = [];
  const seqWanted = values.seq === undefined ? -1 : toCount(values.seq, "--seq");
  for (const path of positionals) await addLeaves(path, tree, seqWanted, lines);
  const size = values.size === undefined ? tree.size : toCount(values.size, "--size");
  if (size > tree.size || size < 1) {
    throw new UsageError(`--size ${size} is out of range: the ledger has ${tree.size} entries`);
  }
  if (values.seq !== undefined) {
    if (seqWanted >= size) {
      throw new UsageError(`--seq ${seqWanted} is not in a tree of ${size} entries`);
    }
    console.log(JSON.stringify({
      type: "inclusion",
      seq: seqWanted,
      size,
      leafHash: encodeHex(tree.leafHash(seqWanted)),
      root: encodeHex(tree.root(size)),
      proof: tree.inclusionProof(seqWanted, size).map(encodeHex),
      line: lines[0],
    }));
  } else {
    const from = toCount(values["from-size"]!, "--from-size");
    if (from < 1 || from > size) {
      throw new UsageError(`--from-size ${from} is out of range 1..${size}`);
    }
    console.log(JSON.stringify({
      type: "consistency",
      size1: from,
      size2: size,
      root1: encodeHex(tree.root(from)),
      root2: encodeHex(tree.root(size)),
      proof: tree.consistencyProof(from, size).map(encodeHex),
    }));
  }
  return 0;
}

function toCount(text: string, flag: string): number {
  if (!/^(0|[1-9][0-9]{0,15})$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`${flag} must be a non-negative integer, got ${JSON.stringify(text)}`);
  }
  return Number(text);
}

async function addLeaves(
  path: string,
  tree: MerkleTree,
  seqWanted: number,
  lines: string[],
): Promise<void> {
  let carry = new Uint8Array(0);
  for await (const chunk of fileChunks(path)) {
    const buf = new Uint8Array(carry.length + chunk.length);
    buf.set(carry);
    buf.set(chunk, carry.length);
    const bounds: number[] = [];
    let at = 0;
    for (let nl = buf.indexOf(10); nl >= 0; nl = buf.indexOf(10, at)) {
      bounds.push(at, nl);
      at = nl + 1;
    }
    const count = bounds.length / 2;
    const hashes = leafHashesOf(buf, Uint32Array.from(bounds), count);
    for (let i = 0; i < count; i++) {
      if (tree.size === seqWanted) {
        lines.push(new TextDecoder().decode(buf.subarray(bounds[2 * i], bounds[2 * i + 1])));
      }
      tree.append(hashes.subarray(32 * i, 32 * i + 32));
    }
    carry = buf.slice(at);
  }
}

async function verify(rest: string[]): Promise<number> {
  if (wantsHelp(rest)) return help();
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      head: { type: "string" },
      pubkey: { type: "string" },
      format: { type: "string", default: "text" },
      workers: { type: "string" },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length === 0) throw new UsageError("verify ledger needs at least one FILE");
  const format = values.format;
  if (format !== "text" && format !== "json") {
    throw new UsageError(`unknown --format "${format}"; use text or json`);
  }
  let workers: number | undefined;
  if (values.workers !== undefined) {
    if (!/^[0-9]{1,2}$/.test(values.workers)) {
      throw new UsageError(`--workers "${values.workers}": use a whole number from 0 to 99`);
    }
    workers = Number(values.workers);
  }
  const publicKey = values.pubkey === undefined ? undefined : await loadPublicKey(values.pubkey);
  let anchor: Anchor | undefined;
  let anchorNote: string | null = null;
  if (values.head !== undefined) {
    if (/^[0-9]+:/.test(values.head)) anchor = parseAnchor(values.head);
    else {
      let text: string;
      try {
        text = await Deno.readTextFile(values.head);
      } catch (e) {
        const why = e instanceof Deno.errors.NotFound ? "no such file" : String(e);
        throw new InputError(
          `Cannot read --head ${values.head}: ${why}; pass SIZE:ROOTHEX or a checkpoint file`,
        );
      }
      const trimmed = text.trim();
      if (/^[0-9]+:[0-9a-f]{64}$/.test(trimmed)) anchor = parseAnchor(trimmed);
      else {
        anchorNote = text;
        const cp = parseCheckpointNote(text);
        anchor = { size: cp.size, root: cp.root };
        if (publicKey) {
          try {
            verifyCheckpoint(text, verifiersForKey(text, publicKey));
          } catch (e) {
            return emitBadAnchor(format, values.head, (e as Error).message);
          }
        }
      }
    }
  }
  const report = await verifyFiles(positionals, {
    head: anchor,
    checkpointKeys: publicKey ? [publicKey] : [],
    ...(workers === undefined ? {} : { workers }),
  });
  if (format === "json") console.log(JSON.stringify(report, null, 2));
  else if (report.ok) {
    const parts = [
      `ok: ${report.size} entries in ${report.files.length} file(s), head ${report.anchor}`,
    ];
    if (report.head) {
      parts.push(`anchor ${report.head.size}:${report.head.root.slice(0, 16)}… reproduced`);
    }
    if (report.base) {
      parts.push(
        `builds on ${report.base.size}:${report.base.root.slice(0, 16)}… (${
          report.base.checkpointVerified
            ? "signed checkpoint verified"
            : "not covered by a verified checkpoint; pass the earlier files, --pubkey or --head"
        })`,
      );
    }
    if (anchorNote && !publicKey) parts.push("checkpoint signature not checked (no --pubkey)");
    for (const f of report.files) {
      if (f.padding) {
        parts.push(
          `${f.name} ends in ${f.padding} zero bytes a writer preallocated (it has the file open, or stopped without closing it)`,
        );
      }
    }
    console.log(parts.join("; "));
  } else printProblem(report);
  return report.ok ? 0 : 1;
}

function emitBadAnchor(format: string, file: string, message: string): number {
  const problem = { class: "bad-anchor", file, line: 0, seq: 0, message, offset: 0 };
  if (format === "json") console.log(JSON.stringify({ ok: false, problem }, null, 2));
  else console.log(`TAMPERED: bad-anchor: ${file}: ${message}`);
  return 1;
}

function printProblem(report: VerifyReport): void {
  const p = report.problem!;
  console.log(`TAMPERED: ${p.class} at ${p.file}:${p.line} (seq ${p.seq}): ${p.message}`);
}

async function loadPublicKey(spec: string): Promise<Uint8Array> {
  if (
    spec.includes("+") && !spec.includes("/") && !spec.endsWith(".json") && !spec.endsWith(".pub")
  ) {
    try {
      return parseVerifierKey(spec).publicKey;
    } catch (e) {
      throw new UsageError(`--pubkey: ${(e as Error).message}`);
    }
  }
  try {
    return (await readPublicKeyFile(spec)).publicKey;
  } catch (e) {
    // A bare base64 Ed25519 key is accepted too.
    try {
      const raw = decodeBase64(spec);
      if (raw.length === 32) return raw;
    } catch { /* not base64 either */ }
    throw new UsageError(`--pubkey: ${(e as Error).message}`);
  }
}

function help(): number {
  console.log(USAGE);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
