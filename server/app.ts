// Composition root (HOUSE-RULES §2): builds the database, broker, HTTP app,
// scheduler and modules, and hands each its dependencies.
import type { Server } from 'node:net';
import { createAdaptorServer } from '@hono/node-server';
import type { Logger } from 'pino';
import type { Config } from './config.ts';
import { createDb, pgliteDirIn, pingDb, type DbHandle } from './db/index.ts';
import { migrateToLatest } from './db/migrator.ts';
import { createHttpApp } from './http/root.ts';
import { widenAccept } from './lib/accept-lanes.ts';
import { systemClock, type Clock } from './lib/clock.ts';
import { TypedBus } from './lib/bus.ts';
import { prepareDataDir, type DataDirLease } from './lib/data-dir.ts';
import { createLogger } from './lib/logger.ts';
import { claimPort, type ClaimedPort } from './lib/port-claim.ts';
import { createMetrics } from './lib/metrics.ts';
import type { FleetEvents } from './events/bus-events.ts';
import { countFleetEvents } from './events/bus-metrics.ts';
import { registerFleetGauges } from './events/fleet-gauges.ts';
import { Broker } from './mqtt/broker.ts';
import { createRouter } from './mqtt/router.ts';
import { createScheduler } from './jobs/scheduler.ts';
import { createModules } from './modules.ts';

export interface AppOptions {
  /** A database the caller owns (tests share one per worker); migrated by the caller. */
  db?: DbHandle;
  clock?: Clock;
  log?: Logger;
  /** Periodic jobs on node-cron; tests drive jobs by hand instead. */
  schedule?: boolean;
}

export class StartupError extends Error {}

async function openDb(config: Config): Promise<DbHandle> {
  const handle = await createDb({ databaseUrl: config.databaseUrl, pgliteDir: pgliteDirIn(config.dataDir) });
  try {
    await pingDb(handle.db);
  } catch (err) {
    await handle.close().catch(() => undefined);
    const where = config.databaseUrl ? 'DATABASE_URL' : `the embedded database in ${config.dataDir}`;
    throw new StartupError(`cannot reach ${where}: ${(err as Error).message || (err as Error).name}`);
  }
  await migrateToLatest(handle.db);
  return handle;
}

/**
 * Pending connections the kernel keeps for each listener (capped by
 * net.core.somaxconn). Node's default of 511 overflows when thousands of
 * terminals reconnect or download at once: the kernel then drops handshakes and
 * each waits out a SYN retransmit (seconds), however idle the server is.
 */
const LISTEN_BACKLOG = 4096;
/** Connections each listener accepts per event-loop turn (server/lib/accept-lanes.ts). */
const ACCEPT_LANES = 16;

/** Both ports, before DATA_DIR or the database is touched: a taken port changes nothing on disk. */
async function claimPorts(config: Readonly<Config>): Promise<{ mqtt: ClaimedPort; http: ClaimedPort }> {
  const common = { host: config.host, backlog: LISTEN_BACKLOG };
  const mqtt = await claimPort({ ...common, setting: 'MQTT_PORT', port: config.mqttPort }).catch((err: Error) => {
    throw new StartupError(err.message);
  });
  try {
    const http = await claimPort({ ...common, setting: 'PORT', port: config.port });
    return { mqtt, http };
  } catch (err) {
    await mqtt.close();
    throw new StartupError((err as Error).message);
  }
}

function takeDataDir(config: Readonly<Config>, embedded: boolean): DataDirLease {
  try {
    // The embedded database is locked: a second server on the same DATA_DIR is refused before it opens PGlite.
    return prepareDataDir(config.dataDir, { lock: embedded });
  } catch (err) {
    throw new StartupError((err as Error).message);
  }
}

export async function startApp(config: Readonly<Config>, opts: AppOptions = {}) {
  const log = opts.log ?? createLogger(config.logLevel, { format: config.logFormat ?? 'json' });
  const clock = opts.clock ?? systemClock;
  const ports = await claimPorts(config);
  const ownsDb = !opts.db;
  let lease: DataDirLease | undefined;
  let handle: DbHandle | undefined;
  const undo = async () => {
    await Promise.all([ports.mqtt.close(), ports.http.close()]);
    if (ownsDb) await handle?.close().catch(() => undefined);
    lease?.release();
  };
  try {
    lease = takeDataDir(config, ownsDb && !config.databaseUrl);
    handle = opts.db ?? (await openDb(config));
    return await startOn({ config, opts, log, clock, ports, handle, ownsDb, lease });
  } catch (err) {
    await undo();
    throw err;
  }
}

interface StartParts {
  config: Readonly<Config>;
  opts: AppOptions;
  log: Logger;
  clock: Clock;
  ports: { mqtt: ClaimedPort; http: ClaimedPort };
  handle: DbHandle;
  ownsDb: boolean;
  lease: DataDirLease;
}

async function startOn({ config, opts, log, clock, ports, handle, ownsDb, lease }: StartParts) {
  const metrics = createMetrics();
  const bus = new TypedBus<FleetEvents>(log);
  countFleetEvents(bus, metrics);
  registerFleetGauges({ db: handle.db, metrics, clock, log });
  const mqttPort = ports.mqtt.port;
  const httpPort = ports.http.port;
  const publicUrl = () => (config.publicUrlSet ? config.publicUrl : `http://localhost:${httpPort}`);
  const mqttUrl = () => `mqtt://${new URL(publicUrl()).hostname}:${mqttPort}`;

  const modules = createModules({
    config,
    db: handle.db,
    dbKind: handle.kind,
    clock,
    bus,
    log,
    mqttUrl,
    publicUrl,
    metrics,
  });
  // Shown by the caller once the start has succeeded (the file is written already).
  let adminKey: { file: string; token: string } | undefined;
  await modules.apiKeys.bootstrap({
    adminToken: config.adminToken,
    dataDir: config.dataDir,
    announce: (generated) => {
      adminKey = generated;
    },
  });

  // Before terminals connect: device_state caught up with heartbeats a crash left unfolded.
  const recovering = performance.now();
  const recovered = await modules.ingest.recover();
  log.info(
    { devices: recovered, ms: Math.round(performance.now() - recovering) },
    'device state caught up with the stored heartbeats',
  );
  const route = createRouter({ handlers: modules.uplinkHandlers, log, metrics, now: () => clock.now() });
  const broker = await Broker.create({
    log: log.child({ part: 'mqtt' }),
    metrics,
    maxPacketBytes: config.mqttMaxPacketBytes,
    route,
    authenticateDevice: modules.devices.authenticateDevice,
    onConnected: (id) => {
      modules.sessions.connected(id);
      // Another instance may have served it meanwhile: what this one holds of it is read again.
      modules.ingest.forget(id);
      modules.health.evaluator.forgetStates(id);
    },
    onDisconnected: modules.sessions.disconnected,
    onSubscribed: modules.onSubscribed,
  });
  modules.link.attach(broker);

  let up = false;
  const http = createHttpApp({
    log: log.child({ part: 'http' }),
    metrics,
    authenticate: modules.apiKeys.authenticate,
    routers: modules.routers,
    beforeApi: modules.ingest.sync,
    isReady: async () => {
      const dbOk = await pingDb(handle.db).then(
        () => true,
        () => false,
      );
      const checks = { database: dbOk, broker: up && ports.mqtt.server.listening, http: up };
      return { ready: Object.values(checks).every(Boolean), checks };
    },
  });
  const httpServer = createAdaptorServer({ fetch: http.fetch }) as Server;
  const toBroker = (socket: import('node:net').Socket) => broker.accept(socket);
  const toHttp = (socket: import('node:net').Socket) => httpServer.emit('connection', socket);
  ports.mqtt.hand(toBroker);
  ports.http.hand(toHttp);
  up = true;
  const lanes = widenAccept(
    [
      { server: ports.mqtt.server, onConnection: toBroker },
      { server: ports.http.server, onConnection: toHttp },
    ],
    { lanes: ACCEPT_LANES, backlog: LISTEN_BACKLOG, log },
  );

  const scheduler = createScheduler({ handle, log });
  if (opts.schedule !== false) {
    for (const job of modules.jobs) scheduler.add(job);
    modules.start();
  }

  let stopping: Promise<void> | undefined;
  async function stop(): Promise<void> {
    stopping ??= (async () => {
      up = false;
      const lanesClosed = lanes.close(); // no listener accepts through an extra handle any more
      const portsClosed = Promise.all([ports.mqtt.close(), ports.http.close()]);
      const httpClosed = new Promise<void>((r) => httpServer.close(() => r()));
      (httpServer as unknown as { closeIdleConnections?: () => void }).closeIdleConnections?.();
      await broker.close(); // no new messages; those in flight finish below
      await scheduler.stop();
      await modules.drain();
      await Promise.all([httpClosed, lanesClosed, portsClosed]);
      if (ownsDb) await handle.close();
      lease.release();
      log.info('stopped');
    })();
    return stopping;
  }

  log.info(
    {
      http: httpPort,
      mqtt: mqttPort,
      database: handle.kind,
      url: `http://${config.host}:${httpPort}`,
      docs: '/docs',
      pid: process.pid,
    },
    'posfleet ready',
  );
  return {
    config,
    log,
    clock,
    bus,
    metrics,
    db: handle.db,
    dbKind: handle.kind,
    broker,
    http,
    scheduler,
    ...modules,
    httpPort,
    mqttPort,
    baseUrl: `http://127.0.0.1:${httpPort}`,
    mqttUrl: `mqtt://127.0.0.1:${mqttPort}`,
    adminKey,
    stop,
  };
}

export type App = Awaited<ReturnType<typeof startApp>>;
