/**
 * Tamper-evident audit ledger: append-only JSONL entries chained by hash, an RFC 6962
 * Merkle tree with inclusion and consistency proofs, C2SP signed checkpoints and an offline
 * verifier that names the first broken line.
 *
 * - {@link openLedger}: the durable file writer (fsync per entry or group commit, one writer
 *   per file, torn-line quarantine on open, rotation).
 * - {@link LedgerState} and {@link formatEntry}: the same lines from any storage (e.g. a
 *   database), so an export verifies like a file.
 * - {@link MerkleTree}, {@link verifyInclusion}, {@link verifyConsistency}: RFC 9162 proofs.
 * - {@link signCheckpoint}, {@link verifyCheckpoint}, {@link cosignNote}: checkpoints.
 * - {@link verifyLedger}: the streaming verifier.
 *
 * This package never trusts a line before its hash chain is checked, and never drops data:
 * a torn line is moved to a quarantine file, not deleted.
 *
 * @example
 * ```ts
 * import { LedgerState, parseAnchor, verifyLedger } from "@infraveil/ledger";
 * let state = LedgerState.empty();
 * const lines: string[] = [];
 * for (const type of ["boot", "action.execute"]) {
 *   const out = state.append({ type, actor: "agent:web-1", data: {} });
 *   lines.push(out.line);
 *   state = out.state;
 * }
 * const data = new TextEncoder().encode(lines.join("\n") + "\n");
 * const report = await verifyLedger([{ name: "audit.jsonl", data }], {
 *   head: parseAnchor(state.anchor()),
 * });
 * if (!report.ok) throw new Error(report.problem?.message);
 * ```
 *
 * @module
 */
export * from "./error.ts";
export * from "./anchor.ts";
export * from "./entry.ts";
export * from "./merkle.ts";
export * from "./state.ts";
export * from "./checkpoint.ts";
export * from "./verify.ts";
export * from "./writer.ts";
export * from "./files.ts";
