// Batched progress statements on the real database (PGlite, or PostgreSQL with
// DATABASE_URL): each row moves only as its guard allows, and reports of one
// job are applied in the order they came.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dbKind, sharedDb } from '../../test/helpers/db.ts';
import type { Db } from '../db/index.ts';
import type { Commands } from '../devices/commands.service.ts';
import { ManualClock } from '../lib/clock.ts';
import { randomChars } from '../lib/ids.ts';
import { createDeviceProgress } from './device-progress.ts';
import { createAlerts } from '../health/alerts.service.ts';
import { inRounds } from '../lib/batcher.ts';
import { advanceMany, moveMany, verifyMany } from './progress-batch.ts';
import type { RolloutDeviceRow } from './rollouts.tables.ts';

describe('inRounds', () => {
  it('puts each key once in a round, in arrival order', () => {
    const items = ['a1', 'b1', 'a2', 'a3', 'c1', 'b2'];
    expect(inRounds(items, (s) => s[0])).toEqual([['a1', 'b1', 'c1'], ['a2', 'b2'], ['a3']]);
    expect(inRounds([], String)).toEqual([]);
  });
});

describe(`batched progress (${dbKind()})`, () => {
  let db: Db;
  const clock = new ManualClock(Date.parse('2026-02-01T10:00:00Z'));
  const rolloutId = `ro_${randomChars(10)}`;
  let n = 0;

  beforeAll(async () => {
    db = (await sharedDb()).db;
    const now = clock.now();
    const tag = randomChars(10);
    await db
      .insertInto('artifacts')
      .values({
        id: `art_${tag}`,
        component: 'firmware',
        version: `9.${tag}`,
        models: JSON.stringify(['T2']),
        sha256: 'x',
        size: 1,
        manifest: JSON.stringify({}),
        signature: 'x',
        key_id: 'k',
        storage_key: 'x',
        created_at: now,
      } as never)
      .execute();
    await db
      .insertInto('cohorts')
      .values({ id: `coh_${tag}`, name: `c-${tag}`, filter: null, device_ids: null, created_at: now, created_by: null })
      .execute();
    await db
      .insertInto('rollouts')
      .values({
        id: rolloutId,
        name: 'batch',
        artifact_id: `art_${tag}`,
        cohort_id: `coh_${tag}`,
        component: 'firmware',
        version: '9.0.0',
        // Not active: the engine of another test sharing this database leaves it alone.
        state: 'completed',
        spec: JSON.stringify({}),
        seed: 's',
        reason: null,
        rollback_of: null,
        created_at: now,
        created_by: null,
        started_at: now,
        finished_at: null,
        updated_at: now,
      })
      .execute();
  });

  /** A device with a rollout row in `state`, job `<rollout>.1`. */
  async function deviceIn(state: string): Promise<RolloutDeviceRow> {
    const id = `dev_${randomChars(8)}${n++}`;
    await db
      .insertInto('devices')
      .values({
        id,
        serial: id,
        model: 'T2',
        status: 'active',
        created_at: clock.now(),
        updated_at: clock.now(),
      } as never)
      .execute();
    return db
      .insertInto('rollout_devices')
      .values({
        rollout_id: rolloutId,
        device_id: id,
        component: 'firmware',
        wave: 0,
        state,
        job_id: `${rolloutId}.1`,
        updated_at: clock.now(),
      })
      .returningAll()
      .executeTakeFirstOrThrow();
  }
  const stateOf = async (row: RolloutDeviceRow) =>
    await db
      .selectFrom('rollout_devices')
      .selectAll()
      .where('rollout_id', '=', row.rollout_id)
      .where('device_id', '=', row.device_id)
      .executeTakeFirstOrThrow();

  it('advances each job only from a state the table allows', async () => {
    const [sent, installing, accepted, other] = await Promise.all(
      ['sent', 'installing', 'accepted', 'sent'].map(deviceIn),
    );
    const moved = await advanceMany(db, clock.now(), [
      { deviceId: sent.device_id, jobId: sent.job_id!, to: 'downloading' },
      { deviceId: installing.device_id, jobId: installing.job_id!, to: 'downloading' }, // no way back
      { deviceId: accepted.device_id, jobId: accepted.job_id!, to: 'accepted' }, // already there
      { deviceId: other.device_id, jobId: 'another.1', to: 'accepted' }, // not its job
    ]);
    expect(moved).toBe(1);
    expect((await Promise.all([sent, installing, accepted, other].map(stateOf))).map((r) => r.state)).toEqual([
      'downloading',
      'installing',
      'accepted',
      'sent',
    ]);
  });

  it('starts soaks and settles them, guarded by the state each row was read in', async () => {
    const [installing, stale] = await Promise.all(['installing', 'rebooting'].map(deviceIn));
    const soakUntil = new Date(clock.nowMs() + 60_000);
    const read = { ...stale, state: 'installing' }; // read before it moved on
    expect(
      await verifyMany(db, clock.now(), [
        { row: installing, bootId: 'b2', soakUntil },
        { row: read, bootId: 'b2', soakUntil },
      ]),
    ).toBe(1);
    const verifying = await stateOf(installing);
    expect(verifying).toMatchObject({ state: 'verifying', install_boot_id: 'b2', boots_in_soak: 0 });
    expect(verifying.soak_until?.getTime()).toBe(soakUntil.getTime());
    expect((await stateOf(stale)).state).toBe('rebooting');
    expect(
      await moveMany(db, clock.now(), [verifying, await stateOf(stale)], 'succeeded', { finished_at: clock.now() }),
    ).toBe(1);
    expect((await stateOf(installing)).state).toBe('succeeded');
  });

  it('applies the reports of one job in the order they came, each resolving once written', async () => {
    const withdrawn: string[] = [];
    const commands = { withdraw: async (id: string) => void withdrawn.push(id) } as unknown as Commands;
    let changes = 0;
    const progress = createDeviceProgress({ db, clock, commands, onChange: () => changes++ });
    const [a, b] = await Promise.all(['sent', 'sent'].map(deviceIn));
    const report = (state: string) => ({ v: 1 as const, jobId: a.job_id!, state: state as 'accepted' });
    // a: accepted, downloading, installing in one batch ends installing; b: installing, then a late accepted that may not go back.
    const done = await Promise.all([
      progress.advance(a.device_id, report('accepted')),
      progress.advance(b.device_id, report('installing')),
      progress.advance(a.device_id, report('downloading')),
      progress.advance(a.device_id, report('downloading')),
      progress.advance(b.device_id, report('accepted')),
      progress.advance(a.device_id, report('installing')),
      progress.advance(a.device_id, report('succeeded')),
    ]);
    expect(done).toEqual([true, true, true, true, true, true, false]);
    expect((await stateOf(a)).state).toBe('installing');
    expect((await stateOf(b)).state).toBe('installing');
    expect(changes).toBe(1); // one kick per batch
    // A failure handled in order sees the row after the progress before it.
    const seen: string[] = [];
    const c = await deviceIn('sent');
    await Promise.all([
      progress.advance(c.device_id, report('downloading')),
      progress.inOrder(c.device_id, c.job_id!, async () => void seen.push((await stateOf(c)).state)),
    ]);
    expect(seen).toEqual(['downloading']);
    await expect(
      progress.inOrder(c.device_id, c.job_id!, async () => {
        throw new Error('only mine');
      }),
    ).rejects.toThrow('only mine');
    await progress.drain();
  });

  it('gates soaks on critical alerts seen since the install, for many devices in one query', async () => {
    const [hit, old, mild, clean] = await Promise.all(
      ['verifying', 'verifying', 'verifying', 'verifying'].map(deviceIn),
    );
    const since = clock.now();
    const prefix = `al_${randomChars(10)}`;
    let seq = 0;
    const alert = (device: string, severity: string, rule: string, lastSeenMs: number) => ({
      id: `${prefix}_${seq++}`,
      device_id: device,
      rule_id: rule,
      rule_name: rule,
      severity,
      state: 'open',
      model: 'T2',
      message: 'm',
      opened_at: new Date(lastSeenMs),
      last_seen_at: new Date(lastSeenMs),
    });
    await db
      .insertInto('alerts')
      .values([
        alert(hit.device_id, 'critical', 'older_rule', clock.nowMs() + 1_000),
        alert(hit.device_id, 'critical', 'newest_rule', clock.nowMs() + 2_000),
        alert(old.device_id, 'critical', 'before_install', clock.nowMs() - 1_000),
        alert(mild.device_id, 'warning', 'only_a_warning', clock.nowMs() + 1_000),
      ] as never)
      .execute();
    // The gate the rollouts get (server/modules.ts): the health module's alerts query.
    const alerts = createAlerts({ db, clock, audit: {} as never, outbox: {} as never });
    const problems = await alerts.criticalSince([hit, old, mild, clean].map((r) => ({ deviceId: r.device_id, since })));
    expect([...problems]).toEqual([[hit.device_id, 'newest_rule']]);
    expect((await alerts.criticalSince([])).size).toBe(0);
  });

  afterAll(async () => {
    const devices = (
      await db.selectFrom('rollout_devices').select('device_id').where('rollout_id', '=', rolloutId).execute()
    ).map((r) => r.device_id);
    await db.deleteFrom('rollouts').where('id', '=', rolloutId).execute(); // rows cascade
    if (devices.length) await db.deleteFrom('alerts').where('device_id', 'in', devices).execute();
  });
});
