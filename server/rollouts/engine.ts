// The rollout engine: every tick it moves each active rollout along — start
// time, soak gates, timeouts, thresholds, waves, deadline, completion — and
// dispatches what is due. All state is in the database; a restarted server
// picks up where the last one stopped, and ticks are idempotent.
import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { Heartbeat, OtaReport } from '../../protocol/messages.ts';
import type { Artifacts } from '../artifacts/artifacts.service.ts';
import { isTransientDbError, type Db } from '../db/index.ts';
import type { Commands } from '../devices/commands.service.ts';
import { Batcher, inRounds } from '../lib/batcher.ts';
import type { Clock } from '../lib/clock.ts';
import { groupBy } from '../lib/loader.ts';
import { versionOf } from './cohorts.service.ts';
import { POLICY_REPORTS, createDeviceProgress, type HealthGate, type HeartbeatCheck } from './device-progress.ts';
import { createDispatcher } from './dispatch.ts';
import type { Place } from './eligibility.ts';
import { summarize, tally } from './rollouts.repo.ts';
import type { RolloutSpec } from './rollouts.schemas.ts';
import type { Rollouts } from './rollouts.service.ts';
import { addOwn, type OwnOutcome } from './progress-batch.ts';
import type { RolloutRow } from './rollouts.tables.ts';
import { IN_FLIGHT, type RolloutState } from './states.ts';
import type { RollbackPlanner } from './rollback.ts';

export interface EngineDeps {
  db: Db;
  clock: Clock;
  log: Logger;
  rollouts: Rollouts;
  commands: Commands;
  artifacts: Artifacts;
  signedDownloadUrl: (artifactId: string, deviceId: string | null, ttlS: number) => string;
  isConnected: (deviceId: string) => boolean;
  healthGate: HealthGate;
  rollback: () => RollbackPlanner;
}

const WATCHED_STATES = [...IN_FLIGHT, 'deferred', 'verifying'];

interface HeartbeatItem extends OwnOutcome {
  deviceId: string;
  hb: Heartbeat;
}

export function createEngine(deps: EngineDeps) {
  const { db, clock, rollouts } = deps;
  const log = deps.log.child({ module: 'rollouts' });
  let watched = new Set<string>();
  let kickTimer: NodeJS.Timeout | undefined;
  let stopped = false;
  let running: Promise<void> | null = null;
  const progress = createDeviceProgress({ db, clock, commands: deps.commands, onChange: () => kick() });
  // Heartbeats of watched terminals, checked a batch at a time: one read of their rows per batch.
  const heartbeats = new Batcher<HeartbeatItem>({
    maxItems: 2_000,
    maxDelayMs: 10,
    flush: checkHeartbeats,
    retryable: isTransientDbError,
  });

  async function placeOf(ids: string[]): Promise<Map<string, Place>> {
    if (ids.length === 0) return new Map();
    const devices = await db.selectFrom('devices').selectAll().where('id', 'in', ids).execute();
    const place = await rollouts.placesFor(devices);
    return new Map(devices.map((d) => [d.id, place(d)]));
  }
  const dispatcher = createDispatcher({
    db,
    clock,
    log,
    commands: deps.commands,
    signedDownloadUrl: deps.signedDownloadUrl,
    placeOf,
    isConnected: deps.isConnected,
    onSent: (ids) => watch(ids),
  });

  async function settleDevices(r: RolloutRow, spec: RolloutSpec): Promise<void> {
    const now = clock.now();
    const soaked = await db
      .selectFrom('rollout_devices')
      .selectAll()
      .where('rollout_id', '=', r.id)
      .where('state', '=', 'verifying')
      .where('soak_until', '<=', now)
      .execute();
    await progress.settleSoaks(soaked, spec, deps.healthGate, deps.isConnected);
    const late = await db
      .selectFrom('rollout_devices')
      .selectAll()
      .where('rollout_id', '=', r.id)
      .where('state', 'in', [...IN_FLIGHT])
      .where('sent_at', '<=', new Date(now.getTime() - spec.timeoutMinutes * 60_000))
      .execute();
    for (const row of late)
      await progress.fail(row, spec, 'timeout', `no result within ${spec.timeoutMinutes} minutes`);
    await db
      .updateTable('rollout_devices')
      .set({ state: 'queued', updated_at: now })
      .where('rollout_id', '=', r.id)
      .where('state', '=', 'deferred')
      .where('next_attempt_at', '<=', now)
      .execute();
  }

  /** Thresholds, waves, deadline and completion; returns the rollout's state after. */
  async function evaluate(r: RolloutRow, spec: RolloutSpec): Promise<RolloutState> {
    const deadline = spec.deadline ? Date.parse(spec.deadline) : Infinity;
    if (clock.nowMs() >= deadline) {
      await db
        .updateTable('rollout_devices')
        .set({
          state: 'skipped',
          finished_at: clock.now(),
          updated_at: clock.now(),
          last_error: JSON.stringify({ code: 'deadline', message: 'the rollout deadline passed' }),
        })
        .where('rollout_id', '=', r.id)
        .where('state', 'in', ['pending', 'waiting_window', 'queued', 'deferred'])
        .execute();
    }
    const { total, perWave } = summarize(await rollouts.repo.counts(r.id), spec.waves.length);
    const all = tally(total);
    if (all.finished >= spec.minFinished && all.failed / all.finished >= spec.failureThreshold) {
      const reason = `failure threshold reached: ${all.failed} of ${all.finished} finished terminals failed`;
      if (spec.onFailure === 'rollback') {
        await rollouts.transition(null, r.id, 'failed', reason, 'rollout.failed');
        await deps
          .rollback()
          .rollBack(null, r.id)
          .catch((err: unknown) => log.error({ err, rolloutId: r.id }, 'automatic rollback failed'));
        return 'failed';
      }
      await rollouts.transition(null, r.id, 'paused', reason, 'rollout.paused');
      return 'paused';
    }
    if (all.open === 0 && (r.current_wave === spec.waves.length - 1 || clock.nowMs() >= deadline)) {
      await rollouts.transition(null, r.id, 'completed', null, 'rollout.completed');
      return 'completed';
    }
    return advanceWave(r, spec, perWave);
  }

  async function advanceWave(
    r: RolloutRow,
    spec: RolloutSpec,
    perWave: Record<string, number>[],
  ): Promise<RolloutState> {
    if (r.current_wave >= spec.waves.length - 1) return 'running';
    const w = tally(perWave[r.current_wave]);
    const settled = w.inFlight === 0 && w.finished >= Math.min(spec.minFinished, w.size);
    if (!settled) return 'running';
    const rate = w.finished === 0 ? 1 : w.succeeded / w.finished;
    if (rate < spec.successThreshold && r.reason !== 'resumed') {
      if (w.open === 0) {
        await rollouts.transition(
          null,
          r.id,
          'paused',
          `wave ${r.current_wave} succeeded on ${Math.round(rate * 100)}% (< ${spec.successThreshold * 100}%)`,
          'rollout.paused',
        );
        return 'paused';
      }
      return 'running';
    }
    await db.transaction().execute(async (trx) => {
      const res = await trx
        .updateTable('rollouts')
        .set({ current_wave: r.current_wave + 1, reason: null, updated_at: clock.now() })
        .where('id', '=', r.id)
        .where('current_wave', '=', r.current_wave)
        .where('state', '=', 'running')
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) === 1) {
        await rollouts.event(trx, 'rollout.wave_completed', {
          id: r.id,
          name: r.name,
          component: r.component,
          version: r.version,
          currentWave: r.current_wave + 1,
          wave: r.current_wave,
          successRate: rate,
          counts: perWave[r.current_wave],
        });
      }
    });
    log.info({ msg: 'wave completed', rolloutId: r.id, wave: r.current_wave, successRate: rate });
    return 'running';
  }

  async function tickRollout(r: RolloutRow): Promise<void> {
    const spec = r.spec as RolloutSpec;
    if (r.state === 'scheduled') {
      if (spec.startAt && Date.parse(spec.startAt) > clock.nowMs()) return;
      await rollouts.transition(null, r.id, 'running', null, 'rollout.started');
      r = await rollouts.require(r.id);
    }
    if (r.state !== 'running') return;
    await settleDevices(r, spec);
    if ((await evaluate(r, spec)) !== 'running') return;
    const fresh = await rollouts.require(r.id);
    if (fresh.state !== 'running') return;
    await dispatcher.dispatch(fresh, await deps.artifacts.require(fresh.artifact_id));
  }

  /** One pass over every active rollout. Safe to call at any time, from any instance. */
  async function tick(): Promise<void> {
    if (running) return running;
    running = (async () => {
      for (const r of await rollouts.repo.active()) {
        await tickRollout(r).catch((err: unknown) => log.error({ err, rolloutId: r.id }, 'rollout tick failed'));
      }
      const rows = await db
        .selectFrom('rollout_devices')
        .select('device_id')
        .where('state', 'in', WATCHED_STATES)
        .execute();
      watched = new Set(rows.map((x) => x.device_id));
    })().finally(() => (running = null));
    return running;
  }

  /** Soon, not now: coalesces the many triggers of a busy moment into one tick. */
  function kick(delayMs = 250): void {
    if (stopped || kickTimer) return;
    kickTimer = setTimeout(() => {
      kickTimer = undefined;
      void tick().catch((err: unknown) => log.error({ err }, 'tick failed'));
    }, delayMs);
    kickTimer.unref();
  }

  /** Watched rows of the devices, with their rollout's spec and target version. */
  async function rowsFor(deviceIds: string[], jobId?: string) {
    let q = db
      .selectFrom('rollout_devices')
      .innerJoin('rollouts', 'rollouts.id', 'rollout_devices.rollout_id')
      .selectAll('rollout_devices')
      .select(['rollouts.spec', 'rollouts.version'])
      .where(sql<boolean>`rollout_devices.device_id = any(${deviceIds}::text[])`)
      .where('rollout_devices.state', 'in', WATCHED_STATES);
    if (jobId) q = q.where('rollout_devices.job_id', '=', jobId);
    return q.execute();
  }

  async function onOtaReport(deviceId: string, report: OtaReport): Promise<void> {
    // Plain progress (accepted, downloading, installing, rebooting) is a batched,
    // guarded UPDATE; only failures and deferrals need the row and the rollout's
    // policy. `succeeded` changes nothing: the heartbeat with the new version does.
    if (await progress.advance(deviceId, report)) return;
    if (!POLICY_REPORTS.has(report.state)) return;
    await progress.inOrder(deviceId, report.jobId, async () => {
      for (const row of await rowsFor([deviceId], report.jobId))
        await progress.onOta(row, row.spec as RolloutSpec, report);
    });
  }

  /** Resolves once the heartbeat's effect on the device's rollouts is written. */
  async function onHeartbeat(deviceId: string, hb: Heartbeat): Promise<void> {
    if (!watched.has(deviceId)) return;
    await addOwn(heartbeats, { deviceId, hb });
  }

  /** A device's heartbeats in arrival order: a round holds one heartbeat per device, its rows read afresh. */
  async function checkHeartbeats(items: HeartbeatItem[]): Promise<void> {
    for (const item of items) delete item.failure; // from an attempt the batcher is repeating
    for (const round of inRounds(items, (i) => i.deviceId)) {
      const rows = groupBy(await rowsFor(round.map((i) => i.deviceId)), (r) => r.device_id);
      const checks: HeartbeatCheck[] = [];
      for (const item of round) {
        for (const row of rows.get(item.deviceId) ?? []) {
          const version = versionOf({ firmware: item.hb.firmware, apps: item.hb.apps }, row.component);
          checks.push({ row, spec: row.spec as RolloutSpec, target: row.version, version, hb: item.hb, item });
        }
      }
      await progress.onHeartbeats(checks);
    }
  }

  function watch(deviceIds: Iterable<string>): void {
    for (const id of deviceIds) watched.add(id);
  }

  async function stop(): Promise<void> {
    stopped = true;
    if (kickTimer) clearTimeout(kickTimer);
    await Promise.all([heartbeats.drain(), progress.drain()]);
    await running;
  }

  /** Writes the reports and heartbeats waiting in their batches (tests step the world with it). */
  const settle = async (): Promise<void> => {
    await Promise.all([heartbeats.drain(), progress.drain()]);
  };

  return { tick, kick, onOtaReport, onHeartbeat, watch, stop, settle, progress };
}

export type Engine = ReturnType<typeof createEngine>;
