// Rollout rules: plan, create, operator actions and progress views. The
// engine (engine.ts) moves running rollouts along.
import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { TradingHours } from '../../protocol/http.ts';
import type { Audit } from '../access/audit.service.ts';
import type { Artifacts } from '../artifacts/artifacts.service.ts';
import { json, type Db } from '../db/index.ts';
import type { Database, Device } from '../db/schema.ts';
import type { Outbox } from '../events/outbox.ts';
import type { Principal } from '../http/types.ts';
import type { Clock } from '../lib/clock.ts';
import { decodeCursor, pageOf } from '../lib/cursor.ts';
import { DomainError, conflict, unprocessable } from '../lib/errors.ts';
import { newId } from '../lib/ids.ts';
import type { Cohorts } from './cohorts.service.ts';
import { planRollout, type Place } from './eligibility.ts';
import { createRolloutsRepo, summarize, tally } from './rollouts.repo.ts';
import type { RolloutSpec } from './rollouts.schemas.ts';
import type { RolloutDeviceRow, RolloutRow } from './rollouts.tables.ts';
import { canRollout, type RolloutDeviceState, type RolloutState } from './states.ts';

export interface RolloutsDeps {
  db: Db;
  clock: Clock;
  audit: Audit;
  outbox: Outbox;
  cohorts: Cohorts;
  artifacts: Artifacts;
}

const iso = (d: Date | null) => d?.toISOString() ?? null;

export function rolloutDeviceView(r: RolloutDeviceRow) {
  return {
    deviceId: r.device_id,
    wave: r.wave,
    state: r.state as RolloutDeviceState,
    fromVersion: r.from_version,
    jobId: r.job_id,
    sends: r.sends,
    failures: r.failures,
    lastError: r.last_error,
    nextAttemptAt: iso(r.next_attempt_at),
    soakUntil: iso(r.soak_until),
    updatedAt: r.updated_at.toISOString(),
  };
}

export function createRollouts(deps: RolloutsDeps) {
  const { db, clock, audit, outbox } = deps;
  const repo = createRolloutsRepo(db);

  async function require(id: string, trx: Kysely<Database> = db): Promise<RolloutRow> {
    const r = await repo.get(id, trx);
    if (!r) throw new DomainError('not_found', 'rollout_not_found', `rollout ${id} does not exist`);
    return r;
  }

  async function placesFor(devices: Device[]): Promise<(d: Device) => Place> {
    const ids = [...new Set(devices.map((d) => d.merchant_id).filter((x): x is string => !!x))];
    const merchants = ids.length
      ? await db.selectFrom('merchants').select(['id', 'timezone', 'trading_hours']).where('id', 'in', ids).execute()
      : [];
    const byId = new Map(merchants.map((m) => [m.id, m]));
    return (d) => {
      const m = d.merchant_id ? byId.get(d.merchant_id) : undefined;
      return { timezone: d.timezone ?? m?.timezone ?? 'UTC', trading: (m?.trading_hours ?? []) as TradingHours };
    };
  }

  async function plan(spec: RolloutSpec, seed = 'plan') {
    const artifact = await deps.artifacts.require(spec.artifactId).catch(() => {
      throw unprocessable('unknown_artifact', `artifact ${spec.artifactId} does not exist`);
    });
    const cohort = await deps.cohorts.require(spec.cohortId).catch(() => {
      throw unprocessable('unknown_cohort', `cohort ${spec.cohortId} does not exist`);
    });
    if (artifact.expires_at && artifact.expires_at.getTime() <= clock.nowMs())
      throw unprocessable('artifact_expired', `artifact ${artifact.id} expired`);
    const devices = await deps.cohorts.members(cohort);
    const busy = await repo.busyDevices(
      artifact.component,
      devices.map((d) => d.id),
    );
    const result = planRollout({
      devices,
      artifact,
      spec,
      busy,
      seed,
      places: await placesFor(devices),
      now: clock.nowMs(),
    });
    return { artifact, cohort, result };
  }

  async function create(actor: Principal, spec: RolloutSpec) {
    const seed = randomBytes(8).toString('hex');
    const { artifact, result } = await plan(spec, seed);
    if (result.eligible === 0)
      throw unprocessable('no_eligible_devices', 'no device of the cohort can take this update', {
        reasons: result.reasons,
      });
    const now = clock.now();
    const id = newId('rol', now.getTime());
    const future = spec.startAt && Date.parse(spec.startAt) > now.getTime();
    const state: RolloutState = !spec.start ? 'draft' : future ? 'scheduled' : 'running';
    const { start: _start, ...stored } = spec;
    await db
      .transaction()
      .execute(async (trx) => {
        await trx
          .insertInto('rollouts')
          .values({
            id,
            name: spec.name,
            artifact_id: artifact.id,
            cohort_id: spec.cohortId,
            component: artifact.component,
            version: artifact.version,
            state,
            spec: json(stored),
            seed,
            created_at: now,
            created_by: actor.keyId,
            started_at: state === 'running' ? now : null,
            updated_at: now,
          })
          .execute();
        const rows = result.devices
          .filter((d) => d.reason === null)
          .map((d) => ({
            rollout_id: id,
            device_id: d.deviceId,
            component: artifact.component,
            wave: d.wave ?? 0,
            state: 'pending',
            from_version: d.fromVersion,
            updated_at: now,
          }));
        for (let i = 0; i < rows.length; i += 1000)
          await trx
            .insertInto('rollout_devices')
            .values(rows.slice(i, i + 1000))
            .execute();
        await audit.record(trx, actor, {
          action: 'rollout.created',
          targetType: 'rollout',
          targetId: id,
          details: { artifactId: artifact.id, devices: rows.length },
        });
        if (state === 'running')
          await event(trx, 'rollout.started', {
            id,
            name: spec.name,
            component: artifact.component,
            version: artifact.version,
            currentWave: 0,
          });
      })
      .catch((err: { code?: string }) => {
        if (err.code === '23505')
          throw conflict(
            'device_in_active_rollout',
            'a device of the cohort joined another active rollout of this component meanwhile; plan again',
          );
        throw err;
      });
    outbox.notify();
    return view(await require(id));
  }

  function event(trx: Kysely<Database>, type: string, r: { id: string } & Record<string, unknown>) {
    return outbox.add(trx, { type, subject: { type: 'rollout', id: r.id }, data: { rolloutId: r.id, ...r } });
  }

  /** Moves a rollout to `to` if its table allows it; writes the audit entry and event. */
  async function transition(
    actor: Principal | null,
    id: string,
    to: RolloutState,
    reason: string | null,
    eventType?: string,
    trxIn?: Kysely<Database>,
  ) {
    const run = async (trx: Kysely<Database>) => {
      const r = await require(id, trx);
      if (!canRollout(r.state as RolloutState, to))
        throw unprocessable('invalid_transition', `a ${r.state} rollout cannot become ${to}`);
      const now = clock.now();
      await trx
        .updateTable('rollouts')
        .set({
          state: to,
          reason,
          updated_at: now,
          ...(to === 'running' && !r.started_at && { started_at: now }),
          ...(['completed', 'cancelled', 'failed'].includes(to) && { finished_at: now }),
        })
        .where('id', '=', id)
        .where('state', '=', r.state)
        .execute();
      if (to === 'cancelled') {
        await trx
          .updateTable('rollout_devices')
          .set({ state: 'cancelled', finished_at: now, updated_at: now })
          .where('rollout_id', '=', id)
          .where('state', 'not in', ['succeeded', 'failed', 'timed_out', 'skipped', 'cancelled'])
          .execute();
      }
      if (actor)
        await audit.record(trx, actor, {
          action: `rollout.${to === 'running' ? 'resumed' : to}`,
          targetType: 'rollout',
          targetId: id,
          details: reason ? { reason } : undefined,
        });
      if (eventType)
        await event(trx, eventType, {
          id,
          name: r.name,
          component: r.component,
          version: r.version,
          reason,
          currentWave: r.current_wave,
        });
    };
    if (trxIn) await run(trxIn);
    else await db.transaction().execute(run);
    outbox.notify();
  }

  async function view(r: RolloutRow) {
    const spec = r.spec as RolloutSpec;
    const { total, perWave } = summarize(await repo.counts(r.id), spec.waves.length);
    const waves = spec.waves.map((w, index) => {
      const t = tally(perWave[index]);
      const state =
        index > r.current_wave ? 'waiting' : t.open === 0 ? 'done' : index === r.current_wave ? 'active' : 'draining';
      return { index, percent: w.percent, state, size: t.size, counts: perWave[index] };
    });
    return {
      id: r.id,
      name: r.name,
      state: r.state as RolloutState,
      artifactId: r.artifact_id,
      cohortId: r.cohort_id,
      component: r.component,
      version: r.version,
      currentWave: r.current_wave,
      reason: r.reason,
      rollbackOf: r.rollback_of,
      waves,
      counts: total,
      total: tally(total).size,
      spec: r.spec,
      createdAt: r.created_at.toISOString(),
      startedAt: iso(r.started_at),
      finishedAt: iso(r.finished_at),
    };
  }

  async function list(q: { limit: number; cursor?: string; state?: string }) {
    let query = db
      .selectFrom('rollouts')
      .selectAll()
      .orderBy('id', 'desc')
      .limit(q.limit + 1);
    const after = decodeCursor(q.cursor);
    if (after) query = query.where('id', '<', after);
    if (q.state) query = query.where('state', '=', q.state);
    const { rows, nextCursor } = pageOf(await query.execute(), q.limit, (r) => r.id);
    return { items: await Promise.all(rows.map(view)), nextCursor };
  }

  async function devices(id: string, q: { limit: number; cursor?: string; state?: string; wave?: number }) {
    await require(id);
    let query = db
      .selectFrom('rollout_devices')
      .selectAll()
      .where('rollout_id', '=', id)
      .orderBy('device_id')
      .limit(q.limit + 1);
    const after = decodeCursor(q.cursor);
    if (after) query = query.where('device_id', '>', after);
    if (q.state) query = query.where('state', '=', q.state);
    if (q.wave !== undefined) query = query.where('wave', '=', q.wave);
    const { rows, nextCursor } = pageOf(await query.execute(), q.limit, (r) => r.device_id);
    return { items: rows.map(rolloutDeviceView), nextCursor };
  }

  return {
    repo,
    require,
    plan,
    create,
    transition,
    view,
    list,
    devices,
    placesFor,
    event,
    get: async (id: string) => view(await require(id)),
  };
}

export type Rollouts = ReturnType<typeof createRollouts>;
