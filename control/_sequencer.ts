/**
 * Runs the evidence sequencer in the background for one PostgreSQL store: after a transaction
 * that recorded evidence commits, the store kicks the tenant; a short delay later one run
 * chains every pending record of the tenant (the delay lets one run chain the records of many
 * commits). One run per tenant at a time; a kick during a run schedules another, so every
 * record committed before a kick is chained by a run that starts after it. Nothing is lost
 * when a run fails or the process stops: the records stay pending, and the next run (after
 * the tenant's next change) or any read of the log (which chains first) takes them.
 *
 * @module
 */
import { flushEvidence } from "./evidence.ts";
import type { ControlStore } from "./store.ts";

/** The background evidence sequencer of one store. */
export class EvidenceSequencer {
  readonly #store: Pick<ControlStore, "tx">;
  readonly #delayMs: number;
  readonly #timers = new Map<string, ReturnType<typeof setTimeout>>();
  readonly #running = new Map<string, Promise<void>>();
  #closed = false;

  /**
   * @param store the store whose transactions chain the records
   * @param delayMs how long to wait after a kick before chaining
   */
  constructor(store: Pick<ControlStore, "tx">, delayMs: number) {
    this.#store = store;
    this.#delayMs = delayMs;
  }

  /**
   * Asks for the tenant's pending evidence to be chained soon.
   *
   * @param tenant the tenant
   */
  kick(tenant: string): void {
    if (this.#closed || this.#timers.has(tenant)) return;
    this.#timers.set(
      tenant,
      setTimeout(() => {
        this.#timers.delete(tenant);
        this.#start(tenant);
      }, this.#delayMs),
    );
  }

  #start(tenant: string): void {
    const prev = this.#running.get(tenant) ?? Promise.resolve();
    const run = prev.then(() => this.#run(tenant));
    this.#running.set(tenant, run);
    run.finally(() => {
      if (this.#running.get(tenant) === run) this.#running.delete(tenant);
    });
  }

  async #run(tenant: string): Promise<void> {
    try {
      await flushEvidence(this.#store as ControlStore, tenant);
    } catch (e) {
      console.error(
        `control: cannot chain the evidence of tenant ${tenant} now; it stays pending and is chained by the next run`,
        e,
      );
    }
  }

  /**
   * Stops taking kicks, chains what was kicked, and waits for the runs under way.
   */
  async close(): Promise<void> {
    this.#closed = true;
    for (const [tenant, timer] of this.#timers) {
      clearTimeout(timer);
      this.#start(tenant);
    }
    this.#timers.clear();
    while (this.#running.size > 0) await Promise.all(this.#running.values());
  }
}
