/**
 * The evidence store: one append-only log per tenant, in the ledger's JSONL format, kept in
 * the database as rows (tenant, seq, line) plus the log's state (size, previous leaf hash,
 * Merkle frontier).
 *
 * Every append happens inside the transaction of the state change it records and locks the
 * tenant's log head, so the log never misses a committed change and never records one that
 * was rolled back. An export is the lines in order, each followed by `\n`: exactly a ledger
 * file, so `infraveil verify ledger` verifies it.
 *
 * @module
 */
import { type JsonValue, LedgerState, type LedgerStateJson } from "@infraveil/ledger";
import type { ControlStore, StoreTx } from "./store.ts";
import { ControlError } from "./error.ts";

/** One evidence record to append. */
export interface EvidenceInput {
  /** What happened, e.g. `request.decision`. */
  type: string;
  /** Who did it, e.g. `user:alice@example.com`, `mcp:claude`, `control`. */
  actor: string;
  /** Details. */
  data: JsonValue;
}

/**
 * Appends one record to the tenant's evidence log inside the caller's transaction.
 *
 * @param t the transaction
 * @param tenant the tenant
 * @param input type, actor and data
 * @param now the time, ms
 * @returns the record's sequence number
 * @throws {ControlError} `STORE` when the tenant has no log
 */
export async function appendEvidence(
  t: StoreTx,
  tenant: string,
  input: EvidenceInput,
  now: number,
): Promise<number> {
  const raw = await t.lockEvidenceHead(tenant);
  if (raw === null) throw new ControlError("STORE", `Tenant ${tenant} has no evidence log`);
  const state = LedgerState.fromJSON(JSON.parse(raw) as LedgerStateJson);
  const out = state.append(input, { now: () => now });
  await t.appendEvidence(tenant, out.entry.seq, out.line, JSON.stringify(out.state.toJSON()));
  return out.entry.seq;
}

/**
 * The tenant's evidence log head: size and `SIZE:ROOT` anchor.
 *
 * @param t the transaction
 * @param tenant the tenant
 * @returns size and anchor
 */
export async function evidenceHead(
  t: StoreTx,
  tenant: string,
): Promise<{ size: number; anchor: string }> {
  const raw = await t.lockEvidenceHead(tenant);
  const state = raw === null
    ? LedgerState.empty()
    : LedgerState.fromJSON(JSON.parse(raw) as LedgerStateJson);
  return { size: state.size, anchor: state.anchor() };
}

/**
 * Streams the tenant's evidence log as ledger JSONL (each line followed by `\n`).
 *
 * @param store the store
 * @param tenant the tenant
 * @param options first sequence number and page size
 * @returns chunks of text
 */
export async function* exportEvidence(
  store: ControlStore,
  tenant: string,
  options: { from?: number; pageSize?: number } = {},
): AsyncGenerator<string> {
  const { pageSize = 5000 } = options;
  let from = options.from ?? 0;
  for (;;) {
    const lines = await store.tx((t) => t.readEvidence(tenant, from, pageSize));
    if (lines.length === 0) return;
    yield lines.join("\n") + "\n";
    from += lines.length;
    if (lines.length < pageSize) return;
  }
}
