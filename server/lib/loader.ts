// Coalescing loader: lookups by key made within a few ms of each other are
// answered by one `fetchMany` call, so a fleet reconnecting at once costs a few
// queries, not one per terminal. Nothing is cached: every batch reads afresh.
export interface LoaderOptions {
  /** How long the first key of a batch waits for company. */
  maxDelayMs?: number;
  /** A batch this large is fetched at once. */
  maxKeys?: number;
}

export interface Loader<K, V> {
  /** The value of `key`, undefined when `fetchMany` did not return it. */
  load(key: K): Promise<V | undefined>;
}

interface Waiter<V> {
  resolve: (value: V | undefined) => void;
  reject: (err: unknown) => void;
}

export function createLoader<K, V>(
  fetchMany: (keys: K[]) => Promise<Map<K, V>>,
  opts: LoaderOptions = {},
): Loader<K, V> {
  const maxDelayMs = opts.maxDelayMs ?? 5;
  const maxKeys = opts.maxKeys ?? 1_000;
  let pending = new Map<K, Waiter<V>[]>();
  let timer: NodeJS.Timeout | undefined;

  function fetchPending(): void {
    if (timer) clearTimeout(timer);
    timer = undefined;
    const batch = pending;
    pending = new Map();
    // Promise.resolve().then: a fetchMany that throws synchronously still rejects only its waiters.
    Promise.resolve()
      .then(() => fetchMany([...batch.keys()]))
      .then(
        (found) => {
          for (const [key, waiters] of batch) for (const w of waiters) w.resolve(found.get(key));
        },
        (err: unknown) => {
          for (const waiters of batch.values()) for (const w of waiters) w.reject(err);
        },
      );
  }

  function load(key: K): Promise<V | undefined> {
    return new Promise((resolve, reject) => {
      const waiters = pending.get(key);
      if (waiters) waiters.push({ resolve, reject });
      else pending.set(key, [{ resolve, reject }]);
      if (pending.size >= maxKeys) fetchPending();
      else timer ??= setTimeout(fetchPending, maxDelayMs);
    });
  }

  return { load };
}

/** Rows grouped by a key, in their order: what a `fetchMany` of many rows per key returns. */
export function groupBy<K, T>(rows: readonly T[], key: (row: T) => K): Map<K, T[]> {
  const out = new Map<K, T[]>();
  for (const row of rows) {
    const group = out.get(key(row));
    if (group) group.push(row);
    else out.set(key(row), [row]);
  }
  return out;
}
