import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { eventMatches, type HookEnvelope } from './events.ts';
import { pagerDutyBody, slackBody } from './formats.ts';
import { createSecretBox, newWebhookSecret, signatureHeader } from './secrets.ts';

const env = (type: string, data: Record<string, unknown>, subject = { type: 'alert', id: 'alr_1' }): HookEnvelope => ({
  id: 'evt_1',
  type,
  version: 1,
  occurredAt: '2026-01-05T12:00:00.000Z',
  subject,
  data,
});

describe('hook formats, matching and secrets', () => {
  it('maps alert events to PagerDuty trigger/acknowledge/resolve with the alert id as dedup_key', () => {
    const data = {
      alertId: 'alr_1',
      severity: 'critical',
      summary: 'printer jammed',
      deviceId: 'dev_1',
      model: 'T2',
      merchantId: 'mer_1',
    };
    const trigger = pagerDutyBody(env('alert.opened', data), 'rk');
    expect(trigger).toMatchObject({
      routing_key: 'rk',
      event_action: 'trigger',
      dedup_key: 'alr_1',
      payload: { severity: 'critical', source: 'dev_1', component: 'T2' },
    });
    expect(JSON.stringify(trigger)).toContain('printer jammed');
    expect(pagerDutyBody(env('alert.acknowledged', data), 'rk')).toEqual({
      routing_key: 'rk',
      event_action: 'acknowledge',
      dedup_key: 'alr_1',
      client: 'posfleet',
    });
    expect(pagerDutyBody(env('alert.resolved', data), 'rk')).toMatchObject({
      event_action: 'resolve',
      dedup_key: 'alr_1',
    });
    expect(pagerDutyBody(env('rollout.paused', {}, { type: 'rollout', id: 'ro_1' }), 'rk')).toMatchObject({
      event_action: 'trigger',
      dedup_key: 'evt_1',
      payload: { severity: 'warning' },
    });
  });

  it('writes a readable Slack message', () => {
    const body = slackBody(
      env('device.enrolled', { deviceId: 'dev_1', serial: 'SN-1', model: 'T2' }, { type: 'device', id: 'dev_1' }),
    );
    expect(body.text).toContain('device.enrolled · terminal SN-1 (T2)');
    expect(JSON.stringify(body.blocks)).toContain('*Model*\\nT2');
  });

  it('matches types, prefixes and filters; a filter passes events without its field', () => {
    const sub = { events: ['alert.*', 'rollout.paused'], filter: { severity: ['critical'], tags: ['pilot'] } };
    expect(eventMatches(sub, env('alert.opened', { severity: 'critical', tags: ['pilot', 'x'] }))).toBe(true);
    expect(eventMatches(sub, env('alert.opened', { severity: 'warning', tags: ['pilot'] }))).toBe(false);
    expect(eventMatches(sub, env('alert.opened', { severity: 'critical', tags: ['other'] }))).toBe(false);
    expect(eventMatches(sub, env('rollout.paused', {}))).toBe(true);
    expect(eventMatches(sub, env('device.enrolled', {}))).toBe(false);
    expect(
      eventMatches({ events: ['*'], filter: { merchantIds: ['m1'] } }, env('device.enrolled', { merchantId: null })),
    ).toBe(false);
  });

  it('signs the Standard Webhooks way and seals secrets bound to their hook', async () => {
    const secret = newWebhookSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const expected = createHmac('sha256', Buffer.from(secret.slice(6), 'base64'))
      .update('msg_1.1700000000.{"a":1}')
      .digest('base64');
    expect(signatureHeader([secret], 'msg_1', 1_700_000_000, '{"a":1}')).toBe(`v1,${expected}`);
    expect(signatureHeader([secret, newWebhookSecret()], 'msg_1', 1, '{}').split(' ')).toHaveLength(2);
    const box = createSecretBox({ keySetting: Buffer.alloc(32, 7).toString('base64'), dataDir: '/nonexistent' });
    const sealed = await box.seal(secret, 'hk_1');
    expect(sealed).not.toContain(secret.slice(6));
    expect(await box.open(sealed, 'hk_1')).toBe(secret);
    await expect(box.open(sealed, 'hk_2')).rejects.toThrow(/cannot open/);
  });
});
