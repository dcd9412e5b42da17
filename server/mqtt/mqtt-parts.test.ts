import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { checkPublish, checkSubscribe, isAcceptableClientId } from './acl.ts';
import { GuardedConnection, type ScanVerdict } from './size-guard.ts';

describe('topic ACL', () => {
  it('lets a terminal publish only to its own uplink topics', () => {
    expect(checkPublish('dev_a1', 'fleet/dev_a1/heartbeat')).toEqual({ ok: true, kind: 'heartbeat' });
    expect(checkPublish('dev_a1', 'fleet/dev_b1/heartbeat')).toEqual({ ok: false, reason: 'other_device' });
    expect(checkPublish('dev_a1', 'fleet/dev_a1/cmd')).toEqual({ ok: false, reason: 'not_uplink' });
    expect(checkPublish('dev_a1', 'other/dev_a1/heartbeat')).toEqual({ ok: false, reason: 'foreign_topic' });
    expect(checkPublish('dev_a1', 'fleet/dev_a1/heartbeat/extra')).toEqual({ ok: false, reason: 'foreign_topic' });
    // A client id that is a prefix of another device's id owns none of its topics.
    expect(checkPublish('dev_a', 'fleet/dev_a1/heartbeat')).toEqual({ ok: false, reason: 'other_device' });
    expect(checkPublish('dev_a1', 'fleet/dev_a1/')).toEqual({ ok: false, reason: 'foreign_topic' });
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
    for (const bad of ['a/b', 'a+b', 'a#', '$SYS', '', 'ab', 'x'.repeat(65)])
      expect(isAcceptableClientId(bad)).toBe(false);
  });
});

/** A socket stand-in that records how the connection hands it bytes. */
class FakeSocket extends Duplex {
  batches: Buffer[][] = [];
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.batches.push([chunk]);
    done();
  }
  override _writev(chunks: Array<{ chunk: Buffer }>, done: () => void): void {
    this.batches.push(chunks.map((c) => c.chunk));
    done();
  }
}

function run(maxBytes: number, chunks: Buffer[]): Promise<{ out: Buffer; error?: Error; refused?: ScanVerdict }> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    const socket = new FakeSocket();
    let refused: ScanVerdict | undefined;
    const conn = new GuardedConnection(socket as unknown as Socket, maxBytes, (v) => (refused = v));
    conn.on('data', (d: Buffer) => parts.push(d));
    conn.on('error', (error: Error) => resolve({ out: Buffer.concat(parts), error, refused }));
    conn.on('end', () => resolve({ out: Buffer.concat(parts) }));
    for (const c of chunks) socket.push(c);
    socket.push(null);
  });
}

describe('guarded MQTT connection', () => {
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
    const { out, error } = await run(1000, chunks);
    expect(error).toBeUndefined();
    expect(out.equals(data)).toBe(true);
  });

  it('fails as soon as a header announces more than the limit', async () => {
    const big = packet(2000).subarray(0, 10); // only the start of it ever arrives
    const { error, refused } = await run(1000, [packet(5), big]);
    expect(error?.message).toContain('exceeds');
    expect(refused).toEqual({ ok: false, reason: 'oversize', announced: 2000 });
  });

  it('rejects a malformed remaining length', async () => {
    const { error, refused } = await run(1000, [Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])]);
    expect(error?.message).toContain('malformed');
    expect(refused).toEqual({ ok: false, reason: 'malformed' });
  });

  it('hands the socket the pieces of one corked packet in a single batch (one writev)', async () => {
    const socket = new FakeSocket();
    const conn = new GuardedConnection(socket as unknown as Socket, 1000, () => undefined);
    conn.cork();
    for (const piece of [Buffer.from([0x40]), Buffer.from([0x02]), Buffer.from([0x00, 0x07])]) conn.write(piece);
    process.nextTick(() => conn.uncork()); // as mqtt-packet's writeToStream does
    await new Promise((r) => setImmediate(r));
    expect(socket.batches.map((batch) => batch.map((b) => [...b]))).toEqual([[[0x40], [0x02], [0x00, 0x07]]]);
  });
});
