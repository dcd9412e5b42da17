import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createPayloadCache } from './payload-cache.ts';

describe('payload cache', () => {
  const dir = mkdtempSync(join(tmpdir(), 'posfleet-payloads-'));
  const file = (name: string, bytes: number) => {
    const path = join(dir, name);
    writeFileSync(path, Buffer.alloc(bytes, name));
    return path;
  };

  it('reads a payload once, shares it, and drops the least recently used past its budget', async () => {
    const cache = createPayloadCache({ maxEntryBytes: 100, maxBytes: 150 });
    const a = file('a', 60),
      b = file('b', 60),
      c = file('c', 60);
    const first = await cache.get('a', a, 60)!;
    expect(await cache.get('a', a, 60)!).toBe(first); // the same Buffer, not a second read
    await cache.get('b', b, 60);
    await cache.get('a', a, 60); // a is now the most recent
    await cache.get('c', c, 60); // over 150: b goes
    expect(cache.heldBytes).toBe(120);
    writeFileSync(b, Buffer.alloc(60, 'B'));
    expect((await cache.get('b', b, 60)!)[0]).toBe('B'.charCodeAt(0)); // read afresh
  });

  it('holds nothing too large, refuses a file of the wrong size, and forgets on request', async () => {
    const cache = createPayloadCache({ maxEntryBytes: 100, maxBytes: 1_000 });
    expect(cache.get('big', file('big', 101), 101)).toBeNull();
    await expect(cache.get('short', file('short', 10), 20)!).rejects.toThrow('not 20');
    expect(cache.heldBytes).toBe(0);
    const d = file('d', 10);
    const before = await cache.get('d', d, 10)!;
    cache.forget('d');
    expect(await cache.get('d', d, 10)!).not.toBe(before);
  });
});
