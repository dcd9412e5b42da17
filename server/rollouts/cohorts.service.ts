// Cohorts: who a rollout targets — a dynamic filter or a static list.
import semver from 'semver';
import type { Audit } from '../access/audit.service.ts';
import { json, type Db } from '../db/index.ts';
import type { Device, DeviceRow } from '../db/schema.ts';
import { selectDevices } from '../devices/devices.repo.ts';
import type { Principal } from '../http/types.ts';
import type { Clock } from '../lib/clock.ts';
import { decodeCursor, pageOf } from '../lib/cursor.ts';
import { conflict, notFound } from '../lib/errors.ts';
import { newId } from '../lib/ids.ts';
import { deviceView, type HealthFilter } from '../devices/devices.service.ts';
import type { CohortFilter, CohortRow } from './rollouts.tables.ts';

export function versionOf(device: Pick<Device, 'firmware' | 'apps'>, component: string): string | null {
  if (component === 'firmware') return device.firmware;
  return device.apps[component.slice('app:'.length)] ?? null;
}

function matchesVersions(d: Device, versions: Record<string, string> | undefined): boolean {
  if (!versions) return true;
  return Object.entries(versions).every(([component, r]) => {
    const v = versionOf(d, component);
    return v !== null && semver.satisfies(v, r, { includePrerelease: true });
  });
}

function cohortView(c: CohortRow) {
  return { id: c.id, name: c.name, filter: c.filter, deviceIds: c.device_ids, createdAt: c.created_at.toISOString() };
}

export function createCohorts(deps: { db: Db; clock: Clock; audit: Audit; healthFilter?: HealthFilter }) {
  const { db, clock, audit } = deps;

  async function require(id: string): Promise<CohortRow> {
    const row = await db.selectFrom('cohorts').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('cohort', id);
    return row;
  }

  async function create(actor: Principal, input: { name: string; filter?: CohortFilter; deviceIds?: string[] }) {
    const id = newId('coh', clock.nowMs());
    await db.transaction().execute(async (trx) => {
      const taken = await trx.selectFrom('cohorts').select('id').where('name', '=', input.name).executeTakeFirst();
      if (taken) throw conflict('cohort_name_taken', `a cohort named '${input.name}' exists`, { cohortId: taken.id });
      await trx
        .insertInto('cohorts')
        .values({
          id,
          name: input.name,
          filter: input.filter ? json(input.filter) : null,
          device_ids: input.deviceIds ? json([...new Set(input.deviceIds)]) : null,
          created_at: clock.now(),
          created_by: actor.keyId,
        })
        .execute();
      await audit.record(trx, actor, {
        action: 'cohort.created',
        targetType: 'cohort',
        targetId: id,
        details: { name: input.name },
      });
    });
    return cohortView(await require(id));
  }

  /** Every device of the cohort, in id order (static lists keep only devices that exist). */
  async function members(cohort: CohortRow): Promise<DeviceRow[]> {
    if (cohort.device_ids) {
      if (cohort.device_ids.length === 0) return [];
      return selectDevices(db).where('id', 'in', cohort.device_ids).orderBy('id').execute();
    }
    const f = cohort.filter ?? {};
    let q = selectDevices(db).orderBy('id');
    if (f.models?.length) q = q.where('model', 'in', f.models);
    if (f.merchantIds?.length) q = q.where('merchant_id', 'in', f.merchantIds);
    if (f.statuses?.length) q = q.where('status', 'in', f.statuses);
    for (const tag of f.tags ?? []) q = q.where('tags', '@>', JSON.stringify([tag]) as never);
    const rows = (await q.execute()).filter((d) => matchesVersions(d, f.versions));
    if (!(f.presence?.length || f.health?.length) || !deps.healthFilter) return rows;
    const keep = await deps.healthFilter(
      rows.map((d) => d.id),
      { presence: f.presence, health: f.health },
    );
    return rows.filter((d) => keep.has(d.id));
  }

  async function list(q: { limit: number; cursor?: string }) {
    let query = db
      .selectFrom('cohorts')
      .selectAll()
      .orderBy('id')
      .limit(q.limit + 1);
    const after = decodeCursor(q.cursor);
    if (after) query = query.where('id', '>', after);
    const { rows, nextCursor } = pageOf(await query.execute(), q.limit, (r) => r.id);
    return { items: rows.map(cohortView), nextCursor };
  }

  async function preview(id: string, q: { limit: number; cursor?: string }) {
    const all = await members(await require(id));
    const after = decodeCursor(q.cursor);
    const rest = after ? all.filter((d) => d.id > after) : all;
    const { rows, nextCursor } = pageOf(rest.slice(0, q.limit + 1), q.limit, (d) => d.id);
    return { items: rows.map(deviceView), nextCursor, total: all.length };
  }

  return { create, list, get: async (id: string) => cohortView(await require(id)), require, members, preview };
}

export type Cohorts = ReturnType<typeof createCohorts>;
