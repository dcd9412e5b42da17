import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { text } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { createLocalStore } from './artifact-store.ts';

describe('local artifact store', () => {
  const root = mkdtempSync(join(tmpdir(), 'posfleet-store-'));
  const store = createLocalStore(root);
  const visible = () => readdirSync(root).filter((f) => f !== '.tmp');

  it('keeps a put invisible until commit, then serves spans of it', async () => {
    const pending = await store.put('a1', (sink) =>
      pipeline(Readable.from([Buffer.from('hello '), Buffer.from('world')]), sink),
    );
    expect(pending.size).toBe(11);
    expect(visible()).toEqual([]);
    expect(await store.stat('a1')).toBeNull();
    await pending.commit();
    expect(await store.stat('a1')).toEqual({ size: 11 });
    expect(await text(await store.open('a1'))).toBe('hello world');
    expect(await text(await store.open('a1', { start: 6, end: 10 }))).toBe('world');
    await store.delete('a1');
    expect(await store.stat('a1')).toBeNull();
  });

  it('leaves nothing behind when the writer fails or the put is discarded', async () => {
    const failing = Readable.from(
      (async function* () {
        yield Buffer.from('part');
        throw new Error('client went away');
      })(),
    );
    await expect(store.put('a2', (sink) => pipeline(failing, sink))).rejects.toThrow('client went away');
    const pending = await store.put('a3', (sink) => pipeline(Readable.from([Buffer.from('x')]), sink));
    await pending.discard();
    expect(visible()).toEqual([]);
    expect(readdirSync(join(root, '.tmp'))).toEqual([]);
  });

  it('refuses keys that could leave the directory, and reports a missing payload as ENOENT', async () => {
    await expect(store.put('../evil', async () => undefined)).rejects.toThrow('invalid storage key');
    await expect(store.open('nope')).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
