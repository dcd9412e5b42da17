import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { checkPublish, checkSubscribe, isAcceptableClientId } from './acl.ts';
import { PacketSizeGuard } from './size-guard.ts';

describe('topic ACL', () => {
  it('lets a terminal publish only to its own uplink topics', () => {
    expect(checkPublish('dev_a1', 'fleet/dev_a1/heartbeat')).toEqual({ ok: true, kind: 'heartbeat' });
    expect(checkPublish('dev_a1', 'fleet/dev_b1/heartbeat')).toEqual({ ok: false, reason: 'other_device' });
    expect(checkPublish('dev_a1', 'fleet/dev_a1/cmd')).toEqual({ ok: false, reason: 'not_uplink' });
    expect(checkPublish('dev_a1', 'other/dev_a1/heartbeat')).toEqual({ ok: false, reason: 'foreign_topic' });
    expect(checkPublish('dev_a1', 'fleet/dev_a1/heartbeat/extra')).toEqual({ ok: false, reason: 'foreign_topic' });
  });
  it('lets a terminal subscribe only to its own downlink topics, no wildcards', () => {
    expect(checkSubscribe('dev_a1', 'fleet/dev_a1/cmd').ok).toBe(true);
    expect(checkSubscribe('dev_a1', 'fleet/dev_a1/config').ok).toBe(true);
    expect(checkSubscribe('dev_a1', 'fleet/dev_a1/+').ok).toBe(false);
    expect(checkSubscribe('dev_a1', 'fleet/+/cmd').ok).toBe(false);
    expect(checkSubscribe('dev_a1', '#').ok).toBe(false);
    expect(checkSubscribe('dev_a1', 'fleet/dev_a1/heartbeat').ok).toBe(false);
  });
  it('accepts only device-id shaped client ids', () => {
    expect(isAcceptableClientId('dev_01abc')).toBe(true);
    for (const bad of ['a/b', 'a+b', 'a#', '$SYS', '', 'ab', 'x'.repeat(65)]) expect(isAcceptableClientId(bad)).toBe(false);
  });
});

function run(guard: PacketSizeGuard, chunks: Buffer[]): Promise<{ out: Buffer; error?: Error }> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    const sink = new PassThrough();
    guard.on('data', (d: Buffer) => parts.push(d));
    guard.on('error', (error) => resolve({ out: Buffer.concat(parts), error }));
    guard.on('end', () => resolve({ out: Buffer.concat(parts) }));
    sink.pipe(guard);
    for (const c of chunks) sink.write(c);
    sink.end();
  });
}

describe('packet size guard', () => {
  const packet = (len: number) => {
    const lenBytes: number[] = [];
    let x = len;
    do {
      let b = x % 128;
      x = Math.floor(x / 128);
      if (x > 0) b |= 0x80;
      lenBytes.push(b);
    } while (x > 0);
    return Buffer.concat([Buffer.from([0x30, ...lenBytes]), Buffer.alloc(len, 7)]);
  };

  it('passes packets at or under the limit through unchanged, across chunk borders', async () => {
    const data = Buffer.concat([packet(10), packet(200), packet(0), packet(1000)]);
    const chunks = [data.subarray(0, 1), data.subarray(1, 3), data.subarray(3, 150), data.subarray(150)];
    const { out, error } = await run(new PacketSizeGuard(1000, () => undefined), chunks);
    expect(error).toBeUndefined();
    expect(out.equals(data)).toBe(true);
  });

  it('fails as soon as a header announces more than the limit', async () => {
    let announced = 0;
    const big = packet(2000).subarray(0, 10); // only the start of it ever arrives
    const { error } = await run(new PacketSizeGuard(1000, (n) => (announced = n)), [packet(5), big]);
    expect(error?.message).toContain('exceeds');
    expect(announced).toBe(2000);
  });

  it('rejects a malformed remaining length', async () => {
    const { error } = await run(new PacketSizeGuard(1000, () => undefined), [Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])]);
    expect(error?.message).toContain('malformed');
  });
});
