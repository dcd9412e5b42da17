// The fleet's state as Prometheus gauges, counted in the database when
// /metrics is scraped: terminals by presence, open alerts by severity, open
// tickets by state and past their SLA, terminals of running or paused rollouts
// by state, webhook deliveries waiting. One statement per scrape, shared by
// every gauge; when the database does not answer the gauges keep their last
// values and the scrape still succeeds (the error is logged).
import { sql } from 'kysely';
import type { Logger } from 'pino';
import { Gauge } from 'prom-client';
import type { Db } from '../db/index.ts';
import type { Clock } from '../lib/clock.ts';
import type { Metrics } from '../lib/metrics.ts';

type Counts = Record<string, number | string>;

interface Snapshot {
  presence: Counts;
  alerts: Counts;
  tickets: Counts;
  ticketsBreached: number | string;
  rolloutDevices: Counts;
  hookBacklog: number | string;
}

export function registerFleetGauges(deps: { db: Db; metrics: Metrics; clock: Clock; log: Logger }): void {
  const { db, clock, log } = deps;
  const registers = [deps.metrics.registry];
  /** The count in flight: the gauges of one scrape are collected together and share it. */
  let snapshot: Promise<Snapshot | null> | undefined;

  async function count(): Promise<Snapshot | null> {
    try {
      const now = clock.now();
      const res = await sql<Snapshot>`
        SELECT
          (SELECT coalesce(json_object_agg(k, n), '{}') FROM (
            SELECT coalesce(p.state, 'unknown') AS k, count(*) AS n FROM devices d
            LEFT JOIN device_presence p ON p.device_id = d.id WHERE d.status <> 'decommissioned' GROUP BY 1) x) AS presence,
          (SELECT coalesce(json_object_agg(k, n), '{}') FROM (
            SELECT severity AS k, count(*) AS n FROM alerts WHERE state IN ('open', 'acknowledged') GROUP BY 1) x) AS alerts,
          (SELECT coalesce(json_object_agg(k, n), '{}') FROM (
            SELECT state AS k, count(*) AS n FROM tickets WHERE state NOT IN ('resolved', 'cancelled') GROUP BY 1) x) AS tickets,
          (SELECT count(*) FROM tickets WHERE state NOT IN ('resolved', 'cancelled') AND sla_due_at < ${now}) AS "ticketsBreached",
          (SELECT coalesce(json_object_agg(k, n), '{}') FROM (
            SELECT rd.state AS k, count(*) AS n FROM rollout_devices rd JOIN rollouts r ON r.id = rd.rollout_id
            WHERE r.state IN ('running', 'paused') GROUP BY 1) x) AS "rolloutDevices",
          (SELECT count(*) FROM hook_deliveries WHERE state IN ('pending', 'delivering', 'failed')) AS "hookBacklog"`.execute(
        db,
      );
      return res.rows[0] ?? null;
    } catch (err) {
      log.warn({ err }, 'fleet gauges not counted');
      return null;
    }
  }

  function current(): Promise<Snapshot | null> {
    snapshot ??= count().finally(() => {
      snapshot = undefined;
    });
    return snapshot;
  }

  function byLabel(name: string, help: string, label: string, pick: (s: Snapshot) => Counts): void {
    new Gauge({
      name,
      help,
      labelNames: [label],
      registers,
      async collect() {
        const s = await current();
        if (!s) return;
        this.reset();
        for (const [value, n] of Object.entries(pick(s))) this.set({ [label]: value }, Number(n));
      },
    });
  }

  function single(name: string, help: string, pick: (s: Snapshot) => number | string): void {
    new Gauge({
      name,
      help,
      registers,
      async collect() {
        const s = await current();
        if (s) this.set(Number(pick(s)));
      },
    });
  }

  byLabel(
    'posfleet_devices',
    'terminals not decommissioned, by presence (unknown: never heard from)',
    'presence',
    (s) => s.presence,
  );
  byLabel('posfleet_alerts_open', 'alerts open or acknowledged, by severity', 'severity', (s) => s.alerts);
  byLabel(
    'posfleet_tickets_open',
    'maintenance tickets not resolved or cancelled, by state',
    'state',
    (s) => s.tickets,
  );
  single('posfleet_tickets_sla_breached', 'open maintenance tickets past their SLA due time', (s) => s.ticketsBreached);
  byLabel(
    'posfleet_rollout_devices',
    'terminals of running or paused rollouts, by their state in the rollout',
    'state',
    (s) => s.rolloutDevices,
  );
  single(
    'posfleet_hook_deliveries_waiting',
    'webhook deliveries pending, being sent or waiting for a retry',
    (s) => s.hookBacklog,
  );
}
