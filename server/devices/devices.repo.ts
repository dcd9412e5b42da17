// Device queries (Kysely only; rules live in devices.service.ts).
import { sql } from 'kysely';
import semver from 'semver';
import type { Db } from '../db/index.ts';
import type { DeviceRow } from '../db/schema.ts';
import { decodeCursor, pageOf } from '../lib/cursor.ts';

export interface DeviceFilter {
  status?: string;
  model?: string;
  merchantId?: string;
  tag?: string;
  /** semver range on the reported firmware, e.g. ">=2.0.0 <3.0.0". */
  firmware?: string;
  serial?: string;
}

/** Devices as the API shows them: with when each was last heard (device_state, written by the heartbeat writer). */
export function selectDevices(db: Db) {
  return db
    .selectFrom('devices')
    .leftJoin('device_state', 'device_state.device_id', 'devices.id')
    .selectAll('devices')
    .select('device_state.received_at as last_seen_at');
}

export function createDevicesRepo(db: Db) {
  function filtered(f: DeviceFilter) {
    let q = selectDevices(db);
    if (f.status) q = q.where('status', '=', f.status);
    if (f.model) q = q.where('model', '=', f.model);
    if (f.merchantId) q = q.where('merchant_id', '=', f.merchantId);
    if (f.serial) q = q.where('serial', '=', f.serial);
    if (f.tag) q = q.where('tags', '@>', JSON.stringify([f.tag]) as never);
    return q;
  }

  /**
   * A page of devices. The firmware range cannot be said in SQL, nor presence
   * and health (owned by the health module, judged by `keep`), so rows are
   * read in chunks and filtered here until the page is full.
   */
  async function list(
    f: DeviceFilter,
    limit: number,
    cursor?: string,
    keep?: (rows: DeviceRow[]) => Promise<Set<string>>,
  ) {
    let after = decodeCursor(cursor);
    const matched: DeviceRow[] = [];
    const chunk = Math.max(limit + 1, f.firmware || keep ? 500 : 0);
    for (;;) {
      let q = filtered(f).orderBy('id').limit(chunk);
      if (after) q = q.where('id', '>', after);
      const rows = await q.execute();
      const kept = keep && rows.length > 0 ? await keep(rows) : null;
      for (const r of rows) {
        const versionOk =
          !f.firmware || (r.firmware && semver.satisfies(r.firmware, f.firmware, { includePrerelease: true }));
        if (versionOk && (!kept || kept.has(r.id))) matched.push(r);
        if (matched.length > limit) break;
      }
      if (matched.length > limit || rows.length < chunk) break;
      after = rows[rows.length - 1].id;
    }
    return pageOf(matched, limit, (r) => r.id);
  }

  const get = (id: string) => selectDevices(db).where('id', '=', id).executeTakeFirst();

  // `= any(array)`: one parameter however many ids, where `in` would build one per id.
  const anyId = (ids: string[]) => sql<boolean>`id = any(${ids}::text[])`;

  /** Many devices in one query, by id (for the coalescing loaders of the MQTT paths). */
  async function getMany(ids: string[]): Promise<Map<string, DeviceRow>> {
    const rows = await selectDevices(db).where(anyId(ids)).execute();
    return new Map(rows.map((r) => [r.id, r]));
  }

  /** What the MQTT CONNECT check needs of many devices, in one query. */
  async function authRows(ids: string[]) {
    const rows = await db.selectFrom('devices').select(['id', 'status', 'token_hash']).where(anyId(ids)).execute();
    return new Map(rows.map((r) => [r.id, r]));
  }

  return { list, get, getMany, authRows };
}

export type DevicesRepo = ReturnType<typeof createDevicesRepo>;
