// The fleet report: terminals counted by presence, health, model, firmware,
// merchant and status, plus ticket and maintenance-due figures.
import { sql } from 'kysely';
import type { Db } from '../db/index.ts';
import type { Clock } from '../lib/clock.ts';

type Counts = Record<string, number>;

export function createReports(deps: { db: Db; clock: Clock; leadDays: number }) {
  const { db } = deps;

  async function countBy(expr: string, where = `d.status <> 'decommissioned'`): Promise<Counts> {
    const res = await sql<{ k: string | null; n: number }>`
      WITH health AS (
        SELECT device_id, max(CASE severity WHEN 'critical' THEN 3 WHEN 'warning' THEN 2 WHEN 'info' THEN 1 END) AS rank
        FROM alerts WHERE state <> 'resolved' AND NOT muted GROUP BY device_id
      )
      SELECT ${sql.raw(expr)} AS k, count(*)::int AS n
      FROM devices d LEFT JOIN device_presence p ON p.device_id = d.id LEFT JOIN health h ON h.device_id = d.id
      WHERE ${sql.raw(where)} GROUP BY 1 ORDER BY 2 DESC`.execute(db);
    return Object.fromEntries(res.rows.map((r) => [r.k ?? 'unknown', Number(r.n)]));
  }

  async function fleet() {
    const due = new Date(deps.clock.nowMs() + deps.leadDays * 86_400_000);
    const [byStatus, byPresence, byHealth, byModel, byFirmware, byMerchant, tickets, maintenanceDue] =
      await Promise.all([
        countBy('d.status', 'true'),
        countBy(`coalesce(p.state, 'unknown')`),
        countBy(`CASE h.rank WHEN 3 THEN 'critical' WHEN 2 THEN 'warning' WHEN 1 THEN 'info' ELSE 'ok' END`),
        countBy('d.model'),
        countBy(`coalesce(d.firmware, 'unknown')`),
        countBy(`coalesce(d.merchant_id, 'none')`),
        db
          .selectFrom('tickets')
          .select(['state', (eb) => eb.fn.countAll<number>().as('n')])
          .groupBy('state')
          .execute(),
        db
          .selectFrom('device_predictions')
          .select(['kind', (eb) => eb.fn.countAll<number>().as('n')])
          .where('due_at', '<=', due)
          .groupBy('kind')
          .execute(),
      ]);
    return {
      generatedAt: deps.clock.now().toISOString(),
      devices: Object.values(byStatus).reduce((a, b) => a + b, 0),
      byStatus,
      byPresence,
      byHealth,
      byModel,
      byFirmware,
      byMerchant,
      tickets: Object.fromEntries(tickets.map((t) => [t.state, Number(t.n)])),
      maintenanceDueWithinLead: {
        leadDays: deps.leadDays,
        ...Object.fromEntries(maintenanceDue.map((m) => [m.kind, Number(m.n)])),
      },
    };
  }

  return { fleet };
}

export type Reports = ReturnType<typeof createReports>;
