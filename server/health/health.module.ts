// Wires telemetry, health and maintenance together (the after-sales service):
// ingest → presence (in the batch transaction) → rule evaluation (after the
// commit) → alerts → tickets; predictions and inspection as jobs.
import type { Logger } from 'pino';
import type { Audit } from '../access/audit.service.ts';
import type { Db } from '../db/index.ts';
import type { Devices } from '../devices/devices.service.ts';
import type { FleetBus } from '../events/bus-events.ts';
import type { Outbox } from '../events/outbox.ts';
import type { JobSpec } from '../jobs/scheduler.ts';
import type { Clock } from '../lib/clock.ts';
import type { UplinkHandlers } from '../mqtt/router.ts';
import { createDeviceEvents } from '../telemetry/events.ts';
import { createHistory } from '../telemetry/history.service.ts';
import { createIngest, type IngestOptions } from '../telemetry/ingest.ts';
import { telemetryRoutes } from '../telemetry/telemetry.routes.ts';
import { createInspection } from '../maintenance/inspection.service.ts';
import { createReports } from '../maintenance/reports.service.ts';
import { reportRoutes } from '../maintenance/reports.routes.ts';
import { createSwap } from '../maintenance/swap.service.ts';
import { ticketRoutes } from '../maintenance/tickets.routes.ts';
import { createTickets } from '../maintenance/tickets.service.ts';
import { createAlerts } from './alerts.service.ts';
import { createDeviceHealth } from './device-health.service.ts';
import { createEvaluator } from './evaluator.ts';
import { healthRoutes } from './health.routes.ts';
import { LEAD_DAYS, createPredictions } from './predictions.service.ts';
import { createPresence } from './presence.service.ts';
import { createRules } from './rules.service.ts';

export interface HealthModuleDeps {
  db: Db;
  clock: Clock;
  bus: FleetBus;
  log: Logger;
  audit: Audit;
  outbox: Outbox;
  devices: Devices;
  defaultHeartbeatS: number;
  inspectionCron: string;
  presenceGraceS?: number;
  ingest?: IngestOptions;
}

export function createHealthModule(deps: HealthModuleDeps) {
  const { db, clock, bus, log, audit, outbox, devices } = deps;
  const rules = createRules({ db, clock, audit });
  const alerts = createAlerts({
    db,
    clock,
    audit,
    outbox,
    statesCleared: (deviceId, ruleId) => evaluator.forgetStates(deviceId, ruleId),
  });
  const tickets = createTickets({ db, clock, audit, outbox, devices, alerts });
  const swap = createSwap({ db, devices, tickets, alerts });
  const evaluator = createEvaluator({
    db,
    rules,
    alerts,
    outbox,
    log: log.child({ part: 'rules' }),
    openTicket: async (trx, alert, device, rule) =>
      (
        await tickets.openInTrx(trx, {
          deviceId: device.id,
          kind: rule.ticket?.kind ?? 'repair',
          part: rule.ticket?.part ?? null,
          severity: rule.severity,
          title: rule.name,
          description: `${alert.message}. ${rule.remediation ?? ''}`.trim(),
          source: 'rule',
          alertId: alert.id,
        })
      ).id,
  });
  const presence = createPresence({
    db,
    clock,
    bus,
    outbox,
    defaultIntervalS: deps.defaultHeartbeatS,
    graceMs: (deps.presenceGraceS ?? 60) * 1000,
    observe: (obs) => evaluator.evaluateNow(obs),
    syncState: () => ingest.sync(),
  });
  const ingest = createIngest({
    db,
    ...deps.ingest,
    hooks: {
      needsTransaction: presence.needsWrite,
      inTransaction: presence.markOnline,
      afterCommit: evaluator.observe,
    },
  });
  const events = createDeviceEvents({ db, observe: evaluator.observe });
  const history = createHistory({ db, clock });
  const predictions = createPredictions({ db, clock, outbox, tickets });
  const deviceHealth = createDeviceHealth({ db, presence, history, predictions });
  const inspection = createInspection({ db, clock, outbox, syncState: () => ingest.sync() });
  const reports = createReports({ db, clock, leadDays: LEAD_DAYS });

  const uplinkHandlers: UplinkHandlers = {
    heartbeat: (ctx, hb) => ingest.accept(ctx.deviceId, ctx.receivedAt, hb),
    event: (ctx, ev) => events.record(ctx.deviceId, ctx.receivedAt, ev),
  };

  const jobs: JobSpec[] = [
    { name: 'health.presence-sweep', cron: '*/15 * * * * *', jitterMs: 2_000, run: () => presence.sweep() },
    { name: 'telemetry.rollup', cron: '5 * * * *', jitterMs: 60_000, run: () => history.rollup() },
    { name: 'telemetry.retention', cron: '30 3 * * *', jitterMs: 300_000, run: () => history.retain() },
    { name: 'health.predictions', cron: '15 4 * * *', jitterMs: 300_000, run: () => predictions.run() },
    { name: 'maintenance.inspection', cron: deps.inspectionCron, jitterMs: 60_000, run: () => inspection.run() },
  ];

  const routers = [
    healthRoutes({ rules, alerts, deviceHealth }),
    telemetryRoutes({ history, events }),
    ticketRoutes({ tickets, swap }),
    reportRoutes({ reports, inspection }),
  ];

  /** Writes the heartbeats and events in flight, then the evaluations they caused. */
  async function drain(): Promise<void> {
    await Promise.all([ingest.drain(), events.drain()]);
    await evaluator.drain();
  }

  return {
    rules,
    alerts,
    tickets,
    swap,
    evaluator,
    presence,
    ingest,
    events,
    history,
    predictions,
    deviceHealth,
    inspection,
    reports,
    uplinkHandlers,
    jobs,
    routers,
    drain,
    seed: () => rules.seedDefaults(),
  };
}

export type HealthModule = ReturnType<typeof createHealthModule>;
