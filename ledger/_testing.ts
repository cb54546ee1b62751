/**
 * Test helpers: build ledgers (optionally rotated) in memory and mutate them.
 *
 * @module
 */
import { encodeHex, utf8 } from "@infraveil/trust";
import { formatEntry, GENESIS_PREV, type JsonValue, parseEntry, ROTATE_TYPE } from "./entry.ts";
import { CompactTree, hashLeaf } from "./merkle.ts";
import { LedgerState } from "./state.ts";
import type { LedgerSource } from "./verify.ts";

/** One line and the file it belongs to. */
export interface Item {
  file: string;
  text: string;
}

/** A built ledger: its lines and the state after each prefix. */
export interface Built {
  items: Item[];
  /** anchors[k] = anchor after the first k entries. */
  anchors: string[];
}

const T0 = Date.parse("2026-01-01T00:00:00Z");

/**
 * Builds a ledger of `n` entries; a new file starts at each index in `rotateAt` with a
 * rotation entry (which counts as one of the `n`).
 */
export function buildLedger(n: number, rotateAt: readonly number[] = []): Built {
  let state = LedgerState.empty();
  const items: Item[] = [];
  const anchors = [state.anchor()];
  let fileNo = 1;
  let file = `audit-${fileNo}.jsonl`;
  for (let i = 0; i < n; i++) {
    const now = () => T0 + i * 1000;
    let out;
    if (rotateAt.includes(i)) {
      const previous = state.rotationReference({ file });
      fileNo++;
      file = `audit-${fileNo}.jsonl`;
      out = state.append(
        { type: ROTATE_TYPE, data: { previous: previous as unknown as JsonValue } },
        { now, actor: "ledger" },
      );
    } else {
      out = state.append({
        type: i % 3 === 0 ? "action.execute" : "proxy.request",
        data: { i, service: "api", status: i % 5 === 0 ? "denied" : "ok", path: `/v1/items/${i}` },
      }, { now, actor: `agent:web-${i % 3}` });
    }
    items.push({ file, text: out.line });
    state = out.state;
    anchors.push(state.anchor());
  }
  return { items, anchors };
}

/**
 * Rewrites every line with fresh prev hashes and rotation references, keeping each entry's
 * own seq: what an attacker who edits or deletes entries and recomputes the chain produces.
 */
export function rechain(items: readonly Item[]): Item[] {
  const tree = new CompactTree();
  let prev = GENESIS_PREV;
  let prevFile = "";
  return items.map((it) => {
    const entry = parseEntry(it.text);
    if (entry.type === ROTATE_TYPE) {
      entry.data = {
        previous: {
          size: tree.size,
          root: encodeHex(tree.root()),
          frontier: tree.frontier.map(encodeHex),
          file: prevFile,
        },
      };
    }
    entry.prev = prev;
    const line = formatEntry(entry);
    const h = hashLeaf(utf8(line));
    tree.append(h);
    prev = encodeHex(h);
    prevFile = it.file;
    return { file: it.file, text: line };
  });
}

/** The verifier's inputs for items, grouped by file in order. */
export function sources(items: readonly Item[], tail = "\n"): LedgerSource[] {
  const out: { name: string; lines: string[] }[] = [];
  for (const it of items) {
    if (out.length === 0 || out[out.length - 1].name !== it.file) {
      out.push({ name: it.file, lines: [] });
    }
    out[out.length - 1].lines.push(it.text);
  }
  const enc = new TextEncoder();
  return out.map((f, i) => ({
    name: f.name,
    data: enc.encode(f.lines.join("\n") + (i === out.length - 1 ? tail : "\n")),
  }));
}

/** 1-based line number of item `index` within its file. */
export function lineOf(items: readonly Item[], index: number): { file: string; line: number } {
  const file = items[index].file;
  let line = 0;
  for (let i = 0; i <= index; i++) if (items[i].file === file) line++;
  return { file, line };
}
