// Builds the domain modules and wires them together: routers, MQTT uplink
// handlers, periodic jobs. Kept apart from app.ts so the root stays about
// processes and ports.
import type { Logger } from 'pino';
import type { Config } from './config.ts';
import type { Db } from './db/index.ts';
import type { FleetBus } from './events/bus-events.ts';
import type { Clock } from './lib/clock.ts';
import { accessRoutes } from './access/access.routes.ts';
import { createApiKeys } from './access/api-keys.service.ts';
import { createAudit } from './access/audit.service.ts';
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
import { createIngest } from './telemetry/ingest.ts';
import type { DownlinkKind } from '../protocol/topics.ts';

export interface ModuleDeps {
  config: Readonly<Config>;
  db: Db;
  clock: Clock;
  bus: FleetBus;
  log: Logger;
  mqttUrl: () => string;
}

export function createModules(deps: ModuleDeps) {
  const { config, db, clock, bus, log } = deps;
  const link = new LateLink();
  const audit = createAudit({ db, clock });
  const apiKeys = createApiKeys({ db, clock, audit, log });
  const merchants = createMerchants({ db, clock, audit });
  const defaultHeartbeatS = config.heartbeatIntervalS;
  const devices = createDevices({ db, clock, audit, bus, link, defaultHeartbeatS, mqttUrl: deps.mqttUrl });
  const enrollment = createEnrollment({ db, clock, audit, bus, devices, defaultHeartbeatS });
  const commands = createCommands({ db, clock, audit, bus, link, devices, log, defaultTtlS: config.commandTtlS });
  const sessions = createSessions({ db, clock, bus, log });
  const ingest = createIngest({ db, bus });

  const uplinkHandlers: UplinkHandlers = {
    heartbeat: (ctx, hb) => ingest.accept(ctx.deviceId, ctx.receivedAt, hb),
    reply: (ctx, reply) => commands.recordReply(ctx.deviceId, reply),
    presence: async (ctx, msg) => {
      if (msg.state === 'offline') await sessions.will(ctx.deviceId);
    },
  };

  /** A terminal subscribed to a downlink topic: send what it is owed (HOUSE-RULES §5). */
  function onSubscribed(deviceId: string, kind: DownlinkKind): void {
    const work = kind === 'cmd'
      ? commands.resendOwed(deviceId)
      : devices.require(deviceId).then((d) => link.sendConfig(deviceId, devices.desiredConfig(d), { ifStale: true }));
    work.catch((err: unknown) => log.error({ err, deviceId, kind }, 'resend on subscribe failed'));
  }

  const jobs: JobSpec[] = [
    { name: 'commands.expire', cron: '* * * * *', jitterMs: 5_000, run: () => commands.expireDue() },
  ];

  const routers = [
    accessRoutes({ apiKeys, audit }),
    merchantRoutes({ merchants }),
    enrollmentRoutes({ enrollment }),
    deviceRoutes({ devices, commands }),
  ];

  async function drain(): Promise<void> {
    await Promise.all([ingest.drain(), sessions.drain()]);
  }

  return { link, audit, apiKeys, merchants, devices, enrollment, commands, sessions, ingest, uplinkHandlers, onSubscribed, jobs, routers, drain };
}
