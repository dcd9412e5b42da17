import { sql } from 'kysely';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../server/lib/clock.ts';
import { randomChars } from '../server/lib/ids.ts';
import {
  connectDevice,
  enrollDevice,
  eventually,
  metricsText,
  seriesValue,
  startTestApp,
  type EnrolledDevice,
  type TestApp,
} from './helpers/app.ts';
import { dbKind } from './helpers/db.ts';
import { activeAlerts, beat, outboxTypes, publish, settle } from './helpers/health.ts';

describe(`telemetry and presence (${dbKind()})`, () => {
  const clock = new ManualClock(Date.UTC(2026, 1, 2, 9, 0, 0));
  let t: TestApp;
  const clients: MqttClient[] = [];
  beforeAll(async () => {
    t = await startTestApp({ clock });
  });
  afterAll(async () => {
    for (const c of clients) c.end(true);
    await t.stop();
  });

  async function device(): Promise<{ d: EnrolledDevice; client: MqttClient }> {
    const d = await enrollDevice(t, { model: 'T1' });
    const client = await connectDevice(t.app, d);
    clients.push(client);
    return { d, client };
  }

  const counter = async (name: string) => seriesValue(await metricsText(t), name);

  it('stores each heartbeat once, keeps the latest vitals, derives drift and records reboots', async () => {
    const persistedBefore = await counter('posfleet_heartbeats_persisted_total');
    const duplicatesBefore = await counter('posfleet_heartbeats_duplicate_total');
    const { d, client } = await device();
    const topic = `fleet/${d.deviceId}/heartbeat`;
    await publish(client, topic, beat(clock, 1, { ts: clock.nowMs() - 2_000, battery: { pct: 80 } }));
    await publish(client, topic, beat(clock, 1, { battery: { pct: 80 } })); // a resend: same (device, bootId, seq)
    clock.advance(60_000);
    await publish(client, topic, beat(clock, 2, { battery: { pct: 79 } }));
    clock.advance(60_000);
    await publish(
      client,
      topic,
      beat(clock, 0, { bootId: 'boot-b', sys: { rebootReason: 'watchdog' }, battery: { pct: 78 } }),
    );
    await settle(t);
    const rows = await t.app.db
      .selectFrom('heartbeats')
      .selectAll()
      .where('device_id', '=', d.deviceId)
      .orderBy('received_at')
      .execute();
    expect(rows.map((r) => [r.boot_id, Number(r.seq)])).toEqual([
      ['boot-a', 1],
      ['boot-a', 2],
      ['boot-b', 0],
    ]);
    expect(Number(rows[0].drift_ms)).toBe(2_000);
    const boots = await t.app.health.history.boots(d.deviceId);
    expect(boots.map((b) => [b.bootId, b.reason])).toEqual([
      ['boot-b', 'watchdog'],
      ['boot-a', null],
    ]);
    const latest = await t.app.health.history.latest(d.deviceId);
    expect(latest).toMatchObject({ bootId: 'boot-b', seq: 0, vitals: { battery: { pct: 78 } } });
    const dev = await t.api('GET', `/api/v1/devices/${d.deviceId}`);
    expect(dev.body.lastSeenAt).toBe(clock.now().toISOString());
    expect(await counter('posfleet_heartbeats_persisted_total')).toBe(persistedBefore + 3);
    expect(await counter('posfleet_heartbeats_duplicate_total')).toBe(duplicatesBefore + 1);
    expect(await counter('posfleet_ingest_batch_seconds_count')).toBeGreaterThan(0);
  });

  it('shows an acknowledged heartbeat on the API at once, though device state is written behind', async () => {
    const { d, client } = await device();
    clock.advance(1_000);
    await publish(client, `fleet/${d.deviceId}/heartbeat`, beat(clock, 1, { battery: { pct: 42, charging: true } }));
    // No settle: the API itself waits for the state of what was acknowledged.
    expect((await t.api('GET', `/api/v1/devices/${d.deviceId}`)).body.lastSeenAt).toBe(clock.now().toISOString());
    expect((await t.api('GET', `/api/v1/devices/${d.deviceId}/health`)).body).toMatchObject({
      latest: { seq: 1, vitals: { battery: { pct: 42 } } },
    });
  });

  it("takes the device's versions from its heartbeats, rewriting its row only when they change", async () => {
    // Its own model and app: versions reported here must not become the "newest" other tests' inspections compare with.
    const d = await enrollDevice(t, { model: `TV${randomChars(4)}` });
    const client = await connectDevice(t.app, d);
    clients.push(client);
    const app = `tv${randomChars(6)}`;
    const topic = `fleet/${d.deviceId}/heartbeat`;
    const rowVersion = async () =>
      (
        await t.app.db
          .selectFrom('devices')
          .select(sql<string>`xmin::text`.as('v'))
          .where('id', '=', d.deviceId)
          .executeTakeFirstOrThrow()
      ).v;
    await eventually(async () => (await t.api('GET', `/api/v1/devices/${d.deviceId}`)).body.connected); // the session's own write to the row is done
    await publish(client, topic, beat(clock, 1, { apps: { [app]: '1.0.0' } }));
    await settle(t);
    const before = await rowVersion();
    clock.advance(60_000);
    await publish(client, topic, beat(clock, 2, { apps: { [app]: '1.0.0' } })); // same versions: the device row stays as it is
    await settle(t);
    expect(await rowVersion()).toBe(before);
    expect((await t.api('GET', `/api/v1/devices/${d.deviceId}`)).body).toMatchObject({
      firmware: '1.0.0',
      lastSeenAt: clock.now().toISOString(),
    });
    clock.advance(60_000);
    await publish(client, topic, beat(clock, 3, { firmware: '1.1.0', apps: { [app]: '1.1.0' } }));
    await settle(t);
    expect(await rowVersion()).not.toBe(before);
    expect((await t.api('GET', `/api/v1/devices/${d.deviceId}`)).body).toMatchObject({
      firmware: '1.1.0',
      apps: { [app]: '1.1.0' },
      lastSeenAt: clock.now().toISOString(),
    });
  });

  it('serves history raw and by the hour, before and after the roll-up, and applies retention', async () => {
    const { d, client } = await device();
    const start = clock.now();
    for (let i = 0; i < 6; i++) {
      await publish(client, `fleet/${d.deviceId}/heartbeat`, beat(clock, i, { battery: { pct: 90 - i } }));
      clock.advance(20 * 60_000);
    }
    await settle(t);
    const q = `from=${start.toISOString()}&to=${clock.now().toISOString()}`;
    const raw = await t.api('GET', `/api/v1/devices/${d.deviceId}/heartbeats?${q}&limit=4`);
    expect(raw.status).toBe(200);
    expect(raw.body.items).toHaveLength(4);
    const rest = await t.api(
      'GET',
      `/api/v1/devices/${d.deviceId}/heartbeats?${q}&limit=4&cursor=${raw.body.nextCursor}`,
    );
    expect(rest.body.items.map((i: { seq: number }) => i.seq)).toEqual([4, 5]);
    const live = await t.api('GET', `/api/v1/devices/${d.deviceId}/heartbeats?${q}&resolution=hour`);
    expect(live.body.items.reduce((n: number, h: { count: number }) => n + h.count, 0)).toBe(6);
    await t.app.health.history.rollup();
    const rolled = await t.api('GET', `/api/v1/devices/${d.deviceId}/heartbeats?${q}&resolution=hour`);
    expect(rolled.body.items).toEqual(live.body.items);
    expect(rolled.body.items[0].stats.batteryPctAvg).toBeGreaterThan(80);

    clock.advance(31 * 86_400_000);
    await t.app.health.history.retain();
    const after = await t.api('GET', `/api/v1/devices/${d.deviceId}/heartbeats?${q}`);
    expect(after.body.items).toHaveLength(0);
    const kept = await t.api('GET', `/api/v1/devices/${d.deviceId}/heartbeats?${q}&resolution=hour`);
    expect(kept.body.items.reduce((n: number, h: { count: number }) => n + h.count, 0)).toBe(6);
  });

  it('moves a silent terminal online → late → offline → missing → online, each change an outbox event', async () => {
    const { d, client } = await device();
    await publish(client, `fleet/${d.deviceId}/heartbeat`, beat(clock, 1));
    await settle(t);
    const state = async () => (await t.api('GET', `/api/v1/devices/${d.deviceId}/health`)).body.presence;
    expect(await state()).toBe('online');
    clock.advance(80_000);
    await t.app.health.presence.sweep();
    expect(await state()).toBe('online');
    clock.advance(20_000); // 100 s of silence at a 60 s interval: one heartbeat missed
    await t.app.health.presence.sweep();
    expect(await state()).toBe('late');
    clock.advance(120_000); // 220 s: three missed
    await t.app.health.presence.sweep();
    expect(await state()).toBe('offline');
    expect((await activeAlerts(t, d.deviceId)).map((a) => a.ruleId)).toEqual(['rule_offline']);
    clock.advance(24 * 3600_000);
    await t.app.health.presence.sweep();
    expect(await state()).toBe('missing');
    expect((await activeAlerts(t, d.deviceId)).map((a) => a.ruleId).sort()).toEqual(['rule_missing', 'rule_offline']);
    await publish(client, `fleet/${d.deviceId}/heartbeat`, beat(clock, 2));
    await settle(t);
    expect(await state()).toBe('online');
    expect(await activeAlerts(t, d.deviceId)).toEqual([]);
    const events = await t.app.db
      .selectFrom('outbox_events')
      .select(['type', 'data'])
      .where('subject_id', '=', d.deviceId)
      .where('type', '=', 'device.presence_changed')
      .orderBy('seq')
      .execute();
    expect(events.map((e) => `${e.data.from}→${e.data.to}`)).toEqual([
      'null→online',
      'online→late',
      'late→offline',
      'offline→missing',
      'missing→online',
    ]);
    expect(events[1].data).toMatchObject({ deviceId: d.deviceId, model: 'T1', merchantId: d.merchantId, tags: [] });
  });

  it('takes a terminal offline after a disconnect once the grace period has passed', async () => {
    const { d, client } = await device();
    await publish(client, `fleet/${d.deviceId}/heartbeat`, beat(clock, 1));
    await settle(t);
    await new Promise<void>((r) => client.end(false, {}, () => r()));
    await t.app.sessions.drain();
    await new Promise((r) => setTimeout(r, 100));
    await t.app.sessions.drain();
    clock.advance(30_000);
    expect((await t.app.health.presence.sweep()).filter((c) => c.deviceId === d.deviceId)).toEqual([]);
    clock.advance(31_000);
    const moved = (await t.app.health.presence.sweep()).filter((c) => c.deviceId === d.deviceId);
    expect(moved.map((m) => [m.from, m.to])).toEqual([['online', 'offline']]);
  });

  it('records device events once and lets a tamper event raise the tamper alert', async () => {
    const { d, client } = await device();
    const ev = { v: 1, ts: clock.nowMs(), type: 'tamper', severity: 'critical', data: { sensor: 'case' } };
    await publish(client, `fleet/${d.deviceId}/event`, ev);
    await publish(client, `fleet/${d.deviceId}/event`, ev); // redelivered
    await settle(t);
    const list = await t.api('GET', `/api/v1/devices/${d.deviceId}/events`);
    expect(list.body.items).toHaveLength(1);
    const alerts = await activeAlerts(t, d.deviceId);
    expect(alerts.map((a) => [a.ruleId, a.severity])).toEqual([['rule_tamper', 'critical']]);
    expect(await outboxTypes(t, alerts[0].id)).toEqual(['alert.opened']);
  });

  it('writes an event repeated within one batch once, and observes it once', async () => {
    const { d } = await device();
    const tamper = {
      v: 1 as const,
      ts: clock.nowMs(),
      type: 'tamper',
      severity: 'critical' as const,
      data: { sensor: 'case' },
    };
    // Three jams in a row raise the printer alert; one jam repeated three times must not.
    const jam = { v: 1 as const, ts: clock.nowMs(), type: 'printer_jam', data: { tray: 1 } };
    const record = (ev: typeof tamper | typeof jam) => t.app.health.events.record(d.deviceId, clock.now(), ev);
    await Promise.all([
      record(tamper),
      record(jam),
      record(tamper),
      record(jam),
      record({ ...jam, data: { tray: 2 } }),
    ]); // one batch
    await record(jam); // a later resend
    await settle(t);
    const list = await t.api('GET', `/api/v1/devices/${d.deviceId}/events`);
    expect(list.body.items.map((e: { type: string; data: unknown }) => [e.type, e.data]).sort()).toEqual([
      ['printer_jam', { tray: 1 }],
      ['tamper', { sensor: 'case' }],
    ]);
    const alerts = await activeAlerts(t, d.deviceId);
    expect(alerts.map((a) => a.ruleId)).toEqual(['rule_tamper']);
    expect(await outboxTypes(t, alerts[0].id)).toEqual(['alert.opened']);
  });

  it('drops a heartbeat that does not validate without disturbing the session', async () => {
    const { d, client } = await device();
    await publish(client, `fleet/${d.deviceId}/heartbeat`, { v: 1, seq: -1 });
    await publish(client, `fleet/${d.deviceId}/heartbeat`, beat(clock, 1));
    await settle(t);
    const n = await t.app.db
      .selectFrom('heartbeats')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('device_id', '=', d.deviceId)
      .executeTakeFirst();
    expect(Number(n?.n)).toBe(1);
  });
});
