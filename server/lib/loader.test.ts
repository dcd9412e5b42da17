import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLoader } from './loader.ts';

describe('createLoader', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  function squares() {
    const calls: number[][] = [];
    const loader = createLoader(
      async (keys: number[]) => {
        calls.push(keys);
        return new Map(keys.filter((k) => k >= 0).map((k) => [k, k * k]));
      },
      { maxDelayMs: 5, maxKeys: 3 },
    );
    return { calls, loader };
  }

  it('answers the keys of a few ms with one fetch of distinct keys', async () => {
    vi.useFakeTimers();
    const { calls, loader } = squares();
    const all = Promise.all([loader.load(2), loader.load(2), loader.load(-1)]);
    expect(calls).toEqual([]); // waits for company
    await vi.advanceTimersByTimeAsync(5);
    expect(await all).toEqual([4, 4, undefined]);
    expect(calls).toEqual([[2, -1]]);
  });

  it('fetches at once when a batch is full, and starts a new batch after', async () => {
    vi.useFakeTimers();
    const { calls, loader } = squares();
    const full = Promise.all([1, 2, 3].map((k) => loader.load(k)));
    const next = loader.load(4);
    expect(await full).toEqual([1, 4, 9]);
    expect(calls).toEqual([[1, 2, 3]]);
    await vi.advanceTimersByTimeAsync(5);
    expect(await next).toBe(16);
    expect(calls).toEqual([[1, 2, 3], [4]]);
  });

  it('rejects every waiter of a failed batch and keeps working', async () => {
    let fail = true;
    const loader = createLoader(
      async (keys: string[]) => {
        if (fail) throw new Error('db down');
        return new Map(keys.map((k) => [k, k.toUpperCase()]));
      },
      { maxDelayMs: 1 },
    );
    const failed = [loader.load('a'), loader.load('b'), loader.load('a')].map((p) =>
      p.then(
        () => 'ok',
        (err: Error) => err.message,
      ),
    );
    expect(await Promise.all(failed)).toEqual(['db down', 'db down', 'db down']);
    fail = false;
    expect(await loader.load('c')).toBe('C');
  });

  it('rejects the batch when fetchMany throws before returning a promise', async () => {
    const loader = createLoader<string, string>(
      () => {
        throw new Error('bad keys');
      },
      { maxDelayMs: 1 },
    );
    await expect(loader.load('x')).rejects.toThrow('bad keys');
  });
});
