// Heartbeat history: raw rows for RAW_DAYS, hourly roll-ups for HOURLY_DAYS,
// read at `GET /devices/:id/heartbeats?resolution=raw|hour`. One aggregate
// serves the roll-up job and the live hours it has not rolled up yet.
import { sql, type RawBuilder } from 'kysely';
import type { Db } from '../db/index.ts';
import type { Clock } from '../lib/clock.ts';
import { badRequest, notFound } from '../lib/errors.ts';
import { decodeCursor, encodeCursor } from '../lib/cursor.ts';
import { readerCountSql } from './derive.ts';

export const RAW_DAYS = 30;
export const HOURLY_DAYS = 365;
const DAY_MS = 86_400_000;
const HOUR_MS = 3600_000;

const num = (path: string) => sql.raw(`(vitals #>> '{${path.replace(/\./g, ',')}}')::float8`);

/** Per device and hour: the figures an operator and the predictions look at. */
function hourlyStats(): RawBuilder<unknown> {
  return sql`jsonb_build_object(
    'batteryPctAvg', avg(${num('battery.pct')}), 'batteryHealthPctMin', min(${num('battery.healthPct')}),
    'signalDbmAvg', avg(${num('net.signalDbm')}), 'latencyMsAvg', avg(${num('net.latencyMs')}),
    'cpuPctMax', max(${num('sys.cpuPct')}), 'storageFreePctMin', min(${num('sys.storageFreePct')}),
    'txCount', sum(${num('tx.count')}), 'txFailed', sum(${num('tx.failed')}),
    'readerOk', sum(${readerCountSql('vitals', 'Ok')}), 'readerErr', sum(${readerCountSql('vitals', 'Err')}),
    'linesPrintedMax', max(${num('printer.linesPrinted')}), 'driftMsAvg', avg(drift_ms))`;
}

export interface HistoryQuery {
  from?: string;
  to?: string;
  resolution: 'raw' | 'hour';
  limit: number;
  cursor?: string;
}

export function createHistory(deps: { db: Db; clock: Clock }) {
  const { db, clock } = deps;

  /** Recomputes the hours since the last roll-up (and the last 3, for late heartbeats); idempotent. */
  async function rollup(): Promise<number> {
    const now = clock.nowMs();
    const last = await db
      .selectFrom('heartbeat_hourly')
      .select((eb) => eb.fn.max('hour').as('h'))
      .executeTakeFirst();
    const lastMs = last?.h ? new Date(last.h as Date).getTime() : now - RAW_DAYS * DAY_MS;
    const from = new Date(Math.max(now - RAW_DAYS * DAY_MS, Math.min(lastMs, now - 3 * HOUR_MS)));
    const until = new Date(Math.floor(now / HOUR_MS) * HOUR_MS); // completed hours only
    const res = await sql`
      INSERT INTO heartbeat_hourly (device_id, hour, count, stats)
      SELECT device_id, date_trunc('hour', received_at), count(*), ${hourlyStats()}
      FROM heartbeats WHERE received_at >= date_trunc('hour', ${from.toISOString()}::timestamptz) AND received_at < ${until.toISOString()}::timestamptz
      GROUP BY device_id, date_trunc('hour', received_at)
      ON CONFLICT (device_id, hour) DO UPDATE SET count = excluded.count, stats = excluded.stats`.execute(db);
    return Number(res.numAffectedRows ?? 0);
  }

  /** Rolls up, then deletes raw rows past RAW_DAYS and roll-ups past HOURLY_DAYS. */
  async function retain(): Promise<{ raw: number; hourly: number }> {
    await rollup();
    const now = clock.nowMs();
    const rawCut = new Date(now - RAW_DAYS * DAY_MS).toISOString();
    let raw = 0;
    // In chunks, so a large backlog never holds one long transaction.
    for (;;) {
      const res =
        await sql`DELETE FROM heartbeats WHERE ctid IN (SELECT ctid FROM heartbeats WHERE received_at < ${rawCut}::timestamptz LIMIT 10000)`.execute(
          db,
        );
      const n = Number(res.numAffectedRows ?? 0);
      raw += n;
      if (n < 10_000) break;
    }
    await db.deleteFrom('device_boots').where('at', '<', new Date(rawCut)).execute();
    const hourly = await db
      .deleteFrom('heartbeat_hourly')
      .where('hour', '<', new Date(now - HOURLY_DAYS * DAY_MS))
      .executeTakeFirst();
    await db
      .deleteFrom('device_events')
      .where('received_at', '<', new Date(now - HOURLY_DAYS * DAY_MS))
      .execute();
    return { raw, hourly: Number(hourly.numDeletedRows) };
  }

  function range(q: HistoryQuery): { from: Date; to: Date } {
    const to = q.to ? new Date(q.to) : clock.now();
    const from = q.from ? new Date(q.from) : new Date(to.getTime() - DAY_MS);
    if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime()) || from > to)
      throw badRequest('invalid_range', 'from and to must be ISO times with from <= to');
    return { from, to };
  }

  async function raw(deviceId: string, from: Date, to: Date, limit: number, cursor?: string) {
    const after = decodeCursor(cursor);
    const rows = await db
      .selectFrom('heartbeats')
      .selectAll()
      .where('device_id', '=', deviceId)
      .where('received_at', '>=', from)
      .where('received_at', '<=', to)
      .$if(after !== null, (q) =>
        q.where(
          sql<boolean>`(received_at, boot_id, seq) > (${after!.split('|')[0]}::timestamptz, ${after!.split('|')[1]}, ${Number(after!.split('|')[2])})`,
        ),
      )
      .orderBy('received_at')
      .orderBy('boot_id')
      .orderBy('seq')
      .limit(limit + 1)
      .execute();
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      resolution: 'raw' as const,
      items: page.map((r) => ({
        bootId: r.boot_id,
        seq: Number(r.seq),
        ts: r.ts.toISOString(),
        receivedAt: r.received_at.toISOString(),
        driftMs: Number(r.drift_ms),
        firmware: r.firmware,
        vitals: r.vitals,
      })),
      nextCursor:
        rows.length > limit ? encodeCursor(`${last.received_at.toISOString()}|${last.boot_id}|${last.seq}`) : null,
    };
  }

  async function hourly(deviceId: string, from: Date, to: Date) {
    const rolled = await db
      .selectFrom('heartbeat_hourly')
      .selectAll()
      .where('device_id', '=', deviceId)
      .where('hour', '>=', new Date(Math.floor(from.getTime() / HOUR_MS) * HOUR_MS))
      .where('hour', '<=', to)
      .orderBy('hour')
      .execute();
    const liveFrom = rolled.length ? new Date(rolled[rolled.length - 1].hour.getTime() + HOUR_MS) : from;
    const live = await sql<{ hour: Date; count: number; stats: Record<string, number | null> }>`
      SELECT date_trunc('hour', received_at) AS hour, count(*)::int AS count, ${hourlyStats()} AS stats
      FROM heartbeats WHERE device_id = ${deviceId} AND received_at >= date_trunc('hour', ${liveFrom.toISOString()}::timestamptz)
        AND received_at <= ${to.toISOString()}::timestamptz
      GROUP BY 1 ORDER BY 1`.execute(db);
    const items = [...rolled.map((r) => ({ hour: r.hour, count: r.count, stats: r.stats })), ...live.rows].map((r) => ({
      hour: new Date(r.hour).toISOString(),
      count: Number(r.count),
      stats: r.stats,
    }));
    return { resolution: 'hour' as const, items, nextCursor: null };
  }

  async function list(deviceId: string, q: HistoryQuery) {
    const exists = await db.selectFrom('devices').select('id').where('id', '=', deviceId).executeTakeFirst();
    if (!exists) throw notFound('device', deviceId);
    const { from, to } = range(q);
    return q.resolution === 'hour' ? hourly(deviceId, from, to) : raw(deviceId, from, to, q.limit, q.cursor);
  }

  /** Latest state as the device view shows it. */
  async function latest(deviceId: string) {
    const s = await db.selectFrom('device_state').selectAll().where('device_id', '=', deviceId).executeTakeFirst();
    if (!s) return null;
    const reads = s.reader_ok + s.reader_err;
    return {
      bootId: s.boot_id,
      seq: Number(s.seq),
      ts: s.ts.toISOString(),
      receivedAt: s.received_at.toISOString(),
      driftMs: Number(s.drift_ms),
      vitals: s.vitals,
      readerErrorRate: reads > 0 ? s.reader_err / reads : null,
    };
  }

  async function boots(deviceId: string, limit = 20) {
    const rows = await db
      .selectFrom('device_boots')
      .selectAll()
      .where('device_id', '=', deviceId)
      .orderBy('at', 'desc')
      .limit(limit)
      .execute();
    return rows.map((r) => ({ bootId: r.boot_id, at: r.at.toISOString(), reason: r.reason }));
  }

  return { rollup, retain, list, latest, boots };
}

export type History = ReturnType<typeof createHistory>;
