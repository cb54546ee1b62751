/**
 * The evidence store: one append-only log per tenant, in the ledger's JSONL format, kept in
 * the database as chained lines (tenant, seq, line) plus the log's state (size, previous leaf
 * hash, Merkle frontier).
 *
 * Writing and chaining are two steps:
 *
 * 1. {@link appendEvidence} writes the record (time, type, actor, data) into the transaction of
 *    the state change it records, after checking that it formats as a ledger line. The record
 *    commits with the change or not at all: the log never misses a committed change and never
 *    holds one that was rolled back.
 * 2. {@link sequenceEvidence} gives pending records their place in the chain (`seq`, `prev`,
 *    Merkle leaf) under a lock on the tenant's log head, in insertion order, and deletes them
 *    from the pending records in the same transaction: a record is pending or chained, never
 *    both and never neither. On SQLite (one writer) every transaction runs it on its own
 *    records just before it commits; on PostgreSQL the store runs it in the background shortly
 *    after a commit that recorded evidence (`_sequencer.ts`), and every read of the log runs it
 *    first, so a read sees every record committed before it started.
 *
 * Keeping the head lock out of the changing transactions lets one tenant's changes commit
 * concurrently on PostgreSQL (their fsyncs are grouped) instead of one after another.
 *
 * An export is the lines in order, each followed by `\n`: exactly a ledger file, so
 * `infraveil verify ledger` verifies it.
 *
 * @module
 */
import {
  ENTRY_VERSION,
  formatOwnEntry,
  GENESIS_PREV,
  type JsonValue,
  LedgerState,
  type LedgerStateJson,
} from "@infraveil/ledger";
import { sha256Hex } from "@infraveil/trust";
import type { ControlStore, PendingEvidenceRow, StoreTx } from "./store.ts";
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

/** Most records one {@link sequenceEvidence} call chains. */
export const SEQUENCE_BATCH = 500;

/**
 * Checks that an evidence entry formats as a ledger line and returns it as a record to
 * store: the check happens in the transaction of the change, so the sequencer never meets a
 * record it cannot chain.
 *
 * @param input type, actor and data
 * @param now the time, ms
 * @returns the record (time, type, actor, data as JSON text)
 * @throws {LedgerError} `BAD_ENTRY` when the entry cannot be a ledger line
 */
export function evidenceRecord(
  input: EvidenceInput,
  now: number,
): Omit<PendingEvidenceRow, "id"> {
  const data = input.data === undefined ? null : input.data;
  // The longest seq a line can carry, so a line that fits now fits wherever it is chained.
  formatOwnEntry({
    v: ENTRY_VERSION,
    seq: Number.MAX_SAFE_INTEGER,
    ts: new Date(now).toISOString(),
    type: input.type,
    actor: input.actor,
    data,
    prev: GENESIS_PREV,
  });
  return { ts: now, type: input.type, actor: input.actor, data: JSON.stringify(data) };
}

/**
 * Records one evidence entry inside the caller's transaction; it is chained when (SQLite) or
 * after (PostgreSQL) the transaction commits.
 *
 * @param t the transaction
 * @param tenant the tenant
 * @param input type, actor and data
 * @param now the time, ms
 * @throws {LedgerError} `BAD_ENTRY` when the entry cannot be a ledger line
 */
export async function appendEvidence(
  t: StoreTx,
  tenant: string,
  input: EvidenceInput,
  now: number,
): Promise<void> {
  await t.insertPendingEvidence(tenant, evidenceRecord(input, now));
}

/**
 * Chains up to `limit` pending records of the tenant, oldest first, inside the caller's
 * transaction (which holds the log head's lock until it ends).
 *
 * @param t the transaction
 * @param tenant the tenant
 * @param limit most records to chain
 * @returns how many were chained (fewer than `limit`: none is left)
 * @throws {ControlError} `STORE` when records are pending for a tenant without a log
 */
export async function sequenceEvidence(
  t: StoreTx,
  tenant: string,
  limit: number = SEQUENCE_BATCH,
): Promise<number> {
  // Sent together: the list runs once the lock is held, so it sees every record committed
  // before, and none that another sequencer already chained.
  const [raw, rows] = await Promise.all([
    t.lockEvidenceHead(tenant),
    t.listPendingEvidence(tenant, limit),
  ]);
  if (rows.length === 0) return 0;
  if (raw === null) throw new ControlError("STORE", `Tenant ${tenant} has no evidence log`);
  const cached = t.evidenceStates?.get(tenant);
  let state = cached?.text === raw
    ? cached.state
    : LedgerState.fromJSON(JSON.parse(raw) as LedgerStateJson);
  const seq = state.size;
  const lines: string[] = [];
  for (const r of rows) {
    const at = { now: () => r.ts };
    let out;
    try {
      out = state.append(
        { type: r.type, actor: r.actor, data: JSON.parse(r.data) as JsonValue },
        at,
      );
    } catch (e) {
      // Checked at insert, so this cannot happen; were it to, the record is not dropped
      // silently: its place holds what it was and why it could not be a line.
      out = state.append({
        type: "evidence.unchainable",
        actor: "control",
        data: {
          type: r.type.slice(0, 200),
          actor: r.actor.slice(0, 200),
          data_sha256: sha256Hex(r.data),
          error: String((e as Error).message).slice(0, 300),
        },
      }, at);
    }
    lines.push(out.line);
    state = out.state;
  }
  const text = JSON.stringify(state.toJSON());
  await t.chainEvidence(tenant, seq, lines, text, rows.map((r) => r.id));
  t.evidenceStates?.set(tenant, { text, state });
  return rows.length;
}

/**
 * The tenant's evidence log head after chaining every pending record: size and `SIZE:ROOT`
 * anchor.
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
  if (raw === null) {
    const empty = LedgerState.empty();
    return { size: empty.size, anchor: empty.anchor() };
  }
  while (await sequenceEvidence(t, tenant) === SEQUENCE_BATCH) {
    // more pending records
  }
  const state = LedgerState.fromJSON(
    JSON.parse((await t.lockEvidenceHead(tenant))!) as LedgerStateJson,
  );
  return { size: state.size, anchor: state.anchor() };
}

/**
 * Chains every pending record of the tenant, one transaction per batch.
 *
 * @param store the store
 * @param tenant the tenant
 * @returns how many records were chained
 */
export async function flushEvidence(store: ControlStore, tenant: string): Promise<number> {
  let total = 0;
  for (;;) {
    const n = await store.tx((t) => sequenceEvidence(t, tenant));
    total += n;
    if (n < SEQUENCE_BATCH) return total;
  }
}

/**
 * Streams the tenant's evidence log as ledger JSONL (each line followed by `\n`), after
 * chaining every record committed before the call.
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
  await flushEvidence(store, tenant);
  for (;;) {
    const lines = await store.tx((t) => t.readEvidence(tenant, from, pageSize));
    if (lines.length === 0) return;
    yield lines.join("\n") + "\n";
    from += lines.length;
    if (lines.length < pageSize) return;
  }
}
