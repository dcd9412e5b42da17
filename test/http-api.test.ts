import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enrollDevice, startTestApp, uniqueSerial, type TestApp } from './helpers/app.ts';
import { dbKind } from './helpers/db.ts';

describe(`HTTP API (${dbKind()})`, () => {
  let t: TestApp;
  let viewer: string;
  let operator: string;

  beforeAll(async () => {
    t = await startTestApp();
    viewer = (await t.api('POST', '/api/v1/api-keys', { name: 'v', role: 'viewer' })).body.token;
    operator = (await t.api('POST', '/api/v1/api-keys', { name: 'o', role: 'operator' })).body.token;
  });
  afterAll(() => t.stop());

  it('serves health, readiness, metrics and the OpenAPI description', async () => {
    expect((await t.api('GET', '/healthz', undefined, null)).status).toBe(200);
    const ready = await t.api('GET', '/readyz', undefined, null);
    expect(ready.status).toBe(200);
    expect(ready.body.checks).toEqual({ database: true, broker: true, http: true });
    const metrics = await t.api('GET', '/metrics', undefined, null);
    expect(metrics.body).toContain('posfleet_http_request_duration_seconds');
    expect(metrics.body).toContain('posfleet_mqtt_connections');
    const doc = await t.api('GET', '/openapi.json', undefined, null);
    expect(Object.keys(doc.body.paths)).toEqual(
      expect.arrayContaining(['/api/v1/devices', '/api/v1/enroll', '/api/v1/devices/{id}/commands', '/api/v1/audit']),
    );
    expect((await t.api('GET', '/docs', undefined, null)).body).toContain('swagger');
  });

  it('answers 401 without a key or with an unknown one, in the error envelope', async () => {
    const none = await t.api('GET', '/api/v1/devices', undefined, null);
    expect(none.status).toBe(401);
    expect(none.body.error.code).toBe('unauthorized');
    expect((await t.api('GET', '/api/v1/devices', undefined, 'pfk_nope')).status).toBe(401);
  });

  it('lets a viewer read but not write (403), an operator write but not manage keys', async () => {
    expect((await t.api('GET', '/api/v1/devices', undefined, viewer)).status).toBe(200);
    const write = await t.api('POST', '/api/v1/merchants', { name: 'x', timezone: 'UTC' }, viewer);
    expect(write.status).toBe(403);
    expect(write.body.error.code).toBe('forbidden');
    expect((await t.api('POST', '/api/v1/merchants', { name: 'x', timezone: 'UTC' }, operator)).status).toBe(201);
    expect((await t.api('POST', '/api/v1/api-keys', { name: 'x', role: 'admin' }, operator)).status).toBe(403);
  });

  it('stops a revoked key at once', async () => {
    const key = await t.api('POST', '/api/v1/api-keys', { name: 'temp', role: 'viewer' });
    expect((await t.api('GET', '/api/v1/devices', undefined, key.body.token)).status).toBe(200);
    expect((await t.api('DELETE', `/api/v1/api-keys/${key.body.id}`)).status).toBe(204);
    expect((await t.api('GET', '/api/v1/devices', undefined, key.body.token)).status).toBe(401);
    const list = await t.api('GET', '/api/v1/api-keys?limit=500');
    expect(JSON.stringify(list.body)).not.toContain(key.body.token);
  });

  it('answers 400 naming the bad field', async () => {
    const res = await t.api('POST', '/api/v1/devices', { serial: 'bad serial!', model: 'T2' });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_request');
    expect(res.body.error.message).toContain("'serial'");
    const json = await t.api('POST', '/api/v1/merchants', '{"name":', undefined);
    expect(json.status).toBe(400);
    const tz = await t.api('POST', '/api/v1/merchants', { name: 'x', timezone: 'Mars/Olympus' });
    expect(tz.status).toBe(422);
    expect(tz.body.error.code).toBe('invalid_timezone');
  });

  it('answers 404 for unknown things and 409 for a taken serial', async () => {
    expect((await t.api('GET', '/api/v1/devices/dev_nope')).status).toBe(404);
    expect((await t.api('GET', '/api/v1/merchants/mer_nope')).body.error.code).toBe('merchant_not_found');
    const serial = uniqueSerial();
    expect((await t.api('POST', '/api/v1/devices', { serial, model: 'T2' })).status).toBe(201);
    const again = await t.api('POST', '/api/v1/devices', { serial, model: 'T2' });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('serial_taken');
  });

  it('pages through lists with limit and cursor', async () => {
    const m = await t.api('POST', '/api/v1/merchants', { name: 'paging', timezone: 'Asia/Tokyo' });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await t.api('POST', '/api/v1/devices', { serial: uniqueSerial(), model: 'T1', merchantId: m.body.id });
      ids.push(r.body.device.id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = `/api/v1/devices?merchant=${m.body.id}&limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const page = await t.api('GET', q);
      expect(page.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.items.map((d: { id: string }) => d.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(ids);
    expect((await t.api('GET', '/api/v1/devices?cursor=garbage!')).status).toBe(400);
  });

  it('filters devices by model, tag, status and firmware range', async () => {
    const m = await t.api('POST', '/api/v1/merchants', { name: 'filters', timezone: 'UTC' });
    const mk = (model: string, firmware: string, tags: string[]) =>
      t.api('POST', '/api/v1/devices', { serial: uniqueSerial(), model, firmware, tags, merchantId: m.body.id });
    await mk('T1', '1.2.0', ['pilot']);
    await mk('T2', '2.1.0', ['pilot']);
    await mk('T2', '3.0.0', []);
    const base = `/api/v1/devices?merchant=${m.body.id}`;
    expect((await t.api('GET', `${base}&model=T2`)).body.items).toHaveLength(2);
    expect((await t.api('GET', `${base}&tag=pilot`)).body.items).toHaveLength(2);
    const range = await t.api('GET', `${base}&firmware=${encodeURIComponent('>=2.0.0 <3.0.0')}`);
    expect(range.body.items.map((d: { firmware: string }) => d.firmware)).toEqual(['2.1.0']);
    expect((await t.api('GET', `${base}&status=suspended`)).body.items).toHaveLength(0);
  });

  it('enrols with a token: uses counted, expiry and approval honoured', async () => {
    const m = await t.api('POST', '/api/v1/merchants', { name: 'enrol', timezone: 'America/New_York' });
    const tok = await t.api('POST', '/api/v1/enrollment-tokens', {
      merchantId: m.body.id,
      maxUses: 1,
      tags: ['lane-1'],
      requireApproval: true,
    });
    expect(tok.status).toBe(201);
    const body = { serial: uniqueSerial(), model: 'T3', firmware: '1.0.0' };
    const first = await t.api('POST', '/api/v1/enroll', body, tok.body.token);
    expect(first.status).toBe(201);
    expect(first.body.status).toBe('pending');
    expect(first.body.mqtt.clientId).toBe(first.body.deviceId);
    const second = await t.api('POST', '/api/v1/enroll', { ...body, serial: uniqueSerial() }, tok.body.token);
    expect(second.status).toBe(401);
    expect(second.body.error.code).toBe('invalid_enrollment_token');
    const device = await t.api('GET', `/api/v1/devices/${first.body.deviceId}`);
    expect(device.body).toMatchObject({ status: 'pending', merchantId: m.body.id, tags: ['lane-1'] });
    const approved = await t.api('POST', `/api/v1/devices/${first.body.deviceId}/approve`);
    expect(approved.body.status).toBe('active');
    expect((await t.api('POST', '/api/v1/enroll', body, 'pfe_unknown')).status).toBe(401);
    const anonymous = await t.api('POST', '/api/v1/enroll', { serial: 'bad serial!' }, null);
    expect(anonymous.status).toBe(401); // the missing token is named before the body is judged
  });

  it('gives a token no more uses than it has when terminals race for them, and a refused enrolment takes none', async () => {
    const m = await t.api('POST', '/api/v1/merchants', { name: 'race', timezone: 'Europe/Berlin' });
    const tok = await t.api('POST', '/api/v1/enrollment-tokens', { merchantId: m.body.id, maxUses: 3 });
    const taken = uniqueSerial();
    expect(
      (await t.api('POST', '/api/v1/enroll', { serial: taken, model: 'T1', firmware: '1.0.0' }, tok.body.token)).status,
    ).toBe(201);
    const again = await t.api(
      'POST',
      '/api/v1/enroll',
      { serial: taken, model: 'T1', firmware: '1.0.0' },
      tok.body.token,
    );
    expect(again.status).toBe(409); // serial_taken: rolled back, the use is not spent
    const results = await Promise.all(
      Array.from({ length: 10 }, () =>
        t.api('POST', '/api/v1/enroll', { serial: uniqueSerial(), model: 'T1', firmware: '1.0.0' }, tok.body.token),
      ),
    );
    expect(results.map((r) => r.status).sort()).toEqual([201, 201, ...Array(8).fill(401)]);
    const tokens = await t.api('GET', '/api/v1/enrollment-tokens?limit=200');
    expect(tokens.body.items.find((x: { id: string }) => x.id === tok.body.id).uses).toBe(3);
    const devices = await t.api('GET', `/api/v1/devices?merchant=${m.body.id}&limit=50`);
    expect(devices.body.items).toHaveLength(3);
  });

  it('follows the device lifecycle and refuses transitions it does not allow', async () => {
    const d = await enrollDevice(t);
    const path = `/api/v1/devices/${d.deviceId}`;
    expect((await t.api('PATCH', path, { status: 'in_repair' })).body.status).toBe('in_repair');
    expect((await t.api('PATCH', path, { status: 'suspended' })).status).toBe(422);
    expect((await t.api('PATCH', path, { status: 'active' })).body.status).toBe('active');
    expect((await t.api('DELETE', path)).body.status).toBe('decommissioned');
    expect((await t.api('DELETE', path)).status).toBe(409);
    expect((await t.api('PATCH', path, { status: 'active' })).status).toBe(422);
  });

  it('records every operator change in the audit log', async () => {
    const d = await enrollDevice(t);
    await t.api('PATCH', `/api/v1/devices/${d.deviceId}`, { tags: ['audited'] }, operator);
    const audit = await t.api('GET', `/api/v1/audit?targetType=device&targetId=${d.deviceId}`, undefined, viewer);
    expect(audit.status).toBe(200);
    const actions = audit.body.items.map((e: { action: string }) => e.action);
    expect(actions).toEqual(['device.updated', 'device.enrolled']);
    expect(audit.body.items[0].actor.name).toBe('o');
    expect(audit.body.items[0].details).toEqual({ fields: ['tags'] });
  });
});
