// Alerting hooks end to end over real local receivers, with a manual clock:
// signing, retries on schedule, ordering, exhaustion and disabling, PagerDuty.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../server/lib/clock.ts';
import { enrollDevice, metricsText, seriesValue, startTestApp, type TestApp } from './helpers/app.ts';
import { dbKind } from './helpers/db.ts';
import { startReceiver, verify, type Receiver } from './hooks.helpers.ts';

export const HOOKS_TEST_KEY = Buffer.alloc(32, 42).toString('base64');
const S = 1_000;
const MIN = 60 * S;
const H = 60 * MIN;

describe(`alerting hooks (${dbKind()})`, () => {
  const clock = new ManualClock();
  const receivers: Receiver[] = [];
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({
      clock,
      config: { hooksSecretKey: HOOKS_TEST_KEY, hooksTimeoutMs: 300, hooksDisableAfterMs: 24 * H },
    });
  });
  afterAll(async () => {
    await t.stop();
    await Promise.all(receivers.map((r) => r.close()));
  });

  async function receiver(script?: Parameters<typeof startReceiver>[0]) {
    const r = await startReceiver(script);
    receivers.push(r);
    return r;
  }
  async function subscribe(body: Record<string, unknown>) {
    const res = await t.api('POST', '/api/v1/hooks', body);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body as { id: string; secret: string };
  }
  async function emit(type: string, data: Record<string, unknown>, subject?: { type: string; id: string }) {
    const { outbox } = t.app;
    const id = await t.app.db.transaction().execute((trx) => outbox.add(trx, { type, subject, data }));
    outbox.notify();
    return id;
  }
  const deliveries = async (hookId: string) =>
    (await t.api('GET', `/api/v1/hooks/${hookId}/deliveries?limit=100`)).body.items as any[];
  const nowS = () => Math.floor(clock.nowMs() / 1000);

  it('delivers a signed device.enrolled webhook for an enrolment, filtered by merchant', async () => {
    const r = await receiver();
    const m = await t.api('POST', '/api/v1/merchants', { name: 'hooked shop', timezone: 'Europe/Berlin' });
    const hook = await subscribe({
      url: r.url,
      events: ['device.enrolled'],
      filter: { merchantIds: [m.body.id] },
      description: 'desk',
    });
    expect(hook.secret).toMatch(/^whsec_/);
    const d = await enrollDevice(t, { merchantId: m.body.id, model: 'T1', tags: ['pilot'] });
    await enrollDevice(t); // another merchant: filtered out
    await t.app.hooks.runDue();
    expect(r.got).toHaveLength(1);
    const [got] = r.got;
    expect(verify(hook.secret, got, nowS())).toBe(true);
    expect(verify(hook.secret, { ...got, body: got.body.replace('T1', 'T9') }, nowS())).toBe(false);
    expect(got.json).toMatchObject({
      type: 'device.enrolled',
      version: 1,
      occurredAt: clock.now().toISOString(),
      subject: { type: 'device', id: d.deviceId },
      data: {
        deviceId: d.deviceId,
        merchantId: m.body.id,
        model: 'T1',
        tags: ['pilot'],
        serial: d.serial,
        via: 'enrollment',
      },
    });
    expect(got.json.id).toMatch(/^evt_/);
    const [log] = await deliveries(hook.id);
    expect(log).toMatchObject({
      id: got.headers['webhook-id'],
      state: 'delivered',
      attempts: 1,
      eventType: 'device.enrolled',
      requestBody: got.body,
    });
    expect(log.attemptLog).toEqual([expect.objectContaining({ attempt: 1, status: 200, error: null })]);
    const listed = await t.api('GET', '/api/v1/hooks');
    expect(JSON.stringify(listed.body)).not.toContain(hook.secret.slice(6));
    const metrics = await metricsText(t);
    expect(seriesValue(metrics, 'posfleet_hook_attempts_total{result="delivered"}')).toBeGreaterThanOrEqual(1);
    expect(metrics).toMatch(/^posfleet_hook_attempt_seconds_count \d+$/m);
    expect((await t.api('DELETE', `/api/v1/hooks/${hook.id}`)).status).toBe(204);
    expect((await t.api('GET', `/api/v1/hooks/${hook.id}`)).status).toBe(404);
  });

  it('retries on schedule with the same id, and holds later events of the subscription until then', async () => {
    const r = await receiver((n) => (n < 3 ? 500 : 200));
    const hook = await subscribe({ url: r.url, events: ['alert.opened'] });
    const first = await emit(
      'alert.opened',
      { alertId: 'alr_a', severity: 'critical' },
      { type: 'alert', id: 'alr_a' },
    );
    await t.app.hooks.runDue();
    expect(r.got).toHaveLength(1);
    const second = await emit(
      'alert.opened',
      { alertId: 'alr_b', severity: 'critical' },
      { type: 'alert', id: 'alr_b' },
    );
    await t.app.hooks.runDue();
    expect(r.got).toHaveLength(1); // event 2 waits behind event 1's retry

    clock.advance(5 * S - 1);
    await t.app.hooks.runDue();
    expect(r.got).toHaveLength(1);
    clock.advance(1);
    await t.app.hooks.runDue();
    expect(r.got).toHaveLength(2);
    clock.advance(5 * MIN);
    await t.app.hooks.runDue();
    expect(r.got).toHaveLength(3);
    clock.advance(30 * MIN);
    await t.app.hooks.runDue();
    expect(r.got.map((g) => g.json.id)).toEqual([first, first, first, first, second]);
    expect(new Set(r.got.slice(0, 4).map((g) => g.headers['webhook-id'])).size).toBe(1);
    const [later, earlier] = await deliveries(hook.id);
    expect(earlier).toMatchObject({ state: 'delivered', attempts: 4, eventId: first });
    expect(earlier.attemptLog.map((a: any) => a.status)).toEqual([500, 500, 500, 200]);
    expect(later).toMatchObject({ state: 'delivered', attempts: 1, eventId: second });
    expect((await t.api('GET', `/api/v1/hooks/${hook.id}`)).body.failingSince).toBeNull();
    await t.api('DELETE', `/api/v1/hooks/${hook.id}`);
  });

  it('times out on a receiver that never answers, exhausts, disables the endpoint and emits hook.disabled', async () => {
    const silent = await receiver(() => 'hang');
    const watcher = await receiver();
    const hook = await subscribe({ url: silent.url, events: ['rollout.*'] });
    const watch = await subscribe({ url: watcher.url, events: ['hook.disabled'] });
    await emit('rollout.paused', { rolloutId: 'ro_1', reason: 'failure threshold' }, { type: 'rollout', id: 'ro_1' });
    await t.app.hooks.runDue();
    for (const delay of [5 * S, 5 * MIN, 30 * MIN, 2 * H, 5 * H, 10 * H, 10 * H]) {
      clock.advance(delay);
      await t.app.hooks.runDue();
    }
    expect(silent.got).toHaveLength(8);
    const [d] = await deliveries(hook.id);
    expect(d.state).toBe('exhausted');
    expect(d.attemptLog).toHaveLength(8);
    expect(d.attemptLog[0].error).toMatch(/timeout after 300 ms/);
    const after = (await t.api('GET', `/api/v1/hooks/${hook.id}`)).body;
    expect(after).toMatchObject({ state: 'disabled', disabledReason: expect.stringContaining('timeout') });
    const metrics = await metricsText(t);
    expect(seriesValue(metrics, 'posfleet_hooks_disabled_total')).toBeGreaterThanOrEqual(1);
    expect(seriesValue(metrics, 'posfleet_hook_attempts_total{result="failed"}')).toBeGreaterThanOrEqual(8);
    // Other files' endpoints share this database: look at ours only.
    const ours = watcher.got.map((g) => g.json).filter((e) => e.subject?.id === hook.id);
    expect(ours).toEqual([
      expect.objectContaining({
        type: 'hook.disabled',
        data: expect.objectContaining({ hookId: hook.id, url: silent.url }),
      }),
    ]);

    clock.advance(H); // a disabled endpoint gets nothing more
    await emit('rollout.completed', { rolloutId: 'ro_1' }, { type: 'rollout', id: 'ro_1' });
    await t.app.hooks.runDue();
    expect(silent.got).toHaveLength(8);
    expect((await t.api('POST', `/api/v1/hooks/${hook.id}/test`)).status).toBe(409);
    expect((await t.api('POST', `/api/v1/hooks/${hook.id}/enable`)).body.state).toBe('active');
    await Promise.all([t.api('DELETE', `/api/v1/hooks/${hook.id}`), t.api('DELETE', `/api/v1/hooks/${watch.id}`)]);
  });

  it('speaks PagerDuty Events v2: trigger then resolve with the same dedup_key', async () => {
    const r = await receiver(() => 202);
    const hook = await subscribe({
      url: r.url,
      events: ['alert.opened', 'alert.resolved'],
      format: 'pagerduty',
      config: { routingKey: 'R0UTINGKEY123' },
      filter: { severity: ['critical'] },
    });
    const alert = { type: 'alert', id: 'alr_pd1' };
    const facts = { alertId: 'alr_pd1', severity: 'critical', summary: 'printer jam', deviceId: 'dev_x', model: 'T2' };
    await emit('alert.opened', { alertId: 'alr_minor', severity: 'warning' }, { type: 'alert', id: 'alr_minor' }); // filtered out
    await emit('alert.opened', facts, alert);
    clock.advance(MIN);
    await emit('alert.resolved', facts, alert);
    await t.app.hooks.runDue();
    expect(r.got.map((g) => [g.json.event_action, g.json.dedup_key, g.json.routing_key])).toEqual([
      ['trigger', 'alr_pd1', 'R0UTINGKEY123'],
      ['resolve', 'alr_pd1', 'R0UTINGKEY123'],
    ]);
    expect(r.got[0].json.payload).toMatchObject({
      severity: 'critical',
      source: 'dev_x',
      summary: expect.stringContaining('printer jam'),
    });
    expect((await t.api('GET', `/api/v1/hooks/${hook.id}`)).body.config.routingKey).toBe('…Y123');
    await t.api('DELETE', `/api/v1/hooks/${hook.id}`);
  });

  it('signs with both secrets during a rotation overlap, then with the new one only', async () => {
    const r = await receiver();
    const hook = await subscribe({ url: r.url, events: ['hook.ping'], format: 'slack' });
    const rotated = await t.api('POST', `/api/v1/hooks/${hook.id}/rotate-secret`, { overlapSeconds: 3600 });
    expect(rotated.status).toBe(200);
    const ping = await t.api('POST', `/api/v1/hooks/${hook.id}/test`);
    expect(ping.status).toBe(202);
    await t.app.hooks.runDue();
    expect(String(r.got[0].headers['webhook-signature']).split(' ')).toHaveLength(2);
    expect(verify(hook.secret, r.got[0], nowS()) && verify(rotated.body.secret, r.got[0], nowS())).toBe(true);
    expect(r.got[0].json.text).toContain('hook.ping');
    clock.advance(3600 * S + 1);
    const again = await t.api('POST', `/api/v1/deliveries/${ping.body.id}/redeliver`);
    expect(again.status).toBe(202);
    await t.app.hooks.runDue();
    expect(r.got[1].headers['webhook-id']).toBe(ping.body.id);
    expect(verify(rotated.body.secret, r.got[1], nowS())).toBe(true);
    expect(verify(hook.secret, r.got[1], nowS())).toBe(false);
    expect((await t.api('GET', `/api/v1/deliveries/${ping.body.id}`)).body).toMatchObject({
      state: 'delivered',
      attempts: 2,
    });
    await t.api('DELETE', `/api/v1/hooks/${hook.id}`);
  });

  it('writes device.decommissioned and command.failed (expired) in the changing transaction', async () => {
    const r = await receiver();
    const m = await t.api('POST', '/api/v1/merchants', { name: 'events shop', timezone: 'UTC' });
    const hook = await subscribe({
      url: r.url,
      events: ['device.decommissioned', 'command.failed'],
      filter: { merchantIds: [m.body.id], models: ['T3'] },
    });
    const d = await enrollDevice(t, { merchantId: m.body.id, model: 'T3' });
    const cmd = await t.api('POST', `/api/v1/devices/${d.deviceId}/commands`, { type: 'ping', ttlSeconds: 10 });
    clock.advance(11 * S);
    expect(await t.app.commands.expireDue()).toBeGreaterThanOrEqual(1);
    expect((await t.api('DELETE', `/api/v1/devices/${d.deviceId}`)).status).toBe(200);
    await t.app.hooks.runDue();
    expect(r.got.map((g) => g.json.type)).toEqual(['command.failed', 'device.decommissioned']);
    expect(r.got[0].json.data).toMatchObject({
      commandId: cmd.body.id,
      commandType: 'ping',
      state: 'expired',
      deviceId: d.deviceId,
      model: 'T3',
    });
    expect(r.got[1].json.data).toMatchObject({ deviceId: d.deviceId, previousStatus: 'active', merchantId: m.body.id });
    await t.api('DELETE', `/api/v1/hooks/${hook.id}`);
  });

  it('changes an endpoint in place: new URL and events apply, the secret and the log stay', async () => {
    const before = await receiver();
    const after = await receiver();
    const hook = await subscribe({ url: before.url, events: ['device.enrolled'] });
    await enrollDevice(t);
    await t.app.hooks.runDue();
    expect(before.got).toHaveLength(1);
    const patched = await t.api('PATCH', `/api/v1/hooks/${hook.id}`, {
      url: after.url,
      events: ['device.*'],
      description: 'moved',
    });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    expect(patched.body).toMatchObject({ url: after.url, events: ['device.*'], description: 'moved', state: 'active' });
    await enrollDevice(t);
    await t.app.hooks.runDue();
    expect(before.got).toHaveLength(1);
    expect(after.got).toHaveLength(1);
    expect(verify(hook.secret, after.got[0], nowS())).toBe(true); // same secret
    expect(await deliveries(hook.id)).toHaveLength(2); // same log
    expect((await t.api('PATCH', `/api/v1/hooks/${hook.id}`, {})).status).toBe(400);
    expect((await t.api('PATCH', `/api/v1/hooks/${hook.id}`, { secret: 'x' })).status).toBe(400);
    expect((await t.api('PATCH', `/api/v1/hooks/${hook.id}`, { format: 'pagerduty' })).body.error.code).toBe(
      'routing_key_required',
    );
    expect((await t.api('PATCH', '/api/v1/hooks/hk_nope', { description: 'x' })).status).toBe(404);
    const operator = (await t.api('POST', '/api/v1/api-keys', { name: 'op2', role: 'operator' })).body.token;
    expect((await t.api('PATCH', `/api/v1/hooks/${hook.id}`, { description: 'x' }, operator)).status).toBe(403);
    const audit = await t.api('GET', `/api/v1/audit?targetType=hook&targetId=${hook.id}`);
    expect(audit.body.items[0]).toMatchObject({
      action: 'hook.updated',
      details: { fields: ['url', 'events', 'description'] },
    });
    await t.api('DELETE', `/api/v1/hooks/${hook.id}`);
  });

  it('validates subscriptions and guards roles', async () => {
    expect(
      (
        await t.api('POST', '/api/v1/hooks', {
          url: 'http://127.0.0.1:1/x',
          events: ['alert.opened'],
          format: 'pagerduty',
        })
      ).body.error.code,
    ).toBe('routing_key_required');
    expect((await t.api('POST', '/api/v1/hooks', { url: 'not a url', events: ['alert.opened'] })).status).toBe(400);
    expect(
      (await t.api('POST', '/api/v1/hooks', { url: 'http://127.0.0.1:1/x', events: ['Alert Opened'] })).status,
    ).toBe(400);
    const operator = (await t.api('POST', '/api/v1/api-keys', { name: 'op', role: 'operator' })).body.token;
    expect(
      (await t.api('POST', '/api/v1/hooks', { url: 'http://127.0.0.1:1/x', events: ['*'] }, operator)).status,
    ).toBe(403);
    expect((await t.api('GET', '/api/v1/hooks', undefined, operator)).status).toBe(200);
    const hook = (await t.api('POST', '/api/v1/hooks', { url: 'http://127.0.0.1:1/x', events: ['*'] })).body;
    expect((await t.api('POST', `/api/v1/hooks/${hook.id}/rotate-secret`, { overlapSeconds: -1 })).status).toBe(400);
    expect((await t.api('POST', `/api/v1/hooks/${hook.id}/rotate-secret`)).body.previousSecretValidUntil).toBeTruthy();
    await t.api('DELETE', `/api/v1/hooks/${hook.id}`);
    expect((await t.api('POST', '/api/v1/deliveries/msg_nope/redeliver', undefined, operator)).status).toBe(404);
    const doc = await t.api('GET', '/openapi.json', undefined, null);
    expect(Object.keys(doc.body.paths)).toEqual(
      expect.arrayContaining(['/api/v1/hooks', '/api/v1/hooks/{id}/deliveries', '/api/v1/deliveries/{id}/redeliver']),
    );
  });
});
