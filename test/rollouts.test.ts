// The OTA engine with real simulated terminals: waves, soak, thresholds,
// busy terminals, the health gate, cancellation and rollback.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../agent-sim/clock.ts';
import { startFleet, type FleetHandle } from '../agent-sim/fleet.ts';
import { ManualClock } from '../server/lib/clock.ts';
import { randomChars } from '../server/lib/ids.ts';
import { eventually, startTestApp, type TestApp } from './helpers/app.ts';
import { dbKind } from './helpers/db.ts';
import { settle } from './helpers/health.ts';
import { drive, rolloutKit, versionBase, type Kit } from './helpers/rollout-kit.ts';

// Each case drives real terminals through whole updates.
describe(`rollouts (${dbKind()})`, { timeout: 120_000 }, () => {
  let t: TestApp;
  let kit: Kit;
  const serverClock = new ManualClock(Date.now());
  const simClock = manualClock(Date.now());
  const fleets: FleetHandle[] = [];
  const n = versionBase();
  const from = `1.${n}.0`;

  beforeAll(async () => {
    t = await startTestApp({ clock: serverClock });
    kit = await rolloutKit(t);
  });
  afterAll(async () => {
    for (const f of fleets) await f.stop();
    await t.stop();
  });

  async function fleet(tag: string, terminals: number, opts: { profiles?: string; models?: string[] } = {}) {
    const m = await t.api('POST', '/api/v1/merchants', { name: `shop ${tag}`, timezone: 'Europe/Madrid' });
    const tok = await t.api('POST', '/api/v1/enrollment-tokens', { merchantId: m.body.id, tags: [tag] });
    const f = await startFleet({
      server: t.app.baseUrl,
      enrollToken: tok.body.token,
      terminals,
      seed: Math.floor(Math.random() * 1e9),
      clock: simClock,
      stateDir: null,
      rampPerSecond: 0,
      publicKey: kit.publicKeyPem,
      firmware: from,
      models: opts.models ?? ['T2'],
      profiles: opts.profiles,
    });
    fleets.push(f);
    await f.started;
    await f.waitForOnline(terminals, 30_000);
    f.heartbeatNow();
    return f;
  }

  async function cohort(tag: string) {
    const c = await t.api('POST', '/api/v1/cohorts', { name: `c-${tag}`, filter: { tags: [tag] } });
    expect(c.status).toBe(201);
    return c.body.id as string;
  }

  const rolloutState = async (id: string) => (await t.api('GET', `/api/v1/rollouts/${id}`)).body;

  it('plans without changing anything and explains who is not eligible', async () => {
    const tag = `plan${randomChars(5)}`;
    const f = await fleet(tag, 4, { models: ['T2', 'T3'] });
    const target = await kit.release(`2.${n}.1`, ['T2']);
    const cohortId = await cohort(tag);
    await new Promise((r) => setTimeout(r, 200));
    const plan = await t.api('POST', '/api/v1/rollouts/plan', {
      name: 'p',
      artifactId: target.id,
      cohortId,
      waves: [{ percent: 50 }, { percent: 100 }],
    });
    expect(plan.status).toBe(200);
    const listed = (await t.api('GET', `/api/v1/devices?tag=${tag}`)).body.items as { model: string }[];
    const t3 = listed.filter((d) => d.model === 'T3').length;
    expect(f.agents).toHaveLength(4);
    expect(plan.body.total).toBe(4);
    expect(plan.body.eligible).toBe(4 - t3);
    if (t3) expect(plan.body.reasons.incompatible_model).toBe(t3);
    expect(plan.body.waves.map((w: { size: number }) => w.size).reduce((a: number, b: number) => a + b, 0)).toBe(
      4 - t3,
    );
    expect(
      (await t.api('GET', '/api/v1/rollouts?limit=500')).body.items.some(
        (r: { artifactId: string }) => r.artifactId === target.id,
      ),
    ).toBe(false);
  });

  it('rolls a signed firmware out in waves, gates each terminal on a soak, and completes', async () => {
    const tag = `wave${randomChars(5)}`;
    const f = await fleet(tag, 10);
    const target = await kit.release(`2.${n}.0`, ['T1', 'T2']);
    const cohortId = await cohort(tag);
    const res = await t.api('POST', '/api/v1/rollouts', {
      name: 'fw waves',
      artifactId: target.id,
      cohortId,
      waves: [{ percent: 20 }, { percent: 100 }],
      soakMinutes: 2,
      minFinished: 2,
      successThreshold: 0.9,
      timeoutMinutes: 600,
    });
    expect(res.status).toBe(201);
    expect(res.body.state).toBe('running');
    expect(res.body.waves.map((w: { size: number }) => w.size)).toEqual([2, 8]);
    let sawWaveGate = false;
    await drive({
      t: () => t,
      serverClock,
      simClock,
      done: async () => (await rolloutState(res.body.id)).state === 'completed',
      onStep: async () => {
        const r = await rolloutState(res.body.id);
        // While wave 0 is not done, nobody of wave 1 has been sent anything.
        if (r.currentWave === 0 && (r.waves[1].counts.pending ?? 0) === 8) sawWaveGate = true;
        expect(r.currentWave === 0 ? (r.waves[1].counts.pending ?? 0) : 8).toBe(8);
      },
    });
    expect(sawWaveGate).toBe(true);
    const final = await rolloutState(res.body.id);
    expect(final.counts).toEqual({ succeeded: 10 });
    expect(f.agents.every((a) => a.firmware === target.version)).toBe(true);
    const events = await t.app.db
      .selectFrom('outbox_events')
      .select('type')
      .where('subject_id', '=', res.body.id)
      .orderBy('seq')
      .execute();
    expect(events.map((e) => e.type)).toEqual(['rollout.started', 'rollout.wave_completed', 'rollout.completed']);
    const devices = (await t.api('GET', `/api/v1/rollouts/${res.body.id}/devices?limit=50`)).body.items;
    expect(
      devices.every((d: { state: string; fromVersion: string }) => d.state === 'succeeded' && d.fromVersion === from),
    ).toBe(true);

    // Rollback: a new rollout to each terminal's previous version, downgrade allowed.
    expect((await t.api('POST', `/api/v1/rollouts/${res.body.id}/rollback`)).status).toBe(422); // previous version not uploaded
    await kit.release(from, ['T2']);
    const back = await t.api('POST', `/api/v1/rollouts/${res.body.id}/rollback`);
    expect(back.status).toBe(201);
    expect(back.body.rollouts).toHaveLength(1);
    const rb = back.body.rollouts[0];
    expect(rb).toMatchObject({ rollbackOf: res.body.id, version: from, total: 10 });
    expect(rb.spec.allowDowngrade).toBe(true);
    await drive({
      t: () => t,
      serverClock,
      simClock,
      done: async () => (await rolloutState(rb.id)).state === 'completed',
    });
    expect(f.agents.every((a) => a.firmware === from)).toBe(true);
  });

  it('pauses at its failure threshold when installs fail; cancel stops the rest', async () => {
    const tag = `fail${randomChars(5)}`;
    const f = await fleet(tag, 6, { profiles: 'install-fail:1' });
    const target = await kit.release(`2.${n}.2`, ['T2']);
    const cohortId = await cohort(tag);
    const res = await t.api('POST', '/api/v1/rollouts', {
      name: 'bad installs',
      artifactId: target.id,
      cohortId,
      waves: [{ percent: 100 }],
      retries: 0,
      minFinished: 3,
      failureThreshold: 0.5,
      soakMinutes: 0,
      timeoutMinutes: 600,
      maxInFlight: 3,
    });
    await drive({
      t: () => t,
      serverClock,
      simClock,
      done: async () => (await rolloutState(res.body.id)).state === 'paused',
    });
    const paused = await rolloutState(res.body.id);
    expect(paused.reason).toMatch(/failure threshold/);
    expect(paused.counts.failed).toBeGreaterThanOrEqual(3);
    expect(paused.counts.pending ?? 0).toBeGreaterThan(0); // the cap in flight kept the rest back
    const failed = (await t.api('GET', `/api/v1/rollouts/${res.body.id}/devices?state=failed`)).body.items;
    expect(failed[0].lastError.code).toBe('install_failed');
    expect(f.agents.every((a) => a.firmware === from)).toBe(true);
    const cancelled = await t.api('POST', `/api/v1/rollouts/${res.body.id}/cancel`);
    expect(cancelled.body.state).toBe('cancelled');
    expect(cancelled.body.counts.pending ?? 0).toBe(0);
    expect((await t.api('POST', `/api/v1/rollouts/${res.body.id}/resume`)).status).toBe(422);
  });

  it('lets busy terminals defer without counting a failure, and they finish later', async () => {
    const tag = `busy${randomChars(5)}`;
    const f = await fleet(tag, 4, { profiles: 'busy:0.8' });
    const target = await kit.release(`2.${n}.3`, ['T2']);
    const cohortId = await cohort(tag);
    const res = await t.api('POST', '/api/v1/rollouts', {
      name: 'busy',
      artifactId: target.id,
      cohortId,
      retries: 0,
      soakMinutes: 0,
      timeoutMinutes: 600,
      minFinished: 1,
    });
    await drive({
      t: () => t,
      serverClock,
      simClock,
      maxSteps: 300,
      serverStepMs: 60_000,
      done: async () => (await rolloutState(res.body.id)).state === 'completed',
    });
    expect((await rolloutState(res.body.id)).counts).toEqual({ succeeded: 4 });
    // With no retries, every send after a terminal's first followed a deferral (sampling the
    // counts between steps missed the ones deferred and re-sent within one step).
    const rows = await t.app.db
      .selectFrom('rollout_devices')
      .select('sends')
      .where('rollout_id', '=', res.body.id)
      .execute();
    const deferrals = rows.reduce((sum, r) => sum + Number(r.sends) - 1, 0);
    expect(deferrals).toBeGreaterThan(0);
    expect(f.agents.every((a) => a.firmware === target.version)).toBe(true);
  });

  it('catches a crash-looping firmware with the health gate', async () => {
    const tag = `crash${randomChars(5)}`;
    const bad = `2.${n}.4`;
    await fleet(tag, 3, { profiles: `bad-firmware:${bad}` });
    const target = await kit.release(bad, ['T2']);
    const cohortId = await cohort(tag);
    const res = await t.api('POST', '/api/v1/rollouts', {
      name: 'crashy',
      artifactId: target.id,
      cohortId,
      retries: 0,
      soakMinutes: 30,
      minFinished: 3,
      failureThreshold: 0.5,
      timeoutMinutes: 600,
    });
    await drive({
      t: () => t,
      serverClock,
      simClock,
      serverStepMs: 60_000,
      simStepMs: 10_000,
      maxSteps: 300,
      done: async () => (await rolloutState(res.body.id)).state === 'paused',
    });
    const failed = (await t.api('GET', `/api/v1/rollouts/${res.body.id}/devices?state=failed`)).body.items;
    expect(failed.length).toBe(3);
    expect(failed.map((d: { lastError: { code: string } }) => d.lastError.code)).toEqual(
      expect.arrayContaining(['crash_loop']),
    );
  });

  it('filters cohorts by presence and health as well as tags', async () => {
    const tag = `ph${randomChars(5)}`;
    const f = await fleet(tag, 3);
    await f.heartbeatNow();
    const count = async (filter: Record<string, unknown>) => {
      const c = await t.api('POST', '/api/v1/cohorts', {
        name: `c-${tag}-${randomChars(4)}`,
        filter: { tags: [tag], ...filter },
      });
      expect(c.status).toBe(201);
      return (await t.api('GET', `/api/v1/cohorts/${c.body.id}/devices`)).body.total as number;
    };
    await eventually(async () => (await count({ presence: ['online'] })) === 3);
    expect(await count({ presence: ['offline', 'missing'] })).toBe(0);
    await settle(t); // rules run after the heartbeats' commit: let them open their alerts before comparing
    // Each level's cohort holds exactly the devices whose health view says that level.
    const levels = await Promise.all(
      f.agents.map(async (a) => (await t.api('GET', `/api/v1/devices/${a.deviceId}/health`)).body.health as string),
    );
    for (const level of ['ok', 'info', 'warning', 'critical']) {
      expect(await count({ health: [level] })).toBe(levels.filter((l) => l === level).length);
    }
    expect(
      (await t.api('POST', '/api/v1/cohorts', { name: `bad-${tag}`, filter: { presence: ['asleep'] } })).status,
    ).toBe(400);
  });

  it('waits for its start time, and skips what its deadline leaves unsent', async () => {
    const tag = `time${randomChars(5)}`;
    await fleet(tag, 2);
    const target = await kit.release(`2.${n}.6`, ['T2']);
    const cohortId = await cohort(tag);
    const startAt = new Date(serverClock.nowMs() + 60 * 60_000).toISOString();
    const deadline = new Date(serverClock.nowMs() + 2 * 60 * 60_000).toISOString();
    // A window that never opens (30 February), so nothing is sent before the deadline.
    const res = await t.api('POST', '/api/v1/rollouts', {
      name: 'timed',
      artifactId: target.id,
      cohortId,
      startAt,
      deadline,
      window: { cron: '0 2 30 2 *', durationMinutes: 60 },
    });
    expect(res.body.state).toBe('scheduled');
    await t.app.rollouts.engine.tick();
    expect((await rolloutState(res.body.id)).state).toBe('scheduled');
    serverClock.advance(61 * 60_000);
    await t.app.rollouts.engine.tick();
    expect((await rolloutState(res.body.id)).state).toBe('running');
    serverClock.advance(60 * 60_000);
    await t.app.rollouts.engine.tick();
    const done = await rolloutState(res.body.id);
    expect(done.state).toBe('completed');
    expect(done.counts).toEqual({ skipped: 2 });
    const devices = (await t.api('GET', `/api/v1/rollouts/${res.body.id}/devices`)).body.items;
    expect(devices[0].lastError.code).toBe('deadline');
  });

  it('refuses a second active rollout of the same component for the same terminals', async () => {
    const tag = `dup${randomChars(5)}`;
    await fleet(tag, 2);
    const target = await kit.release(`2.${n}.5`, ['T2']);
    const cohortId = await cohort(tag);
    const body = { name: 'one', artifactId: target.id, cohortId, start: false };
    expect((await t.api('POST', '/api/v1/rollouts', body)).body.state).toBe('draft');
    const second = await t.api('POST', '/api/v1/rollouts', body);
    expect(second.status).toBe(422);
    expect(second.body.error.details.reasons).toEqual({ in_active_rollout: 2 });
  });
});
