import { connect, createServer, type Server, type Socket } from 'node:net';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { widenAccept, type AcceptLanes } from './accept-lanes.ts';

const log = pino({ level: 'silent' });
const BACKLOG = 1024;

async function listening(onConnection: (s: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer(onConnection);
  await new Promise<void>((resolve) => server.listen({ port: 0, host: '127.0.0.1', backlog: BACKLOG }, resolve));
  return { server, port: (server.address() as { port: number }).port };
}

/** Waits a few event-loop turns at a time until `ready()` holds. */
async function until(ready: () => boolean, turns = 5_000): Promise<void> {
  for (let i = 0; i < turns && !ready(); i++) await new Promise((r) => setTimeout(r, 1));
  expect(ready()).toBe(true);
}

/** Opens `n` connections while the loop is blocked, then counts accepts per turn. */
async function acceptsPerTurn(port: number, n: number, accepted: () => number): Promise<number[]> {
  const clients = Array.from({ length: n }, () => connect(port, '127.0.0.1').on('error', () => undefined));
  const start = Date.now();
  while (Date.now() - start < 100); // the kernel completes the handshakes; nobody accepts yet
  const perTurn: number[] = [];
  let seen = accepted();
  while (accepted() < n && perTurn.length < 500) {
    await new Promise((r) => setImmediate(r));
    perTurn.push(accepted() - seen);
    seen = accepted();
  }
  for (const c of clients) c.destroy();
  return perTurn;
}

describe('accept lanes', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  function track(server: Server, lanes?: AcceptLanes): void {
    cleanup.push(async () => {
      await lanes?.close();
      await new Promise<void>((r) => server.close(() => r()));
    });
  }

  it('takes one pending connection per event-loop turn on a plain listener (why lanes exist)', async () => {
    const sockets: Socket[] = [];
    const { server, port } = await listening((s) => sockets.push(s));
    track(server);
    const perTurn = await acceptsPerTurn(port, 24, () => sockets.length);
    expect(Math.max(...perTurn)).toBe(1);
    for (const s of sockets) s.destroy();
  });

  it('accepts as many connections per turn as it has lanes, all reaching onConnection', async () => {
    const sockets: Socket[] = [];
    const { server, port } = await listening((s) => sockets.push(s));
    const lanes = widenAccept([{ server, onConnection: (s) => sockets.push(s) }], { lanes: 8, backlog: BACKLOG, log });
    track(server, lanes);
    await until(() => lanes.count === 7);
    const perTurn = await acceptsPerTurn(port, 40, () => sockets.length);
    expect(sockets).toHaveLength(40);
    expect(Math.max(...perTurn)).toBeGreaterThanOrEqual(4);
    expect(Math.max(...perTurn)).toBeLessThanOrEqual(8);
    for (const s of sockets) s.destroy();
  });

  it('widens several listeners with one helper, each lane handing its connections to its own listener', async () => {
    const first: Socket[] = [];
    const second: Socket[] = [];
    const a = await listening((s) => first.push(s));
    const b = await listening((s) => second.push(s));
    const lanes = widenAccept(
      [
        { server: a.server, onConnection: (s) => first.push(s) },
        { server: b.server, onConnection: (s) => second.push(s) },
      ],
      { lanes: 4, backlog: BACKLOG, log },
    );
    cleanup.push(async () => {
      await lanes.close();
    });
    track(a.server);
    track(b.server);
    await until(() => lanes.count === 6);
    const [toA, toB] = await Promise.all([
      acceptsPerTurn(a.port, 12, () => first.length),
      acceptsPerTurn(b.port, 12, () => second.length),
    ]);
    expect([first.length, second.length]).toEqual([12, 12]);
    expect(Math.max(...toA, ...toB)).toBeGreaterThan(1);
    for (const s of [...first, ...second]) s.destroy();
  });

  it('stops accepting on every lane once closed', async () => {
    let after = 0;
    let closed = false;
    const count = (s: Socket) => {
      if (closed) after++;
      s.destroy();
    };
    const { server, port } = await listening(count);
    const lanes = widenAccept([{ server, onConnection: count }], { lanes: 4, backlog: BACKLOG, log });
    await until(() => lanes.count === 3);
    await lanes.close();
    await new Promise<void>((r) => server.close(() => r()));
    closed = true;
    // Refused, or (in a busy test run) answered by whoever took the port since: never by a lane of ours.
    const outcome = await new Promise<string>((resolve) => {
      const c = connect(port, '127.0.0.1');
      c.on('connect', () => {
        c.destroy();
        resolve('connected');
      });
      c.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(['ECONNREFUSED', 'connected']).toContain(outcome);
    expect(after).toBe(0);
  });

  it('frees the port when closed before the helper has answered', async () => {
    const { server, port } = await listening((s) => s.destroy());
    const lanes = widenAccept([{ server, onConnection: (s) => s.destroy() }], { lanes: 4, backlog: BACKLOG, log });
    await lanes.close(); // at once: the copies are still on their way
    await new Promise<void>((r) => server.close(() => r()));
    const again = createServer();
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.listen({ port, host: '127.0.0.1' }, resolve);
    });
    await new Promise<void>((r) => again.close(() => r()));
    expect(lanes.count).toBe(0);
  });

  it('does nothing for one lane', async () => {
    const { server } = await listening((s) => s.destroy());
    const lanes = widenAccept([{ server, onConnection: (s) => s.destroy() }], { lanes: 1, backlog: BACKLOG, log });
    track(server, lanes);
    expect(lanes.count).toBe(0);
  });
});
