// Durability of hook deliveries: a server stopped with deliveries pending
// delivers them after restart on the same database, none lost, none twice;
// two instances draining one backlog send each delivery once, in order.
import { afterAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../server/lib/clock.ts';
import { startTestApp, type TestApp } from './helpers/app.ts';
import { dbKind } from './helpers/db.ts';
import { startReceiver, verify, type Receiver } from './hooks.helpers.ts';

const KEY = Buffer.alloc(32, 9).toString('hex');
const ADMIN = `test-admin-hooks-restart-${Date.now()}`;

describe(`hook deliveries across restarts and instances (${dbKind()})`, () => {
  const clock = new ManualClock();
  const receivers: Receiver[] = [];
  const apps: TestApp[] = [];
  const start = async () => {
    const t = await startTestApp({ clock, adminToken: ADMIN, config: { hooksSecretKey: KEY } });
    apps.push(t);
    return t;
  };
  afterAll(async () => {
    await Promise.all(apps.map((a) => a.stop()));
    await Promise.all(receivers.map((r) => r.close()));
  });

  async function emitMany(t: TestApp, type: string, n: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      ids.push(
        await t.app.db
          .transaction()
          .execute((trx) => t.app.outbox.add(trx, { type, subject: { type: 'rollout', id: `ro_${i}` }, data: { i } })),
      );
    }
    return ids;
  }

  it('delivers after a restart what was pending (and pending retry) when the server stopped', async () => {
    let up = false;
    const r = await startReceiver(() => (up ? 200 : 503));
    receivers.push(r);
    const first = await start();
    const hook = (await first.api('POST', '/api/v1/hooks', { url: r.url, events: ['rollout.started'] })).body;
    const events = await emitMany(first, 'rollout.started', 5);
    await first.app.hooks.runDue(); // event 0 fails and waits for its retry; 1-4 wait behind it
    expect(r.got).toHaveLength(1);
    const more = await emitMany(first, 'rollout.started', 2); // written, never fanned out by this instance
    await first.stop();

    up = true;
    const second = await start();
    clock.advance(5_000);
    await second.app.hooks.runDue();
    expect(r.got.map((g) => g.json.id)).toEqual([events[0], ...events, ...more]);
    expect(r.got.every((g) => verify(hook.secret, g, Math.floor(clock.nowMs() / 1000)))).toBe(true);
    const log = (await second.api('GET', `/api/v1/hooks/${hook.id}/deliveries?limit=100`)).body.items as any[];
    expect(log).toHaveLength(7);
    expect(log.every((d) => d.state === 'delivered')).toBe(true);
    expect((await second.api('DELETE', `/api/v1/hooks/${hook.id}`)).status).toBe(204);
  });

  it('two instances draining one backlog send each delivery once, in event order', async () => {
    const r = await startReceiver();
    receivers.push(r);
    const [a, b] = [await start(), await start()];
    const hook = (await a.api('POST', '/api/v1/hooks', { url: r.url, events: ['rollout.wave_completed'] })).body;
    const events = await emitMany(a, 'rollout.wave_completed', 30);
    await Promise.all([a.app.hooks.runDue(), b.app.hooks.runDue(), a.app.hooks.runDue(), b.app.hooks.runDue()]);
    expect(r.got.map((g) => g.json.id)).toEqual(events);
    expect(new Set(r.got.map((g) => g.headers['webhook-id'])).size).toBe(30);
    await a.api('DELETE', `/api/v1/hooks/${hook.id}`);
  });

  it('wakes on notify in production mode: an event goes out within a second', async () => {
    const r = await startReceiver();
    receivers.push(r);
    const t = await start();
    const hook = (await t.api('POST', '/api/v1/hooks', { url: r.url, events: ['inspection.completed'] })).body;
    t.app.hooks.start();
    try {
      const started = Date.now();
      await t.app.db
        .transaction()
        .execute((trx) => t.app.outbox.add(trx, { type: 'inspection.completed', data: { deviceId: 'dev_1' } }));
      t.app.outbox.notify();
      for (let i = 0; i < 100 && r.got.length === 0; i++) await new Promise((res) => setTimeout(res, 10));
      expect(r.got).toHaveLength(1);
      expect(Date.now() - started).toBeLessThan(1_000);
    } finally {
      await t.app.hooks.stop();
    }
    await t.api('DELETE', `/api/v1/hooks/${hook.id}`);
  });
});
