/**
 * The outbox: what the agent must report to the control plane (action results, trace and
 * finding batches), persisted in `stateDir/outbox/` one file per item so that
 * nothing is lost while the control plane is unreachable or the agent restarts. Items are sent
 * in order; a failure stops the round and the next one waits with exponential backoff.
 *
 * Trace and finding batches are bounded (`maxBatches`): when full, the oldest of them are
 * dropped and counted. Results are never dropped.
 *
 * @module
 */
import type { BackoffConfig } from "./agent_config.ts";
import { AgentError } from "./error.ts";

/** Kinds of queued items. */
export type OutboxKind = "result" | "traces" | "findings" | "approval";

/** One queued item. */
export interface OutboxItem {
  /** Its file name (orders the queue). */
  id: string;
  /** What it is. */
  kind: OutboxKind;
  /** What to send. */
  body: unknown;
  /** When queued, ms. */
  queuedAt: number;
}

/** What a delivery round did. */
export interface DrainResult {
  /** Items delivered. */
  sent: number;
  /** Items the control plane refused for good (dropped, reported through `onRejected`). */
  rejected: number;
  /** Whether the round stopped at an item that could not be delivered. */
  blocked: boolean;
}

/** Options of {@link openOutbox}. */
export interface OutboxOptions {
  /** Most trace and finding batches kept. */
  maxBatches: number;
  /** The queue's directory name in the state directory (default `outbox`). */
  name?: string;
  /** Clock, ms. */
  now?: () => number;
}

/** The persisted queue. */
export interface Outbox {
  /** Queues an item durably. */
  enqueue(kind: OutboxKind, body: unknown): Promise<void>;
  /** Items waiting, oldest first. */
  pending(): readonly OutboxItem[];
  /** Batches dropped because the queue was full. */
  dropped(): number;
  /**
   * Sends the waiting items in order until one fails.
   *
   * @param send delivers one item; throws `CONTROL_REJECTED` for a permanent refusal
   * @param onRejected told about each item dropped after a permanent refusal
   */
  drain(
    send: (item: OutboxItem) => Promise<void>,
    onRejected?: (item: OutboxItem, error: AgentError) => Promise<void>,
  ): Promise<DrainResult>;
}

const BATCH_KINDS: OutboxKind[] = ["traces", "findings"];

/**
 * Opens (and loads) the outbox in `stateDir/outbox/` (or another queue, e.g. the inbox of
 * fetched approvals, in `stateDir/<name>/`).
 *
 * @param stateDir the agent's state directory
 * @param options bound and clock
 * @returns the outbox
 */
export async function openOutbox(stateDir: string, options: OutboxOptions): Promise<Outbox> {
  const { maxBatches, now = Date.now, name = "outbox" } = options;
  const dir = `${stateDir}/${name}`;
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const items: OutboxItem[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (!e.isFile || !e.name.endsWith(".json")) continue;
    const text = await Deno.readTextFile(`${dir}/${e.name}`);
    let item: OutboxItem;
    try {
      item = JSON.parse(text);
    } catch {
      // A torn write from a crash: the rename never happened, so this cannot be a real item.
      continue;
    }
    items.push({ ...item, id: e.name });
  }
  items.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  let seq = items.length > 0 ? Number(items.at(-1)!.id.slice(0, 16)) + 1 : 0;
  let dropped = 0;
  let chain: Promise<unknown> = Promise.resolve();

  const remove = async (item: OutboxItem) => {
    const i = items.indexOf(item);
    if (i !== -1) items.splice(i, 1);
    await Deno.remove(`${dir}/${item.id}`).catch(() => {});
  };

  return {
    enqueue(kind, body) {
      const run = async () => {
        const id = `${String(seq++).padStart(16, "0")}-${kind}.json`;
        const item: OutboxItem = { id, kind, body, queuedAt: now() };
        const tmp = `${dir}/.${id}.tmp`;
        const file = await Deno.open(tmp, { write: true, createNew: true, mode: 0o600 });
        try {
          const bytes = new TextEncoder().encode(JSON.stringify(item));
          let at = 0;
          while (at < bytes.length) at += await file.write(bytes.subarray(at));
          await file.syncData();
        } finally {
          file.close();
        }
        await Deno.rename(tmp, `${dir}/${id}`);
        items.push(item);
        const batches = items.filter((x) => BATCH_KINDS.includes(x.kind));
        for (const old of batches.slice(0, Math.max(0, batches.length - maxBatches))) {
          dropped++;
          await remove(old);
        }
      };
      const p = chain.then(run);
      chain = p.catch(() => {});
      return p;
    },
    pending: () => items,
    dropped: () => dropped,
    async drain(send, onRejected) {
      let sent = 0;
      let rejected = 0;
      for (const item of [...items]) {
        if (!items.includes(item)) continue; // dropped meanwhile
        try {
          await send(item);
          sent++;
        } catch (e) {
          if (e instanceof AgentError && e.code === "CONTROL_REJECTED") {
            rejected++;
            await onRejected?.(item, e);
          } else {
            return { sent, rejected, blocked: true };
          }
        }
        await remove(item);
      }
      return { sent, rejected, blocked: false };
    },
  };
}

/**
 * The delay before retry `attempt` (from 0): `initial · 2^attempt`, capped at `max`.
 *
 * @param attempt consecutive failures so far, minus one
 * @param backoff the settings
 * @returns the delay, ms
 */
export function backoffDelay(attempt: number, backoff: BackoffConfig): number {
  return Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.min(attempt, 30));
}
