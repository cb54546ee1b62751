/**
 * The ledger worker: the only holder of the ledger file. It runs with read and write access to
 * the ledger's directory and nothing else (no network, environment, subprocesses or other
 * files). The supervisor sends it entries; it appends them durably and reports the head.
 *
 * Requests (`{type, id, …}`, answered by `{type: "reply", id, ok, result | code, message}`):
 * `open {path, actor, mode}`, `append {entries}` → `[{seq, leafHash}]`, `head` → `{size, root,
 * anchor}`, `consistency {size1}` → `{size, root, proof}` (RFC 9162, hex hashes, from `size1`
 * to the head), `ping`, `probe {probe}` (the sandbox self-test) and `close`.
 *
 * It keeps the Merkle tree of the file in memory (32 bytes per entry), built once when the
 * ledger is opened and extended on every append, so consistency proofs cost no file reads.
 *
 * @module
 */
import {
  type AppendInput,
  formatAnchor,
  hashLeaf,
  type LedgerWriter,
  MerkleTree,
  openLedger,
} from "@infraveil/ledger";
import { decodeHex, encodeHex } from "@infraveil/trust";
import { runSandboxProbe, type SandboxProbe } from "./_sandbox_probe.ts";
import { inWorker, type RpcScope, serveRequests } from "./_worker_protocol.ts";

/** The ledger head as the worker reports it. */
export interface LedgerHead {
  /** Number of entries. */
  size: number;
  /** Root, lowercase hex. */
  root: string;
  /** `SIZE:ROOTHEX`. */
  anchor: string;
}

function headOf(writer: LedgerWriter): LedgerHead {
  const head = writer.head();
  return { size: head.size, root: encodeHex(head.root), anchor: formatAnchor(head) };
}

/** The Merkle tree of the first `size` lines of a ledger file (after recovery). */
async function treeOf(path: string, size: number): Promise<MerkleTree> {
  const tree = new MerkleTree();
  const bytes = await Deno.readFile(path);
  let start = 0;
  while (tree.size < size) {
    const end = bytes.indexOf(0x0a, start);
    if (end === -1) break;
    tree.append(hashLeaf(bytes.subarray(start, end)));
    start = end + 1;
  }
  return tree;
}

/**
 * Installs the ledger worker's request handlers on a worker scope.
 *
 * @param scope the worker's global scope
 */
export function runLedgerWorker(scope: RpcScope): void {
  let writer: LedgerWriter | undefined;
  let tree = new MerkleTree();
  const open = (): LedgerWriter => {
    if (!writer) throw Object.assign(new Error("ledger not open"), { code: "NOT_OPEN" });
    return writer;
  };
  serveRequests(scope, {
    open: async (r) => {
      if (writer) return headOf(writer);
      writer = await openLedger(r.path as string, {
        actor: r.actor as string,
        mode: r.mode as "fsync" | "group",
      });
      tree = await treeOf(r.path as string, writer.head().size);
      return { ...headOf(writer), recovered: writer.recovered };
    },
    append: async (r) => {
      const w = open();
      const out = await Promise.all(
        (r.entries as AppendInput[]).map((entry) => w.append(entry)),
      );
      for (const { leafHash } of out) tree.append(decodeHex(leafHash));
      return out.map(({ seq, leafHash }) => ({ seq, leafHash }));
    },
    head: () => headOf(open()),
    consistency: (r) => {
      const head = headOf(open());
      const size1 = r.size1 as number;
      if (tree.size !== head.size || encodeHex(tree.root()) !== head.root) {
        throw Object.assign(new Error("the in-memory tree does not match the ledger head"), {
          code: "TREE_MISMATCH",
        });
      }
      const proof = size1 > 0 && size1 < head.size
        ? tree.consistencyProof(size1, head.size).map(encodeHex)
        : [];
      return { ...head, proof };
    },
    ping: () => "pong",
    probe: (r) => runSandboxProbe(r.probe as SandboxProbe),
    close: async () => {
      await writer?.close();
      writer = undefined;
      return null;
    },
  });
}

if (inWorker()) runLedgerWorker(globalThis as unknown as RpcScope);
