// Every default rule, over real MQTT: fires only after its debounce, holds in
// its hysteresis band, clears past the clear threshold, with outbox events.
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../server/lib/clock.ts';
import { connectDevice, enrollDevice, startTestApp, type TestApp } from './helpers/app.ts';
import { dbKind } from './helpers/db.ts';
import { activeAlerts, outboxTypes, sender } from './helpers/health.ts';

interface Case {
  rule: string;
  forCount: number;
  bad: object;
  band?: object;
  good: object;
  ticket?: string;
  maxClear?: number;
}

const CASES: Case[] = [
  {
    rule: 'rule_battery_low',
    forCount: 2,
    bad: { battery: { pct: 10, charging: false } },
    band: { battery: { pct: 20, charging: false } },
    good: { battery: { pct: 30, charging: false } },
  },
  {
    rule: 'rule_battery_health',
    forCount: 3,
    bad: { battery: { healthPct: 55 } },
    band: { battery: { healthPct: 62 } },
    good: { battery: { healthPct: 80 } },
    ticket: 'battery_replacement',
  },
  {
    rule: 'rule_printer_paper',
    forCount: 2,
    bad: { printer: { state: 'no_paper' } },
    good: { printer: { state: 'ok' } },
  },
  {
    rule: 'rule_printer_fault',
    forCount: 3,
    bad: { printer: { state: 'jam' } },
    good: { printer: { state: 'ok' } },
    ticket: 'repair',
  },
  {
    rule: 'rule_reader_errors',
    forCount: 3,
    bad: { reader: { chipOk: 10, chipErr: 10 } },
    good: { reader: { chipOk: 100, chipErr: 0 } },
    ticket: 'part_replacement',
    maxClear: 6,
  },
  {
    rule: 'rule_storage_full',
    forCount: 3,
    bad: { sys: { storageFreePct: 5 } },
    band: { sys: { storageFreePct: 12 } },
    good: { sys: { storageFreePct: 40 } },
  },
  {
    rule: 'rule_temperature_high',
    forCount: 2,
    bad: { battery: { tempC: 70 } },
    band: { battery: { tempC: 62 } },
    good: { battery: { tempC: 35 } },
  },
  {
    rule: 'rule_weak_signal',
    forCount: 3,
    bad: { net: { type: 'lte', signalDbm: -112 } },
    band: { net: { type: 'lte', signalDbm: -102 } },
    good: { net: { type: 'lte', signalDbm: -80 } },
  },
  {
    rule: 'rule_tamper',
    forCount: 1,
    bad: { security: { tamper: true } },
    good: { security: { tamper: false } },
    ticket: 'repair',
  },
  {
    rule: 'rule_patch_old',
    forCount: 1,
    bad: { security: { patchLevel: '2025-10-01' } },
    good: { security: { patchLevel: '2026-01-20' } },
  },
  { rule: 'rule_clock_drift', forCount: 3, bad: { driftS: 600 }, band: { driftS: 270 }, good: { driftS: 0 } },
];

describe(`default health rules (${dbKind()})`, () => {
  const clock = new ManualClock(Date.UTC(2026, 1, 10, 9, 0, 0));
  let t: TestApp;
  const clients: MqttClient[] = [];
  beforeAll(async () => {
    t = await startTestApp({ clock });
  });
  afterAll(async () => {
    for (const c of clients) c.end(true);
    await t.stop();
  });

  async function terminal(model = 'T1') {
    const d = await enrollDevice(t, { model });
    const client = await connectDevice(t.app, d);
    clients.push(client);
    const send = sender(t, clock, client, d.deviceId);
    // Clock drift is simulated by the device clock running behind.
    const sendCase = (v: object) => {
      const { driftS, ...vitals } = v as { driftS?: number };
      return send(vitals, driftS === undefined ? {} : { ts: clock.nowMs() + 60_000 - driftS * 1000 });
    };
    return { d, send, sendCase };
  }

  for (const c of CASES) {
    it(`${c.rule}: fires after ${c.forCount}, holds in the band, clears past the clear threshold`, async () => {
      const { d, sendCase } = await terminal();
      const open = async () => (await activeAlerts(t, d.deviceId)).filter((a) => a.ruleId === c.rule);
      for (let i = 1; i < c.forCount; i++) await sendCase(c.bad);
      expect(await open(), 'debounced').toEqual([]);
      await sendCase(c.bad);
      const [alert] = await open();
      expect(alert, 'fired').toBeDefined();
      await sendCase(c.bad);
      expect((await open())[0].count).toBe(2); // one alert, counted
      if (c.band) {
        for (let i = 0; i <= c.forCount; i++) await sendCase(c.band);
        expect(await open(), 'held in the hysteresis band').toHaveLength(1);
      }
      let sent = 0;
      while ((await open()).length > 0) {
        await sendCase(c.good);
        sent++;
        expect(sent).toBeLessThanOrEqual(c.maxClear ?? c.forCount);
      }
      expect(sent).toBeGreaterThanOrEqual(c.rule === 'rule_reader_errors' ? 1 : c.forCount);
      expect(await outboxTypes(t, alert.id)).toEqual(['alert.opened', 'alert.resolved']);
      const tickets = await t.api('GET', `/api/v1/tickets?device=${d.deviceId}`);
      expect(tickets.body.items.map((x: { kind: string }) => x.kind)).toEqual(c.ticket ? [c.ticket] : []);
      if (c.ticket) expect(tickets.body.items[0]).toMatchObject({ source: 'rule', alertId: alert.id, state: 'open' });
    });
  }

  it('rule_reboot_loop: more than 3 boots in an hour fires, an hour of calm clears it', async () => {
    const { d, send } = await terminal();
    for (let i = 0; i < 3; i++) await send({ sys: { rebootReason: 'crash' } }, { bootId: `b${i}` });
    expect(await activeAlerts(t, d.deviceId)).toEqual([]);
    await send({ sys: { rebootReason: 'crash' } }, { bootId: 'b3' });
    expect((await activeAlerts(t, d.deviceId)).map((a) => [a.ruleId, a.severity])).toEqual([
      ['rule_reboot_loop', 'critical'],
    ]);
    clock.advance(3600_000);
    await send({}, { bootId: 'b3', seq: 99 });
    expect(await activeAlerts(t, d.deviceId)).toEqual([]);
  });

  it('counts every breaching heartbeat of one evaluation batch on the open alert', async () => {
    const { d, sendCase } = await terminal();
    await sendCase({ security: { tamper: true } });
    const [alert] = await activeAlerts(t, d.deviceId);
    const at = (k: number) => new Date(clock.nowMs() + k * 1000);
    const metrics = { security: { tamper: true }, presence: 'online' };
    await t.app.health.evaluator.evaluateNow([1, 2, 3].map((k) => ({ deviceId: d.deviceId, at: at(k), metrics })));
    const [after] = await activeAlerts(t, d.deviceId);
    expect([after.id, after.count]).toEqual([alert.id, 4]);
    expect((await t.api('GET', `/api/v1/alerts/${alert.id}`)).body.lastSeenAt).toBe(at(3).toISOString());
  });

  it('lists devices by presence and health', async () => {
    const { d, sendCase } = await terminal();
    await sendCase({ security: { tamper: true } });
    const ids = async (q: string) =>
      (await t.api('GET', `/api/v1/devices?merchant=${d.merchantId}&${q}`)).body.items.map((x: { id: string }) => x.id);
    expect(await ids('health=critical')).toEqual([d.deviceId]);
    expect(await ids('health=ok,warning')).toEqual([]);
    expect(await ids('presence=online&health=warning,critical')).toEqual([d.deviceId]);
    expect(await ids('presence=offline,missing')).toEqual([]);
    const bad = await t.api('GET', '/api/v1/devices?health=sickly');
    expect(bad.status).toBe(400);
  });

  it('resolves the alerts of many devices in one evaluation batch, each with its event', async () => {
    const fixed = await Promise.all([terminal(), terminal()]);
    for (const f of fixed) await f.sendCase({ security: { tamper: true } });
    const alerts = await Promise.all(fixed.map(async (f) => (await activeAlerts(t, f.d.deviceId))[0]));
    const at = new Date(clock.nowMs() + 1_000);
    await t.app.health.evaluator.evaluateNow(
      fixed.map((f) => ({ deviceId: f.d.deviceId, at, metrics: { security: { tamper: false }, presence: 'online' } })),
    );
    for (const [i, f] of fixed.entries()) {
      expect(await activeAlerts(t, f.d.deviceId)).toEqual([]);
      expect(await outboxTypes(t, alerts[i].id)).toEqual(['alert.opened', 'alert.resolved']);
    }
  });

  it('keeps rule state across a restart: no second opening, and the clear still happens', async () => {
    const { d, sendCase } = await terminal();
    await sendCase({ battery: { pct: 5, charging: false } });
    await sendCase({ battery: { pct: 5, charging: false } });
    const [alert] = await activeAlerts(t, d.deviceId);
    await t.stop();
    t = await startTestApp({ clock });
    const client = await connectDevice(t.app, d);
    clients.push(client);
    const send = sender(t, clock, client, d.deviceId);
    await send({ battery: { pct: 5, charging: false } }, { seq: 50 });
    const again = await activeAlerts(t, d.deviceId);
    expect(again.map((a) => [a.id, a.count])).toEqual([[alert.id, 2]]);
    await send({ battery: { pct: 50, charging: true } }, { seq: 51 });
    await send({ battery: { pct: 50, charging: true } }, { seq: 52 });
    expect(await activeAlerts(t, d.deviceId)).toEqual([]);
    expect(await outboxTypes(t, alert.id)).toEqual(['alert.opened', 'alert.resolved']);
  });

  it('acknowledges and resolves by hand, filters the list, and refuses a bad transition', async () => {
    const { d, sendCase } = await terminal('T3');
    await sendCase({ security: { tamper: true } });
    const [alert] = await activeAlerts(t, d.deviceId);
    const ack = await t.api('POST', `/api/v1/alerts/${alert.id}/ack`);
    expect(ack.body).toMatchObject({ state: 'acknowledged', acknowledgedBy: expect.any(String) });
    expect((await t.api('POST', `/api/v1/alerts/${alert.id}/ack`)).status).toBe(422);
    const filtered = await t.api(
      'GET',
      `/api/v1/alerts?severity=critical&model=T3&merchant=${d.merchantId}&rule=rule_tamper`,
    );
    expect(filtered.body.items.map((a: { id: string }) => a.id)).toEqual([alert.id]);
    expect((await t.api('GET', `/api/v1/alerts?state=open&device=${d.deviceId}`)).body.items).toEqual([]);
    const resolved = await t.api('POST', `/api/v1/alerts/${alert.id}/resolve`);
    expect(resolved.body).toMatchObject({ state: 'resolved', resolution: 'manual' });
    expect(await outboxTypes(t, alert.id)).toEqual(['alert.opened', 'alert.acknowledged', 'alert.resolved']);
    const ev = await t.app.db
      .selectFrom('outbox_events')
      .select('data')
      .where('subject_id', '=', alert.id)
      .where('type', '=', 'alert.opened')
      .executeTakeFirstOrThrow();
    expect(ev.data).toMatchObject({
      alertId: alert.id,
      deviceId: d.deviceId,
      severity: 'critical',
      merchantId: d.merchantId,
      model: 'T3',
      tags: [],
    });
  });

  it('after a resolve by hand, a condition that persists debounces again before it re-opens', async () => {
    const { d, sendCase } = await terminal();
    const low = { battery: { pct: 10, charging: false } };
    await sendCase(low);
    await sendCase(low);
    const [alert] = await activeAlerts(t, d.deviceId);
    expect(alert).toMatchObject({ ruleId: 'rule_battery_low', state: 'open' });
    expect((await t.api('POST', `/api/v1/alerts/${alert.id}/resolve`)).body).toMatchObject({ state: 'resolved' });
    await sendCase(low); // the rule starts afresh: one breach is not yet two
    expect(await activeAlerts(t, d.deviceId)).toEqual([]);
    await sendCase(low);
    const [again] = await activeAlerts(t, d.deviceId);
    expect(again).toMatchObject({ ruleId: 'rule_battery_low', state: 'open' });
    expect(again.id).not.toBe(alert.id);
  });

  it('serves rule CRUD: defaults listed, a custom scoped rule with a duration fires, editing and deleting it', async () => {
    const list = await t.api('GET', '/api/v1/health-rules');
    expect(list.body.items.filter((r: { builtin: boolean }) => r.builtin)).toHaveLength(14);
    const created = await t.api('POST', '/api/v1/health-rules', {
      name: 'CPU pegged',
      metric: 'sys.cpuPct',
      comparison: '>',
      threshold: 90,
      clearThreshold: 70,
      forSeconds: 120,
      severity: 'info',
      action: 'alert',
      scope: { tags: ['lane-9'] },
      remediation: 'check the payment app',
    });
    expect(created.status).toBe(201);
    const bad = await t.api('POST', '/api/v1/health-rules', {
      name: 'x',
      metric: '!!',
      comparison: '>',
      threshold: 1,
      severity: 'info',
      action: 'alert',
    });
    expect(bad.status).toBe(400);
    const inScope = await enrollDevice(t, { model: 'T2', tags: ['lane-9'] });
    const outOfScope = await enrollDevice(t, { model: 'T2' });
    for (const d of [inScope, outOfScope]) {
      const client = await connectDevice(t.app, d);
      clients.push(client);
      const send = sender(t, clock, client, d.deviceId);
      for (let i = 0; i < 3; i++) await send({ sys: { cpuPct: 99 } });
    }
    const fired = (await t.api('GET', `/api/v1/alerts?rule=${created.body.id}`)).body.items;
    expect(fired.map((a: { deviceId: string }) => a.deviceId)).toEqual([inScope.deviceId]);
    const put = await t.api('PUT', `/api/v1/health-rules/${created.body.id}`, {
      ...created.body,
      id: undefined,
      builtin: undefined,
      createdAt: undefined,
      updatedAt: undefined,
      severity: 'warning',
    });
    expect(put.status).toBe(200);
    expect(put.body.severity).toBe('warning');
    expect((await t.api('DELETE', `/api/v1/health-rules/${created.body.id}`)).status).toBe(204);
    expect((await t.api('GET', `/api/v1/alerts?rule=${created.body.id}&state=active`)).body.items).toEqual([]);
    expect((await t.api('GET', `/api/v1/health-rules/${created.body.id}`)).status).toBe(404);
  });
});
