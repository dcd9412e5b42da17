// The OTA engine end to end: a fleet across three timezones, firmware rolled
// out in waves inside each terminal's local window; busy terminals defer,
// offline ones finish when they return, the server restarts mid-rollout, and a
// rollback brings the cohort back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../agent-sim/clock.ts';
import { startFleet, type FleetHandle } from '../agent-sim/fleet.ts';
import { ManualClock } from '../server/lib/clock.ts';
import { randomChars } from '../server/lib/ids.ts';
import { localTime } from '../server/rollouts/cron-window.ts';
import { startTestApp, type TestApp } from './helpers/app.ts';
import { dbKind } from './helpers/db.ts';
import { drive, rolloutKit, versionBase, type Kit } from './helpers/rollout-kit.ts';

const ZONES = ['Europe/Berlin', 'America/New_York', 'Asia/Tokyo'];
const PER_ZONE = 40;
const trading = [{ days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], open: '08:00', close: '20:00' }];

describe(`rollouts end to end (${dbKind()})`, () => {
  let t: TestApp;
  let kit: Kit;
  const fleets: FleetHandle[] = [];
  const serverClock = new ManualClock(Date.parse('2026-01-15T12:00:00Z'));
  const simClock = manualClock(Date.parse('2026-01-15T12:00:00Z'));
  const n = versionBase();
  const from = `1.${n}.0`;
  const tag = `e2e${randomChars(6)}`;
  const zoneOf = new Map<string, string>();

  beforeAll(async () => {
    t = await startTestApp({ clock: serverClock });
    kit = await rolloutKit(t);
    for (const [i, timezone] of ZONES.entries()) {
      const m = await t.api('POST', '/api/v1/merchants', { name: `shop ${timezone}`, timezone, tradingHours: trading });
      const tok = await t.api('POST', '/api/v1/enrollment-tokens', { merchantId: m.body.id, tags: [tag] });
      const f = await startFleet({
        server: t.app.baseUrl,
        enrollToken: tok.body.token,
        terminals: PER_ZONE,
        seed: n * 10 + i,
        clock: simClock,
        stateDir: null,
        rampPerSecond: 0,
        publicKey: kit.publicKeyPem,
        firmware: from,
        models: ['T1', 'T2'],
        profiles: 'busy:0.6@0.15',
      });
      fleets.push(f);
      await f.started;
      await f.waitForOnline(PER_ZONE, 60_000);
      for (const a of f.agents) zoneOf.set(a.deviceId!, timezone);
    }
  }, 180_000);
  afterAll(async () => {
    for (const f of fleets) await f.stop();
    await t.stop();
  });

  const agents = () => fleets.flatMap((f) => [...f.agents]);
  const state = async (id: string) => (await t.api('GET', `/api/v1/rollouts/${id}`)).body;
  /**
   * A rollout that did not finish as expected: its counts, and up to three of
   * its terminals that did not succeed with what each says of itself (a job
   * still running blocks every later send: "busy with job …").
   */
  const why = async (id: string) => {
    const st = await state(id);
    const open = (await t.api('GET', `/api/v1/rollouts/${id}/devices?limit=500`)).body.items.filter(
      (d: { state: string }) => d.state !== 'succeeded',
    );
    const said = open.slice(0, 3).map((d: { deviceId: string }) => {
      const a = agents().find((x) => x.deviceId === d.deviceId);
      const job = a?.ota.activeJob;
      return {
        row: d,
        agent: a?.state,
        firmware: a?.firmware,
        activeJob: job,
        jobStatus: job ? a?.ota.lastStatus(job) : undefined,
        log: a?.logs.lines(12),
      };
    });
    return `${st.state} ${st.reason ?? ''} ${JSON.stringify(st.counts)} terminals: ${JSON.stringify(said)}`;
  };

  it('rolls out inside each terminal’s local window, through a restart and offline terminals, then rolls back', async () => {
    const target = await kit.release(`2.${n}.0`, ['T1', 'T2']);
    await kit.release(from, ['T1', 'T2']);
    const cohort = await t.api('POST', '/api/v1/cohorts', { name: `c-${tag}`, filter: { tags: [tag] } });
    const res = await t.api('POST', '/api/v1/rollouts', {
      name: 'nightly',
      artifactId: target.id,
      cohortId: cohort.body.id,
      waves: [{ percent: 10 }, { percent: 50 }, { percent: 100 }],
      window: { cron: '0 2 * * *', durationMinutes: 180, outsideTradingHours: true },
      soakMinutes: 20,
      minFinished: 5,
      successThreshold: 0.9,
      timeoutMinutes: 600,
      ratePerMinute: 100,
      maxInFlight: 60,
    });
    expect(res.status).toBe(201);
    const total = PER_ZONE * ZONES.length;
    expect(res.body.total).toBe(total);

    // Nothing is sent at noon UTC: no terminal's 02:00-05:00 window is open.
    await t.app.rollouts.engine.tick();
    expect((await state(res.body.id)).counts).toEqual({ pending: total });

    // Five Tokyo terminals lose their network until 18:00 UTC (03:00 in Tokyo).
    const tokyo = fleets[2].agents.slice(0, 5);
    for (const a of tokyo) a.setNetwork(false);
    let restarted = false;
    const steps = await drive({
      t: () => t,
      serverClock,
      simClock,
      serverStepMs: 15 * 60_000,
      simStepMs: 5_000,
      maxSteps: 400,
      done: async () => (await state(res.body.id)).state === 'completed',
      onStep: async (i) => {
        if (process.env.E2E_DEBUG && i % 6 === 0) {
          const st = await state(res.body.id);
          console.log(serverClock.now().toISOString(), st.state, st.currentWave, st.reason, JSON.stringify(st.counts));
          const bad = (await t.api('GET', `/api/v1/rollouts/${res.body.id}/devices?state=failed`)).body.items;
          if (bad.length) console.log(JSON.stringify(bad.map((d: { lastError: unknown }) => d.lastError)));
        }
        const now = serverClock.nowMs();
        if (now >= Date.parse('2026-01-15T18:00:00Z') && tokyo.some((a) => !a.connected))
          for (const a of tokyo) a.setNetwork(true);
        if (!restarted && now >= Date.parse('2026-01-15T17:30:00Z')) {
          restarted = true;
          const { httpPort, mqttPort } = t.app;
          const { dataDir } = t.app.config; // artifacts and the URL-signing key live there
          await t.stop();
          t = await startTestApp({
            clock: serverClock,
            config: { port: httpPort, mqttPort, dataDir },
            adminToken: t.adminToken,
          });
        }
      },
    });
    expect(restarted).toBe(true);
    console.log(`rollout completed after ${steps} steps, at ${serverClock.now().toISOString()}`);

    const done = await state(res.body.id);
    expect(done.counts, await why(res.body.id)).toEqual({ succeeded: total });
    expect(done.waves.reduce((s: number, w: { size: number }) => s + w.size, 0)).toBe(total);
    expect(agents().every((a) => a.firmware === target.version)).toBe(true);
    const listed = (await t.api('GET', `/api/v1/devices?tag=${tag}&limit=500`)).body.items;
    expect(listed.every((d: { firmware: string }) => d.firmware === target.version)).toBe(true);

    // Every update was sent inside its terminal's local 02:00-05:00 window.
    const rows = await t.app.db
      .selectFrom('rollout_devices')
      .select(['device_id', 'sent_at', 'sends'])
      .where('rollout_id', '=', res.body.id)
      .execute();
    for (const r of rows) {
      const hour = localTime(r.sent_at!.getTime(), zoneOf.get(r.device_id)!).hour;
      expect(hour >= 2 && hour < 5, `${r.device_id} sent at ${hour}h local`).toBe(true);
    }
    // Busy terminals deferred (a new attempt each time) and still finished.
    expect(rows.some((r) => r.sends > 1)).toBe(true);

    const back = await t.api('POST', `/api/v1/rollouts/${res.body.id}/rollback`);
    expect(back.status).toBe(201);
    const rb = back.body.rollouts[0];
    await drive({
      t: () => t,
      serverClock,
      simClock,
      serverStepMs: 10 * 60_000,
      simStepMs: 5_000,
      maxSteps: 500,
      done: async () => (await state(rb.id)).state === 'completed',
    }).catch(async (err: Error) => {
      throw new Error(`${err.message}: rollback ${await why(rb.id)}`);
    });
    expect((await state(rb.id)).counts).toEqual({ succeeded: total });
    expect(agents().every((a) => a.firmware === from)).toBe(true);
  }, 240_000);
});
