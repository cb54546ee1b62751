/**
 * Per-client token-bucket rate limiting. Buckets live in a bounded map; when it is full, the
 * oldest bucket is dropped (a dropped client simply starts with a full bucket again).
 *
 * @module
 */

/** Token-bucket settings. */
export interface RateLimitOptions {
  /** Tokens added per second. */
  requestsPerSecond: number;
  /** Bucket capacity (the burst a client may send at once). */
  burst: number;
  /** Most clients tracked at once. */
  maxClients?: number;
  /** Clock in milliseconds. */
  now?: () => number;
}

/** Outcome of one take. */
export interface RateDecision {
  /** Whether the request may proceed. */
  allowed: boolean;
  /** Seconds until a token is available (when not allowed). */
  retryAfter: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** A token bucket per client key. */
export class RateLimiter {
  readonly #rate: number;
  readonly #burst: number;
  readonly #max: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, Bucket>();

  /**
   * Creates a limiter.
   *
   * @param options Rate, burst, capacity and clock.
   */
  constructor(options: RateLimitOptions) {
    this.#rate = options.requestsPerSecond;
    this.#burst = options.burst;
    this.#max = options.maxClients ?? 100_000;
    this.#now = options.now ?? Date.now;
  }

  /** Takes one token for `key`. */
  take(key: string): RateDecision {
    const now = this.#now();
    let b = this.#buckets.get(key);
    if (b === undefined) {
      if (this.#buckets.size >= this.#max) {
        const oldest = this.#buckets.keys().next().value;
        if (oldest !== undefined) this.#buckets.delete(oldest);
      }
      b = { tokens: this.#burst, at: now };
    } else {
      // Re-insert so map order approximates least-recently used.
      this.#buckets.delete(key);
      const elapsed = Math.max(0, now - b.at) / 1000;
      b.tokens = Math.min(this.#burst, b.tokens + elapsed * this.#rate);
      b.at = now;
    }
    this.#buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { allowed: true, retryAfter: 0 };
    }
    const wait = this.#rate > 0 ? (1 - b.tokens) / this.#rate : 3600;
    return { allowed: false, retryAfter: Math.max(1, Math.ceil(wait)) };
  }

  /** Number of tracked clients. */
  get size(): number {
    return this.#buckets.size;
  }
}
