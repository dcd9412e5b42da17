// Rollout queries (Kysely only).
import { sql, type Kysely } from 'kysely';
import type { Db } from '../db/index.ts';
import type { Database } from '../db/schema.ts';
import { ACTIVE_ROLLOUT_STATES, isDeviceFinal, type RolloutDeviceState } from './states.ts';

export function createRolloutsRepo(db: Db) {
  const get = (id: string, trx: Kysely<Database> = db) =>
    trx.selectFrom('rollouts').selectAll().where('id', '=', id).executeTakeFirst();

  /** Devices already held by an unfinished rollout of this component. */
  async function busyDevices(component: string, deviceIds: string[]): Promise<Set<string>> {
    if (deviceIds.length === 0) return new Set();
    const rows = await db
      .selectFrom('rollout_devices')
      .select('device_id')
      .where('component', '=', component)
      .where('state', 'not in', ['succeeded', 'failed', 'timed_out', 'skipped', 'cancelled'])
      .execute();
    const ids = new Set(deviceIds);
    return new Set(rows.map((r) => r.device_id).filter((id) => ids.has(id)));
  }

  /** Counts per wave and state. */
  async function counts(rolloutId: string) {
    return db
      .selectFrom('rollout_devices')
      .select(['wave', 'state', sql<number>`count(*)::int`.as('n')])
      .where('rollout_id', '=', rolloutId)
      .groupBy(['wave', 'state'])
      .execute();
  }

  const active = () =>
    db
      .selectFrom('rollouts')
      .selectAll()
      .where('state', 'in', [...ACTIVE_ROLLOUT_STATES])
      .orderBy('created_at')
      .execute();

  // In the caller's transaction: on PGlite (one connection) a query beside it would wait forever.
  const usesArtifact = async (artifactId: string, trx: Kysely<Database> = db) =>
    !!(await trx.selectFrom('rollouts').select('id').where('artifact_id', '=', artifactId).executeTakeFirst());

  return { get, busyDevices, counts, active, usesArtifact };
}

export type RolloutsRepo = ReturnType<typeof createRolloutsRepo>;

export function summarize(rows: { wave: number; state: string; n: number }[], waveCount: number) {
  const total: Record<string, number> = {};
  const perWave = Array.from({ length: waveCount }, () => ({}) as Record<string, number>);
  for (const r of rows) {
    total[r.state] = (total[r.state] ?? 0) + r.n;
    if (perWave[r.wave]) perWave[r.wave][r.state] = (perWave[r.wave][r.state] ?? 0) + r.n;
  }
  return { total, perWave };
}

export function tally(counts: Record<string, number>) {
  let size = 0,
    finished = 0,
    succeeded = 0,
    failed = 0,
    open = 0,
    inFlight = 0;
  for (const [state, n] of Object.entries(counts)) {
    size += n;
    if (state === 'succeeded') succeeded += n;
    if (state === 'failed' || state === 'timed_out') failed += n;
    if (!isDeviceFinal(state as RolloutDeviceState)) open += n;
    if (['sent', 'accepted', 'downloading', 'installing', 'rebooting', 'verifying'].includes(state)) inFlight += n;
  }
  finished = succeeded + failed;
  return { size, finished, succeeded, failed, open, inFlight };
}
