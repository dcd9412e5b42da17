// Batched statements of device progress. Thousands of terminals report at once
// during a rollout; each statement here moves many rollout devices, and each
// row stays guarded by the state it is expected to leave, exactly as a single
// `move` would be (the state table of states.ts decides what may move).
import { sql } from 'kysely';
import type { Db } from '../db/index.ts';
import type { Batcher } from '../lib/batcher.ts';
import type { RolloutDeviceRow } from './rollouts.tables.ts';
import { DEVICE_STATES, canDevice, type RolloutDeviceState } from './states.ts';

/** A batch item that keeps its own error, so that one bad row does not fail the other items of its batch. */
export interface OwnOutcome {
  failure?: { error: unknown };
}

/** Runs `work` for `item`, recording its error on the item instead of failing the batch. */
export async function recordOutcome(item: OwnOutcome, work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (error) {
    item.failure = { error };
  }
}

/** Adds `item` and resolves once its batch is written; rejects with the item's own error, if it had one. */
export async function addOwn<T extends OwnOutcome>(batcher: Batcher<T>, item: T): Promise<void> {
  await batcher.add(item);
  if (item.failure) throw item.failure.error;
}

export interface ProgressMove {
  deviceId: string;
  jobId: string;
  to: RolloutDeviceState;
}

// Every (from, to) the state table allows, as two parallel arrays for `unnest`.
const ALLOWED_FROM = DEVICE_STATES.flatMap((from) =>
  DEVICE_STATES.filter((to) => to !== from && canDevice(from, to)).map(() => from),
);
const ALLOWED_TO = DEVICE_STATES.flatMap((from) => DEVICE_STATES.filter((to) => to !== from && canDevice(from, to)));

/**
 * Progress moves of distinct (device, job) pairs in one statement; a row moves
 * only from a state the table allows towards its target. Returns rows moved.
 */
export async function advanceMany(db: Db, now: Date, moves: readonly ProgressMove[]): Promise<number> {
  if (moves.length === 0) return 0;
  const res = await sql`
    UPDATE rollout_devices AS rd SET state = v.to_state, updated_at = ${now.toISOString()}::timestamptz
    FROM unnest(${moves.map((m) => m.deviceId)}::text[], ${moves.map((m) => m.jobId)}::text[], ${moves.map((m) => m.to)}::text[])
      AS v(device_id, job_id, to_state)
    WHERE rd.device_id = v.device_id AND rd.job_id = v.job_id
      AND (rd.state, v.to_state) IN (SELECT * FROM unnest(${ALLOWED_FROM}::text[], ${ALLOWED_TO}::text[]))`.execute(db);
  return Number(res.numAffectedRows ?? 0);
}

export interface Install {
  row: RolloutDeviceRow;
  bootId: string;
  soakUntil: Date;
}

/** Rows whose heartbeat shows the target version start their soak; each guarded by the state it was read in. */
export async function verifyMany(db: Db, now: Date, installs: readonly Install[]): Promise<number> {
  const due = installs.filter((i) => canDevice(i.row.state as RolloutDeviceState, 'verifying'));
  if (due.length === 0) return 0;
  const at = now.toISOString();
  const res = await sql`
    UPDATE rollout_devices AS rd SET state = 'verifying', updated_at = ${at}::timestamptz, installed_at = ${at}::timestamptz,
      install_boot_id = v.boot_id, soak_until = v.soak_until, boots_in_soak = 0
    FROM unnest(${due.map((i) => i.row.rollout_id)}::text[], ${due.map((i) => i.row.device_id)}::text[], ${due.map((i) => i.row.state)}::text[],
                ${due.map((i) => i.bootId)}::text[], ${due.map((i) => i.soakUntil.toISOString())}::timestamptz[])
      AS v(rollout_id, device_id, state, boot_id, soak_until)
    WHERE rd.rollout_id = v.rollout_id AND rd.device_id = v.device_id AND rd.state = v.state`.execute(db);
  return Number(res.numAffectedRows ?? 0);
}

/** `move` for many rows at once, with the same columns set on each; returns rows moved. */
export async function moveMany(
  db: Db,
  now: Date,
  rows: readonly RolloutDeviceRow[],
  to: RolloutDeviceState,
  extra: { finished_at?: Date } = {},
): Promise<number> {
  const due = rows.filter((r) => canDevice(r.state as RolloutDeviceState, to));
  if (due.length === 0) return 0;
  const res = await db
    .updateTable('rollout_devices')
    .set({ state: to, updated_at: now, ...extra })
    .where(sql<boolean>`(rollout_id, device_id, state) IN (SELECT * FROM unnest(
      ${due.map((r) => r.rollout_id)}::text[], ${due.map((r) => r.device_id)}::text[], ${due.map((r) => r.state)}::text[]))`)
    .executeTakeFirst();
  return Number(res.numUpdatedRows);
}
