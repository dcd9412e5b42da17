// The predictions job: trends over the last WINDOW_DAYS of heartbeats (SQL
// regression, one pass over the fleet), stored per device, and a ticket
// opened when a part is due within the lead time.
import { sql } from 'kysely';
import type { Db } from '../db/index.ts';
import type { Outbox } from '../events/outbox.ts';
import type { Clock } from '../lib/clock.ts';
import type { Tickets } from '../maintenance/tickets.service.ts';
import { readerCountSql } from '../telemetry/derive.ts';
import {
  PREDICTION_TICKETS,
  predictBattery,
  predictPrinterHead,
  predictReader,
  type Prediction,
  type Trend,
} from './predictions.ts';

export const WINDOW_DAYS = 30;
export const LEAD_DAYS = 14;
const DAY_MS = 86_400_000;

interface TrendRow {
  device_id: string;
  model: string;
  bh_slope: number | null;
  bh_icpt: number | null;
  bh_n: number;
  lp_slope: number | null;
  lp_icpt: number | null;
  lp_n: number;
  rr_slope: number | null;
  rr_icpt: number | null;
  rr_n: number;
}

export function createPredictions(deps: { db: Db; clock: Clock; outbox: Outbox; tickets: Tickets; leadDays?: number }) {
  const { db, clock } = deps;
  const leadDays = deps.leadDays ?? LEAD_DAYS;

  /** Regression lines per device, x in days since epoch; evaluated at now. */
  async function trends(deviceId?: string): Promise<TrendRow[]> {
    const since = new Date(clock.nowMs() - WINDOW_DAYS * DAY_MS).toISOString();
    const res = await sql<TrendRow>`
      WITH hb AS (
        SELECT h.device_id, extract(epoch FROM h.received_at) / 86400 AS x, date_trunc('day', h.received_at) AS day,
          (h.vitals #>> '{battery,healthPct}')::float8 AS bh, (h.vitals #>> '{printer,linesPrinted}')::float8 AS lp,
          ${readerCountSql('h.vitals', 'Ok')} AS rok, ${readerCountSql('h.vitals', 'Err')} AS rerr
        FROM heartbeats h WHERE h.received_at >= ${since}::timestamptz ${deviceId ? sql`AND h.device_id = ${deviceId}` : sql``}
      ), daily AS (
        SELECT device_id, extract(epoch FROM day) / 86400 AS x, sum(rerr) / sum(rok + rerr) AS rate
        FROM hb GROUP BY device_id, day HAVING sum(rok + rerr) >= 20
      ), r AS (
        SELECT device_id, regr_slope(rate, x) AS rr_slope, regr_intercept(rate, x) AS rr_icpt, count(*)::int AS rr_n FROM daily GROUP BY device_id
      )
      SELECT hb.device_id, d.model,
        regr_slope(bh, x) AS bh_slope, regr_intercept(bh, x) AS bh_icpt, count(bh)::int AS bh_n,
        regr_slope(lp, x) AS lp_slope, regr_intercept(lp, x) AS lp_icpt, count(lp)::int AS lp_n,
        max(r.rr_slope) AS rr_slope, max(r.rr_icpt) AS rr_icpt, coalesce(max(r.rr_n), 0)::int AS rr_n
      FROM hb JOIN devices d ON d.id = hb.device_id AND d.status IN ('active', 'in_repair')
      LEFT JOIN r ON r.device_id = hb.device_id
      GROUP BY hb.device_id, d.model`.execute(db);
    return res.rows;
  }

  function predict(row: TrendRow, nowDays: number): Prediction[] {
    const trend = (slope: number | null, icpt: number | null, n: number): Trend => ({
      slopePerDay: slope === null ? null : Number(slope),
      current: slope === null || icpt === null ? null : Number(icpt) + Number(slope) * nowDays,
      samples: Number(n),
    });
    const out = [
      predictBattery(trend(row.bh_slope, row.bh_icpt, row.bh_n)),
      predictReader(trend(row.rr_slope, row.rr_icpt, row.rr_n)),
    ];
    const head = predictPrinterHead(row.model, trend(row.lp_slope, row.lp_icpt, row.lp_n));
    if (head) out.push(head);
    return out.filter((p) => p.basis.samples !== 0 && p.basis.days !== 0);
  }

  /** One pass over the fleet (or one device); returns the tickets opened. Idempotent. */
  async function run(deviceId?: string): Promise<{ devices: number; ticketsOpened: string[] }> {
    const now = clock.now();
    const nowDays = now.getTime() / DAY_MS;
    const opened: string[] = [];
    const rows = await trends(deviceId);
    for (const row of rows) {
      const preds = predict(row, nowDays);
      await db.transaction().execute(async (trx) => {
        for (const p of preds) {
          const dueAt = p.dueInDays === null ? null : new Date(now.getTime() + p.dueInDays * DAY_MS);
          await trx
            .insertInto('device_predictions')
            .values({
              device_id: row.device_id,
              kind: p.kind,
              due_in_days: p.dueInDays,
              due_at: dueAt,
              basis: JSON.stringify(p.basis),
              computed_at: now,
            })
            .onConflict((oc) =>
              oc.columns(['device_id', 'kind']).doUpdateSet((eb) => ({
                due_in_days: eb.ref('excluded.due_in_days'),
                due_at: eb.ref('excluded.due_at'),
                basis: eb.ref('excluded.basis'),
                computed_at: eb.ref('excluded.computed_at'),
              })),
            )
            .execute();
          if (p.dueInDays === null || p.dueInDays > leadDays) continue;
          const t = PREDICTION_TICKETS[p.kind];
          const days = Math.round(p.dueInDays);
          const res = await deps.tickets.openInTrx(trx, {
            deviceId: row.device_id,
            kind: t.kind,
            part: t.part,
            severity: 'warning',
            source: 'prediction',
            title: `${t.title} in about ${days} day${days === 1 ? '' : 's'}`,
            description: JSON.stringify(p.basis),
          });
          if (res.created) opened.push(res.id);
        }
      });
    }
    if (opened.length > 0) deps.outbox.notify();
    return { devices: rows.length, ticketsOpened: opened };
  }

  async function forDevice(deviceId: string) {
    const rows = await db
      .selectFrom('device_predictions')
      .selectAll()
      .where('device_id', '=', deviceId)
      .orderBy('kind')
      .execute();
    return rows.map((r) => ({
      kind: r.kind,
      dueInDays: r.due_in_days === null ? null : Math.round(r.due_in_days),
      dueAt: r.due_at?.toISOString() ?? null,
      summary:
        r.due_in_days === null
          ? 'no replacement due on the current trend'
          : `maintenance due in about ${Math.round(r.due_in_days)} days`,
      basis: r.basis,
      computedAt: r.computed_at.toISOString(),
    }));
  }

  return { run, forDevice };
}

export type Predictions = ReturnType<typeof createPredictions>;
