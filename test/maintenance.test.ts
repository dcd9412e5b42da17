// Tickets (warranty, SLA, state machine, in-repair muting, swap),
// predictions opening tickets, and the periodic inspection report.
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../server/lib/clock.ts';
import { randomChars } from '../server/lib/ids.ts';
import { connectDevice, enrollDevice, metricsText, seriesValue, startTestApp, type TestApp } from './helpers/app.ts';
import { dbKind } from './helpers/db.ts';
import { activeAlerts, outboxTypes, sender } from './helpers/health.ts';
import { rolloutKit } from './helpers/rollout-kit.ts';

describe(`maintenance (${dbKind()})`, () => {
  const clock = new ManualClock(Date.UTC(2026, 2, 2, 8, 0, 0));
  let t: TestApp;
  const clients: MqttClient[] = [];
  beforeAll(async () => {
    t = await startTestApp({ clock });
  });
  afterAll(async () => {
    for (const c of clients) c.end(true);
    await t.stop();
  });

  async function terminal(opts: { model?: string; tags?: string[]; warrantyUntil?: string } = {}) {
    const d = await enrollDevice(t, { model: opts.model ?? 'T1', tags: opts.tags });
    if (opts.warrantyUntil)
      await t.api('PATCH', `/api/v1/devices/${d.deviceId}`, { warrantyUntil: opts.warrantyUntil });
    const client = await connectDevice(t.app, d);
    clients.push(client);
    return { d, send: sender(t, clock, client, d.deviceId) };
  }

  it('decides the warranty and explains it: free in warranty, billable once damage is recorded or out of warranty', async () => {
    const { d, send } = await terminal({ warrantyUntil: '2027-01-31' });
    await send({ security: { tamper: true } });
    const [ticket] = (await t.api('GET', `/api/v1/tickets?device=${d.deviceId}`)).body.items;
    expect(ticket).toMatchObject({
      kind: 'repair',
      part: 'pinpad',
      severity: 'critical',
      warranty: { billable: false, reason: expect.stringContaining('in warranty until 2027-01-31') },
    });
    expect(new Date(ticket.slaDueAt).getTime() - clock.nowMs()).toBe(4 * 3600_000);
    const damaged = await t.api('PATCH', `/api/v1/tickets/${ticket.id}`, {
      damage: true,
      damageNote: 'casing forced open',
    });
    expect(damaged.body.warranty).toEqual({ billable: true, reason: expect.stringContaining('casing forced open') });
    const old = await terminal({ warrantyUntil: '2025-12-31' });
    const manual = await t.api('POST', '/api/v1/tickets', {
      deviceId: old.d.deviceId,
      kind: 'part_replacement',
      part: 'display',
      severity: 'info',
    });
    expect(manual.status).toBe(201);
    expect(manual.body).toMatchObject({
      source: 'operator',
      state: 'open',
      warranty: { billable: true, reason: 'billable: warranty ended on 2025-12-31' },
    });
    expect(new Date(manual.body.slaDueAt).getTime() - clock.nowMs()).toBe(72 * 3600_000);
    expect(await outboxTypes(t, ticket.id)).toEqual(['ticket.opened', 'ticket.updated']);
  });

  it('walks open → scheduled → in_progress → resolved: the device is in repair meanwhile and its alerts are muted', async () => {
    const { d, send } = await terminal({ warrantyUntil: '2027-01-31' });
    const created = await t.api('POST', '/api/v1/tickets', { deviceId: d.deviceId, kind: 'repair', part: 'printer' });
    const id = created.body.id;
    expect(
      (
        await t.api('PATCH', `/api/v1/tickets/${id}`, {
          state: 'scheduled',
          scheduledFor: '2026-03-03T09:00:00Z',
          assignee: 'tech-7',
        })
      ).body.state,
    ).toBe('scheduled');
    expect((await t.api('PATCH', `/api/v1/tickets/${id}`, { state: 'open' })).status).toBe(422);
    await t.api('PATCH', `/api/v1/tickets/${id}`, { state: 'in_progress' });
    expect((await t.api('GET', `/api/v1/devices/${d.deviceId}`)).body.status).toBe('in_repair');
    await send({ security: { tamper: true } });
    const [muted] = await activeAlerts(t, d.deviceId);
    expect(muted).toMatchObject({ ruleId: 'rule_tamper', muted: true, ticketId: null });
    expect(await outboxTypes(t, muted.id)).toEqual([]);
    expect((await t.api('GET', `/api/v1/devices/${d.deviceId}/health`)).body.health).toBe('ok');
    const done = await t.api('PATCH', `/api/v1/tickets/${id}`, {
      state: 'resolved',
      resolution: 'print head replaced',
    });
    expect(done.body).toMatchObject({ state: 'resolved', closedAt: clock.now().toISOString(), slaBreached: false });
    expect((await t.api('GET', `/api/v1/devices/${d.deviceId}`)).body.status).toBe('active');
    expect((await activeAlerts(t, d.deviceId))[0].muted).toBe(false);
    expect((await t.api('GET', `/api/v1/devices/${d.deviceId}/health`)).body.health).toBe('critical');
    expect((await t.api('PATCH', `/api/v1/tickets/${id}`, { state: 'in_progress' })).status).toBe(422);
  });

  it('swaps a broken terminal for a spare: merchant, tags and config move, the old one is retired', async () => {
    const { d } = await terminal({ tags: ['lane-2', 'pilot'] });
    await t.api('PATCH', `/api/v1/devices/${d.deviceId}`, {
      heartbeatIntervalS: 45,
      config: { receiptFooter: 'Danke' },
    });
    const spare = await t.api('POST', '/api/v1/devices', { serial: `SPARE-${Date.now()}`, model: 'T1' });
    const ticket = await t.api('POST', '/api/v1/tickets', {
      deviceId: d.deviceId,
      kind: 'repair',
      part: 'display',
      severity: 'warning',
    });
    await t.api('PATCH', `/api/v1/tickets/${ticket.body.id}`, { state: 'in_progress' });
    const swapped = await t.api('POST', `/api/v1/tickets/${ticket.body.id}/swap`, {
      spareDeviceId: spare.body.device.id,
    });
    expect(swapped.status).toBe(200);
    expect(swapped.body).toMatchObject({
      state: 'resolved',
      replacementDeviceId: spare.body.device.id,
      resolution: expect.stringContaining('swapped for'),
    });
    const now = (await t.api('GET', `/api/v1/devices/${spare.body.device.id}`)).body;
    expect(now).toMatchObject({
      merchantId: d.merchantId,
      tags: ['lane-2', 'pilot'],
      config: expect.objectContaining({ heartbeatIntervalS: 45, receiptFooter: 'Danke' }),
    });
    expect((await t.api('GET', `/api/v1/devices/${d.deviceId}`)).body.status).toBe('decommissioned');
    expect(await outboxTypes(t, ticket.body.id)).toEqual(['ticket.opened', 'ticket.updated', 'ticket.updated']);
    const again = await t.api('POST', `/api/v1/tickets/${ticket.body.id}/swap`, {
      spareDeviceId: spare.body.device.id,
    });
    expect(again.status).toBe(422);
  });

  it('finishes a swap that was cut short when it is sent again (every step may be repeated)', async () => {
    const { d } = await terminal({ tags: ['lane-3'] });
    const spare = await t.api('POST', '/api/v1/devices', { serial: `SPARE2-${Date.now()}`, model: 'T1' });
    const ticket = await t.api('POST', '/api/v1/tickets', {
      deviceId: d.deviceId,
      kind: 'repair',
      part: 'printer',
      severity: 'warning',
    });
    // As if an earlier attempt had moved the spare and retired the old terminal, then lost its database.
    await t.api('PATCH', `/api/v1/devices/${spare.body.device.id}`, { merchantId: d.merchantId, tags: ['lane-3'] });
    expect((await t.api('DELETE', `/api/v1/devices/${d.deviceId}`)).body.status).toBe('decommissioned');
    const swapped = await t.api('POST', `/api/v1/tickets/${ticket.body.id}/swap`, {
      spareDeviceId: spare.body.device.id,
    });
    expect(swapped.status).toBe(200);
    expect(swapped.body).toMatchObject({ state: 'resolved', replacementDeviceId: spare.body.device.id });
    expect((await t.api('GET', `/api/v1/devices/${spare.body.device.id}`)).body).toMatchObject({
      status: 'active',
      merchantId: d.merchantId,
      tags: ['lane-3'],
    });
  });

  it('predicts battery, print head and card reader wear and opens tickets within the lead time, once', async () => {
    const { d, send } = await terminal({ model: 'T1', warrantyUntil: '2027-01-31' });
    for (let day = 0; day < 8; day++) {
      clock.advance(86_400_000 - 60_000);
      await send({
        battery: { pct: 80, healthPct: 80 - day, charging: true },
        printer: { state: 'ok', linesPrinted: 2_700_000 + day * 20_000 },
        reader: { chipOk: 100 - 2 * day, chipErr: 2 * day },
      });
    }
    const first = await t.app.health.predictions.run(d.deviceId);
    expect(first.ticketsOpened).toHaveLength(3);
    const tickets = (await t.api('GET', `/api/v1/tickets?device=${d.deviceId}&source=prediction`)).body.items;
    expect(tickets.map((x: { kind: string; part: string }) => `${x.kind}/${x.part}`).sort()).toEqual([
      'battery_replacement/battery',
      'part_replacement/card_reader',
      'part_replacement/printer',
    ]);
    const health = (await t.api('GET', `/api/v1/devices/${d.deviceId}/health`)).body;
    const byKind = Object.fromEntries(
      health.predictions.map((p: { kind: string; dueInDays: number }) => [p.kind, p.dueInDays]),
    );
    expect(byKind).toEqual({ battery: 13, printer_head: 8, card_reader: 3 });
    expect(health.maintenanceDue).toMatchObject({
      kind: 'card_reader',
      inDays: 3,
      summary: 'maintenance due in about 3 days',
    });
    expect((await t.app.health.predictions.run(d.deviceId)).ticketsOpened).toEqual([]);
  });

  it('inspects the fleet, stores the report with verdicts, and reports fleet counts', async () => {
    const good = await terminal({ model: 'T2' });
    // The software check compares with the newest version in the fleet; tests share a database, so be the newest.
    await good.send(
      { printer: { state: 'ok' }, net: { type: 'ethernet', latencyMs: 20 }, security: { patchLevel: '2026-02-20' } },
      { firmware: '999.0.0' },
    );
    const bad = await terminal({ model: 'T2' });
    await bad.send({ printer: { state: 'jam' }, security: { patchLevel: '2025-09-01' } });
    // Behind the catalogue: an app released at 2.0.0 that no terminal runs yet.
    const app = `insp${randomChars(6)}`;
    await (await rolloutKit(t)).release('2.0.0', ['T2'], { component: `app:${app}` });
    const behind = await terminal({ model: 'T2' });
    await behind.send(
      { printer: { state: 'ok' }, net: { type: 'ethernet', latencyMs: 20 }, security: { patchLevel: '2026-02-20' } },
      { firmware: '999.0.0', apps: { [app]: '1.0.0' } },
    );
    const report = await t.app.health.inspection.run();
    expect(report.counts.pass + report.counts.attention + report.counts.fail).toBe(report.devices);
    const latest = await t.api('GET', '/api/v1/reports/inspections/latest?limit=10000');
    expect(latest.body.id).toBe(report.id);
    const verdicts = Object.fromEntries(
      latest.body.results.map((r: { deviceId: string; verdict: string }) => [r.deviceId, r]),
    );
    expect(verdicts[good.d.deviceId].verdict).toBe('pass');
    expect(verdicts[behind.d.deviceId]).toMatchObject({
      verdict: 'attention',
      checks: { software: { verdict: 'attention', detail: `${app} 1.0.0 < 2.0.0` } },
    });
    expect(verdicts[bad.d.deviceId]).toMatchObject({
      verdict: 'fail',
      checks: { printer: { verdict: 'fail' }, software: { verdict: 'attention' }, securityPatch: { verdict: 'fail' } },
    });
    expect(await outboxTypes(t, report.id)).toEqual(['inspection.completed']);
    const fleet = await t.api('GET', '/api/v1/reports/fleet');
    expect(fleet.body.byModel.T2).toBeGreaterThanOrEqual(2);
    expect(fleet.body.byFirmware['999.0.0']).toBeGreaterThanOrEqual(1);
    expect(fleet.body.byPresence.online).toBeGreaterThanOrEqual(2);
    expect(Object.keys(fleet.body.byHealth)).toEqual(expect.arrayContaining(['ok']));
    expect(fleet.body.byMerchant[good.d.merchantId]).toBe(1);
  });

  it('shows the fleet in /metrics: terminals by presence, open alerts and tickets, tickets past their SLA', async () => {
    const { send } = await terminal();
    await send({ security: { tamper: true } }); // a critical alert and its ticket
    // Other test files share the database and move its counts: ours are at least there.
    const after = await metricsText(t);
    expect(seriesValue(after, 'posfleet_devices{presence="online"}')).toBeGreaterThanOrEqual(1);
    expect(seriesValue(after, 'posfleet_alerts_open{severity="critical"}')).toBeGreaterThanOrEqual(1);
    expect(seriesValue(after, 'posfleet_tickets_open{state="open"}')).toBeGreaterThanOrEqual(1);
    clock.advance(5 * 3600_000); // past the critical ticket's 4 h SLA
    expect(seriesValue(await metricsText(t), 'posfleet_tickets_sla_breached')).toBeGreaterThanOrEqual(1);
    expect(after).toMatch(/^posfleet_hook_deliveries_waiting \d+$/m);
  });
});
