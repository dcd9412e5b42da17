// Group commit: items are collected and written together; each `add` resolves
// once the batch holding it is durable. One write per batch, not per item.
// Flushes must be idempotent: a failed batch is retried (transient errors) or
// split into single items (other errors) so that only a bad item fails.
export interface BatcherOptions<T> {
  maxItems: number;
  maxDelayMs: number;
  flush: (items: T[]) => Promise<void>;
  /** Batches written at the same time; more than 1 only on a real pool. */
  concurrency?: number;
  /** Errors worth one more try of the same (idempotent) batch, such as a deadlock. */
  retryable?: (err: unknown) => boolean;
}

interface Pending<T> {
  item: T;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class Batcher<T> {
  #queue: Pending<T>[] = [];
  #timer: NodeJS.Timeout | undefined;
  #running = 0;
  #idle: (() => void)[] = [];
  #closed = false;
  constructor(private readonly opts: BatcherOptions<T>) {}

  get pending(): number {
    return this.#queue.length;
  }

  add(item: T): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('batcher is closed'));
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      this.#schedule();
    });
  }

  /** Queues many items; resolves once all are durable, rejects with the first failure. One promise for all. */
  addMany(items: readonly T[]): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('batcher is closed'));
    if (items.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      let left = items.length;
      const done = () => {
        if (--left === 0) resolve();
      };
      for (const item of items) this.#queue.push({ item, resolve: done, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#running >= (this.opts.concurrency ?? 1)) return;
    if (this.#queue.length >= this.opts.maxItems) {
      this.#clearTimer();
      void this.#run();
    } else if (!this.#timer && this.#queue.length > 0) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        void this.#run();
      }, this.opts.maxDelayMs);
    }
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #run(): Promise<void> {
    const batch = this.#queue.splice(0, this.opts.maxItems);
    if (batch.length === 0) return this.#settleIdle();
    this.#running++;
    try {
      await this.#write(batch.map((p) => p.item));
      for (const p of batch) p.resolve();
    } catch (err) {
      if (batch.length === 1 || this.opts.retryable?.(err)) for (const p of batch) p.reject(err);
      // One bad item (say a string the database refuses) must not fail its
      // batch-mates on every resend: write them one by one, so only it fails.
      else for (const p of batch) await this.#write([p.item]).then(p.resolve, p.reject);
    } finally {
      this.#running--;
      // While a batch was being written more items queued: write them at once.
      if (this.#queue.length > 0) {
        this.#clearTimer();
        void this.#run();
      } else this.#settleIdle();
    }
  }

  async #write(items: T[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.opts.flush(items);
      } catch (err) {
        if (attempt >= 3 || !this.opts.retryable?.(err)) throw err;
      }
    }
  }

  #settleIdle(): void {
    if (this.#running === 0 && this.#queue.length === 0) for (const done of this.#idle.splice(0)) done();
  }

  /** Writes everything queued and waits for batches in flight. */
  async drain(): Promise<void> {
    this.#clearTimer();
    if (this.#queue.length > 0 && this.#running === 0) void this.#run();
    if (this.#running === 0 && this.#queue.length === 0) return;
    await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  async close(): Promise<void> {
    await this.drain();
    this.#closed = true;
  }
}

/**
 * Splits items into rounds in which no key appears twice, each key's items in
 * arrival order: round k holds every key's k-th item. Statements of one round
 * touch distinct rows, so applying the rounds in turn is the order of arrival.
 */
export function inRounds<T>(items: readonly T[], key: (item: T) => string): T[][] {
  const seen = new Map<string, number>();
  const rounds: T[][] = [];
  for (const item of items) {
    const k = key(item);
    const n = seen.get(k) ?? 0;
    seen.set(k, n + 1);
    (rounds[n] ??= []).push(item);
  }
  return rounds;
}
