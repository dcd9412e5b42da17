// Builds the domain modules and wires them together: routers, MQTT uplink
// handlers, periodic jobs. Kept apart from app.ts so the root stays about
// processes and ports.
import type { Logger } from 'pino';
import type { Config } from './config.ts';
import type { Db } from './db/index.ts';
import type { FleetBus } from './events/bus-events.ts';
import { createOutbox } from './events/outbox.ts';
import { createHooks } from './hooks/hooks.module.ts';
import type { Clock } from './lib/clock.ts';
import type { Metrics } from './lib/metrics.ts';
import { accessRoutes } from './access/access.routes.ts';
import { createApiKeys } from './access/api-keys.service.ts';
import { createAudit } from './access/audit.service.ts';
import { createArtifactsModule } from './artifacts/artifacts.module.ts';
import { createBackupsModule } from './backups/backups.module.ts';
import { createCommands } from './devices/commands.service.ts';
import { deviceRoutes } from './devices/devices.routes.ts';
import { createDevices } from './devices/devices.service.ts';
import { enrollmentRoutes } from './devices/enrollment.routes.ts';
import { createEnrollment } from './devices/enrollment.service.ts';
import { LateLink } from './devices/link.ts';
import { merchantRoutes } from './devices/merchants.routes.ts';
import { createMerchants } from './devices/merchants.service.ts';
import { createSessions } from './devices/sessions.ts';
import type { JobSpec } from './jobs/scheduler.ts';
import type { UplinkHandlers } from './mqtt/router.ts';
import { createHealthModule } from './health/health.module.ts';
import { createRolloutsModule } from './rollouts/rollouts.module.ts';
import type { DownlinkKind } from '../protocol/topics.ts';

export interface ModuleDeps {
  config: Readonly<Config>;
  db: Db;
  /** PostgreSQL appends heartbeats with COPY; PGlite cannot. */
  dbKind: 'postgres' | 'pglite';
  clock: Clock;
  bus: FleetBus;
  log: Logger;
  mqttUrl: () => string;
  publicUrl: () => string;
  metrics: Metrics;
}

export function createModules(deps: ModuleDeps) {
  const { config, db, clock, bus, log } = deps;
  const link = new LateLink();
  const audit = createAudit({ db, clock });
  // One outbox for the process: services write fleet events in their transactions; hooks deliver them.
  const outbox = createOutbox({ clock });
  const apiKeys = createApiKeys({ db, clock, audit, log });
  const merchants = createMerchants({ db, clock, audit });
  const defaultHeartbeatS = config.heartbeatIntervalS;
  const devices = createDevices({ db, clock, audit, bus, outbox, link, defaultHeartbeatS, mqttUrl: deps.mqttUrl });
  const enrollment = createEnrollment({ db, clock, audit, bus, outbox, devices, defaultHeartbeatS });
  const commands = createCommands({
    db,
    clock,
    audit,
    bus,
    outbox,
    link,
    devices,
    log,
    defaultTtlS: config.commandTtlS,
  });
  const sessions = createSessions({ db, clock, bus, log });
  // Telemetry, health and maintenance (issue 4).
  const health = createHealthModule({
    db,
    clock,
    bus,
    log,
    audit,
    outbox,
    devices,
    defaultHeartbeatS,
    inspectionCron: config.inspectionCron,
    // Heartbeat batches written at once, sharded by device (each device's in
    // order). On PostgreSQL six of the pool's ten connections: appends commit
    // in parallel while the event loop builds the next batches, which took
    // the saturated rate from ~22,000 to ~26,000 heartbeats/s over two
    // (bench/ingest); PGlite has one connection, where two keep one batch
    // building while the other commits.
    ingest: {
      concurrency: deps.dbKind === 'postgres' ? 6 : 2,
      copy: deps.dbKind === 'postgres',
      onError: (err) => log.error({ err }, 'writing device state failed; retrying'),
      onBatch: (size, fresh, seconds) => {
        deps.metrics.heartbeatsPersisted.inc(fresh);
        if (size > fresh) deps.metrics.heartbeatsDuplicate.inc(size - fresh);
        deps.metrics.ingestBatchSize.observe(size);
        deps.metrics.ingestBatchSeconds.observe(seconds);
      },
    },
  });
  const ingest = health.ingest;
  devices.setHealthFilter((ids, f) => health.deviceHealth.matching(ids, f));
  const hooks = createHooks({ config, db, clock, audit, outbox, log, metrics: deps.metrics });
  const artifacts = createArtifactsModule({
    config,
    db,
    clock,
    audit,
    log,
    metrics: deps.metrics,
    devices,
    publicUrl: deps.publicUrl,
  });
  const rollouts = createRolloutsModule({
    db,
    clock,
    log,
    audit,
    outbox,
    commands,
    artifacts: artifacts.artifacts,
    signedDownloadUrl: artifacts.signedDownloadUrl,
    isConnected: (id) => link.isConnected(id),
    healthFilter: (ids, f) => health.deviceHealth.matching(ids, f), // cohorts filter as GET /devices does
    // Health gate of the soak time: a critical alert raised since the install fails the update.
    healthGate: async (checks) => {
      const hits = await health.alerts.criticalSince(checks);
      return new Map([...hits].map(([deviceId, rule]) => [deviceId, `critical alert during soak: ${rule}`]));
    },
  });

  const backups = createBackupsModule({ config, db, dbKind: deps.dbKind, clock, log });

  const uplinkHandlers: UplinkHandlers = {
    ...health.uplinkHandlers,
    heartbeat: async (ctx, hb) => {
      await health.uplinkHandlers.heartbeat!(ctx, hb);
      // After the commit: the engine compares the reported version with the target.
      rollouts
        .onHeartbeat(ctx.deviceId, hb)
        .catch((err: unknown) => log.error({ err, deviceId: ctx.deviceId }, 'rollout heartbeat check failed'));
    },
    ota: (ctx, report) => rollouts.onOtaReport(ctx.deviceId, report),
    reply: (ctx, reply) => commands.recordReply(ctx.deviceId, reply),
    presence: async (ctx, msg) => {
      if (msg.state === 'offline') await sessions.will(ctx.deviceId);
    },
  };

  /** A terminal subscribed to a downlink topic: send what it is owed (HOUSE-RULES §5). */
  function onSubscribed(deviceId: string, kind: DownlinkKind): void {
    if (kind === 'cmd') rollouts.onDeviceOnline();
    const work =
      kind === 'cmd'
        ? commands.resendOwed(deviceId)
        : devices
            .requireBatched(deviceId)
            .then((d) => link.sendConfig(deviceId, devices.desiredConfig(d), { ifStale: true }));
    work.catch((err: unknown) => log.error({ err, deviceId, kind }, 'resend on subscribe failed'));
  }

  const jobs: JobSpec[] = [
    { name: 'commands.expire', cron: '* * * * *', jitterMs: 5_000, run: () => commands.expireDue() },
    ...hooks.jobs,
    ...health.jobs,
    ...rollouts.jobs,
    ...backups.jobs,
  ];

  const routers = [
    accessRoutes({ apiKeys, audit }),
    merchantRoutes({ merchants }),
    enrollmentRoutes({ enrollment }),
    deviceRoutes({ devices, commands }),
    hooks.routes(),
    ...artifacts.routers,
    ...health.routers,
    ...rollouts.routers,
    ...backups.routers,
  ];

  async function drain(): Promise<void> {
    await rollouts.stop();
    await Promise.all([health.drain(), sessions.drain(), commands.drain(), hooks.stop()]);
  }

  /** Background workers that run beside the cron jobs (app.ts starts them when it schedules). */
  function start(): void {
    hooks.start();
  }

  return {
    outbox,
    hooks,
    start,
    link,
    audit,
    apiKeys,
    merchants,
    devices,
    enrollment,
    commands,
    sessions,
    ingest,
    health,
    artifacts,
    rollouts,
    backups: backups.backups,
    uplinkHandlers,
    onSubscribed,
    jobs,
    routers,
    drain,
  };
}
