// End to end: an agent-sim terminal whose printer fails raises an alert in the
// health module, and a signed alert.opened webhook reaches a real receiver
// within a second, through the production worker (woken by outbox.notify).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../agent-sim/clock.ts';
import { startFleet, type FleetHandle } from '../agent-sim/fleet.ts';
import { startTestApp, type TestApp } from './helpers/app.ts';
import { dbKind } from './helpers/db.ts';
import { startReceiver, verify, type Receiver } from './hooks.helpers.ts';

describe(`hooks end to end with agent-sim (${dbKind()})`, () => {
  let t: TestApp;
  let fleet: FleetHandle | undefined;
  let r: Receiver;
  const simClock = manualClock(Date.UTC(2026, 0, 5, 9, 0, 0));

  beforeAll(async () => {
    t = await startTestApp({ config: { hooksSecretKey: Buffer.alloc(32, 3).toString('base64') } });
    r = await startReceiver();
  });
  afterAll(async () => {
    await fleet?.stop();
    await t?.stop();
    await r?.close();
  });

  it('a failing printer raises alert.opened, delivered signed within a second', async () => {
    const m = await t.api('POST', '/api/v1/merchants', { name: 'Jam shop', timezone: 'UTC' });
    const hook = (
      await t.api('POST', '/api/v1/hooks', { url: r.url, events: ['alert.opened'], filter: { tags: ['hooks-e2e'] } })
    ).body;
    const tok = await t.api('POST', '/api/v1/enrollment-tokens', { merchantId: m.body.id, tags: ['hooks-e2e'] });
    t.app.hooks.start();
    fleet = await startFleet({
      server: t.app.baseUrl,
      enrollToken: tok.body.token,
      terminals: 2,
      models: ['T2'],
      seed: 77,
      clock: simClock,
      stateDir: null,
      rampPerSecond: 0,
      profiles: 'failing-printer@1',
    });
    await fleet.started;
    await fleet.waitForOnline(2, 20_000);
    const printerAlert = () => r.got.find((g) => /printer/.test(String(g.json.data.ruleId)));
    for (let i = 0; i < 1_500 && !printerAlert(); i++) {
      await simClock.advance(60_000);
      await new Promise((res) => setTimeout(res, 5));
    }
    for (let i = 0; i < 100 && !printerAlert(); i++) await new Promise((res) => setTimeout(res, 20));
    const got = printerAlert()!;
    expect(got).toBeDefined();
    expect(verify(hook.secret, got, Math.floor(Date.now() / 1000))).toBe(true);
    expect(got.json).toMatchObject({
      type: 'alert.opened',
      version: 1,
      data: { merchantId: m.body.id, model: 'T2', tags: ['hooks-e2e'] },
    });
    const alerts = (await t.api('GET', `/api/v1/alerts?limit=500`)).body.items as { id: string; openedAt: string }[];
    const alert = alerts.find((a) => a.id === got.json.data.alertId)!;
    expect(got.receivedAt - new Date(alert.openedAt).getTime()).toBeLessThan(1_000);
    expect((await t.api('DELETE', `/api/v1/hooks/${hook.id}`)).status).toBe(204);
  });
});
