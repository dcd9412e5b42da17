import { describe, expect, it } from 'vitest';
import { Batcher } from './batcher.ts';
import { decodeCursor, encodeCursor, pageOf } from './cursor.ts';
import { hashSecret, newSecret, secretMatches } from './secrets.ts';
import { newId } from './ids.ts';
import { loadConfig } from '../config.ts';

describe('Batcher', () => {
  it('writes many adds in few batches and resolves each after its batch', async () => {
    const batches: number[][] = [];
    const b = new Batcher<number>({ maxItems: 10, maxDelayMs: 5, flush: async (items) => void batches.push(items) });
    await Promise.all(Array.from({ length: 25 }, (_, i) => b.add(i)));
    expect(batches.flat()).toEqual(Array.from({ length: 25 }, (_, i) => i));
    expect(batches.length).toBeLessThanOrEqual(4);
  });
  it('rejects every item of a failed batch and keeps working', async () => {
    let fail = true;
    const b = new Batcher<number>({
      maxItems: 2,
      maxDelayMs: 1,
      flush: async () => {
        if (fail) throw new Error('db down');
      },
    });
    await expect(Promise.all([b.add(1), b.add(2)])).rejects.toThrow('db down');
    fail = false;
    await expect(b.add(3)).resolves.toBeUndefined();
  });
  it('fails only the bad item of a batch, writing its batch-mates one by one', async () => {
    const written: number[] = [];
    const b = new Batcher<number>({
      maxItems: 10,
      maxDelayMs: 1,
      flush: async (items) => {
        if (items.includes(13)) throw new Error('refused: 13');
        written.push(...items);
      },
    });
    const results = await Promise.allSettled([1, 13, 2].map((i) => b.add(i)));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(written).toEqual([1, 2]);
  });
  it('tries a batch again when the error says it may (a deadlock)', async () => {
    let calls = 0;
    const b = new Batcher<number>({
      maxItems: 10,
      maxDelayMs: 1,
      retryable: (err) => (err as Error).message === 'deadlock',
      flush: async () => {
        if (++calls === 1) throw new Error('deadlock');
      },
    });
    await expect(b.add(1)).resolves.toBeUndefined();
    expect(calls).toBe(2);
  });
  it('drains what is queued and refuses adds once closed', async () => {
    const seen: number[] = [];
    const b = new Batcher<number>({
      maxItems: 100,
      maxDelayMs: 10_000,
      flush: async (items) => void seen.push(...items),
    });
    const p = b.add(1);
    await b.close();
    await p;
    expect(seen).toEqual([1]);
    await expect(b.add(2)).rejects.toThrow('closed');
  });
});

describe('cursors', () => {
  it('round-trips and refuses forged cursors', () => {
    expect(decodeCursor(encodeCursor('dev_123'))).toBe('dev_123');
    expect(decodeCursor(undefined)).toBeNull();
    expect(() => decodeCursor('!!not-base64!!')).toThrow();
    const { rows, nextCursor } = pageOf([1, 2, 3], 2, String);
    expect(rows).toEqual([1, 2]);
    expect(decodeCursor(nextCursor!)).toBe('2');
  });
});

describe('secrets and ids', () => {
  it('matches only the right secret against its hash', () => {
    const s = newSecret('pfk');
    expect(secretMatches(s, hashSecret(s))).toBe(true);
    expect(secretMatches(`${s}x`, hashSecret(s))).toBe(false);
    expect(secretMatches(s, null)).toBe(false);
  });
  it('makes time-ordered ids', () => {
    expect(newId('dev', 1000) < newId('dev', 2000)).toBe(true);
    expect(newId('dev')).toMatch(/^dev_[0-9a-z]{22}$/);
  });
});

describe('config', () => {
  it('has the documented defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      port: 8080,
      mqttPort: 1883,
      host: '0.0.0.0',
      dataDir: './data',
      databaseUrl: undefined,
      logLevel: 'info',
      hooksAllowPrivate: false,
      publicUrl: 'http://localhost:8080',
    });
    expect(Object.isFrozen(c)).toBe(true);
  });
  it('names the bad setting in one line', () => {
    expect(() => loadConfig({ MQTT_PORT: '70000' })).toThrow(/^invalid setting MQTT_PORT="70000"/);
    expect(() => loadConfig({ DATABASE_URL: 'mysql://x' })).toThrow(/DATABASE_URL/);
    expect(() => loadConfig({ LOG_LEVEL: 'loud' })).toThrow(/LOG_LEVEL/);
    expect(() => loadConfig({ HOOKS_ALLOW_PRIVATE: 'maybe' })).toThrow(/HOOKS_ALLOW_PRIVATE/);
  });
  it('never prints a secret in its refusal', () => {
    expect(() => loadConfig({ POSFLEET_ADMIN_TOKEN: 'short-secret' })).toThrow(/POSFLEET_ADMIN_TOKEN=\(hidden\)/);
    expect(() => loadConfig({ URL_SIGNING_SECRET: 'tiny' })).toThrow(/URL_SIGNING_SECRET=\(hidden\)/);
    expect(() => loadConfig({ DATABASE_URL: 'mysql://app:hunter2@db/x' })).toThrow(
      'DATABASE_URL="mysql://app:***@db/x"',
    );
  });
});
