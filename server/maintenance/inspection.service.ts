// Periodic fleet inspection (node-cron, INSPECTION_CRON): every active
// terminal checked for hardware, software and network, a verdict each,
// stored as one report with an `inspection.completed` outbox event.
import { sql } from 'kysely';
import type { Db } from '../db/index.ts';
import type { Outbox } from '../events/outbox.ts';
import type { Clock } from '../lib/clock.ts';
import { newId } from '../lib/ids.ts';
import { notFound } from '../lib/errors.ts';
import { inspectDevice, newestVersions, type Verdict, type Vitals } from './inspection.checks.ts';

interface Row {
  id: string;
  model: string;
  merchant_id: string | null;
  firmware: string | null;
  apps: Record<string, string>;
  vitals: Record<string, unknown> | null;
  reader_ok: number | null;
  reader_err: number | null;
  presence: string | null;
}

export function createInspection(deps: { db: Db; clock: Clock; outbox: Outbox; syncState?: () => Promise<void> }) {
  const { db, clock, outbox } = deps;

  async function fleet(): Promise<Row[]> {
    const res = await sql<Row>`
      SELECT d.id, d.model, d.merchant_id, d.firmware, d.apps, s.vitals, s.reader_ok, s.reader_err, p.state AS presence
      FROM devices d LEFT JOIN device_state s ON s.device_id = d.id LEFT JOIN device_presence p ON p.device_id = d.id
      WHERE d.status IN ('active', 'in_repair') ORDER BY d.id`.execute(db);
    return res.rows;
  }

  /** What the catalogue offers: artifacts not expired (an expired one cannot be rolled out). */
  async function released(now: Date) {
    const rows = await db
      .selectFrom('artifacts')
      .select(['component', 'version', 'models'])
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
      .execute();
    return rows.map((r) => ({ component: r.component, version: r.version, models: r.models as string[] }));
  }

  /** Inspects the fleet now and stores the report; returns its summary. */
  async function run() {
    const startedAt = clock.now();
    await deps.syncState?.(); // device_state is written behind the heartbeats
    const rows = await fleet();
    const newest = newestVersions(rows, await released(startedAt));
    const results = rows.map((r) => {
      const reads = (r.reader_ok ?? 0) + (r.reader_err ?? 0);
      const res = inspectDevice(
        {
          model: r.model,
          firmware: r.firmware,
          apps: r.apps,
          vitals: r.vitals as Vitals | null,
          presence: r.presence,
          now: startedAt,
          readerErrorRate: reads >= 20 ? (r.reader_err ?? 0) / reads : null,
        },
        newest,
      );
      return { deviceId: r.id, merchantId: r.merchant_id, model: r.model, ...res };
    });
    const counts: Record<Verdict, number> = { pass: 0, attention: 0, fail: 0 };
    for (const r of results) counts[r.verdict]++;
    const id = newId('insp', startedAt.getTime());
    const completedAt = clock.now();
    const summary = {
      devices: results.length,
      counts,
      newestFirmware: Object.fromEntries(newest.firmware),
      newestApps: Object.fromEntries(newest.apps),
      failing: results
        .filter((r) => r.verdict === 'fail')
        .slice(0, 100)
        .map((r) => r.deviceId),
    };
    await db.transaction().execute(async (trx) => {
      await trx
        .insertInto('inspection_reports')
        .values({ id, started_at: startedAt, completed_at: completedAt, summary: JSON.stringify(summary) })
        .execute();
      for (let i = 0; i < results.length; i += 1000) {
        const chunk = results.slice(i, i + 1000);
        await sql`INSERT INTO inspection_results (report_id, device_id, verdict, checks)
          SELECT ${id}, d, v, c::jsonb FROM unnest(${chunk.map((r) => r.deviceId)}::text[], ${chunk.map((r) => r.verdict)}::text[],
            ${chunk.map((r) => JSON.stringify(r.checks))}::text[]) AS x(d, v, c)`.execute(trx);
      }
      await outbox.add(trx, {
        type: 'inspection.completed',
        subject: { type: 'inspection', id },
        data: {
          reportId: id,
          startedAt: startedAt.toISOString(),
          completedAt: completedAt.toISOString(),
          devices: results.length,
          counts,
          failing: summary.failing,
        },
      });
    });
    outbox.notify();
    return { id, startedAt: startedAt.toISOString(), completedAt: completedAt.toISOString(), ...summary };
  }

  /** The newest report with its per-device results (optionally only one verdict). */
  async function latest(q: { verdict?: Verdict; limit: number }) {
    const rep = await db
      .selectFrom('inspection_reports')
      .selectAll()
      .orderBy('completed_at', 'desc')
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    if (!rep) throw notFound('inspection_report', 'latest');
    const results = await db
      .selectFrom('inspection_results')
      .selectAll()
      .where('report_id', '=', rep.id)
      .$if(q.verdict !== undefined, (b) => b.where('verdict', '=', q.verdict!))
      .orderBy('device_id')
      .limit(q.limit)
      .execute();
    return {
      id: rep.id,
      startedAt: rep.started_at.toISOString(),
      completedAt: rep.completed_at.toISOString(),
      ...rep.summary,
      results: results.map((r) => ({ deviceId: r.device_id, verdict: r.verdict, checks: r.checks })),
    };
  }

  return { run, latest };
}

export type Inspection = ReturnType<typeof createInspection>;
