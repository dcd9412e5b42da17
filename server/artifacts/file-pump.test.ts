// The two ways a payload reaches a socket, on a real HTTP server: streamed from
// the file (large payloads) and sliced from memory (payload-cache.ts).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import type { ServerResponse } from 'node:http';
import { pumpFile, sendBuffer, TURN_BYTES } from './file-pump.ts';

describe('payload pumps', () => {
  const payload = randomBytes(3 * 1024 * 1024 + 123); // several chunks and a ragged end
  const path = join(mkdtempSync(join(tmpdir(), 'posfleet-pump-')), 'payload');
  let server: Server;
  let base: string;

  beforeAll(async () => {
    writeFileSync(path, payload);
    server = createServer((req, res) => {
      const [, how, start, end] = /^\/(file|memory)\/(\d+)\/(\d+)$/.exec(req.url ?? '') ?? [];
      const [s, e] = [Number(start), Number(end)];
      res.writeHead(200, { 'content-length': String(e - s + 1) });
      const sent =
        how === 'file'
          ? open(path, 'r').then((fh) => pumpFile(fh, s, e, res).finally(() => fh.close()))
          : sendBuffer(payload, s, e, res);
      void sent.then(
        () => res.end(),
        () => res.destroy(),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  for (const how of ['file', 'memory']) {
    it(`sends exactly the bytes asked for, from the ${how}`, async () => {
      const spans = [
        [0, payload.length - 1],
        [1, 1],
        [1024 * 1024 - 1, 2 * 1024 * 1024 + 5],
        [payload.length - 10, payload.length - 1],
      ];
      const bodies = await Promise.all(
        spans.map(async ([s, e]) => Buffer.from(await (await fetch(`${base}/${how}/${s}/${e}`)).arrayBuffer())),
      );
      for (const [i, [s, e]] of spans.entries()) expect(bodies[i].equals(payload.subarray(s, e + 1))).toBe(true);
    });
  }
});

describe('download pacing', () => {
  it('hands sockets at most its per-turn budget before other sockets get a turn', async () => {
    const payload = Buffer.alloc(1024 * 1024, 1);
    let written = 0;
    const sink = () =>
      new Writable({
        highWaterMark: 64 * 1024 * 1024,
        write(chunk: Buffer, _e, done) {
          written += chunk.length;
          done();
        },
      });
    const downloads = 100; // 100 MiB at once: three budgets' worth
    const all = Promise.all(
      Array.from({ length: downloads }, () =>
        sendBuffer(payload, 0, payload.length - 1, sink() as unknown as ServerResponse),
      ),
    );
    const perTurn: number[] = [];
    let seen = 0;
    while (seen < downloads * payload.length && perTurn.length < 1_000) {
      await new Promise((r) => setImmediate(r));
      perTurn.push(written - seen);
      seen = written;
    }
    expect(await all).toEqual(Array(downloads).fill(payload.length));
    expect(seen).toBe(downloads * payload.length);
    // The budget is refilled once per turn of the loop; a turn may see the tail of the last one.
    expect(Math.max(...perTurn)).toBeLessThanOrEqual(2 * TURN_BYTES);
    expect(perTurn.filter((n) => n > 0).length).toBeGreaterThanOrEqual(3);
  });
});
