// Composition root (HOUSE-RULES §2): builds the database, broker, HTTP app,
// scheduler and modules, and hands each its dependencies.
import { access, constants, mkdir } from 'node:fs/promises';
import type { AddressInfo, Server } from 'node:net';
import { createAdaptorServer, type ServerType } from '@hono/node-server';
import type { Logger } from 'pino';
import type { Config } from './config.ts';
import { createDb, pgliteDirIn, pingDb, type DbHandle } from './db/index.ts';
import { migrateToLatest } from './db/migrator.ts';
import { createHttpApp } from './http/root.ts';
import { widenAccept } from './lib/accept-lanes.ts';
import { systemClock, type Clock } from './lib/clock.ts';
import { TypedBus } from './lib/bus.ts';
import { createLogger } from './lib/logger.ts';
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

async function ensureWritableDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    await access(dir, constants.W_OK);
  } catch (err) {
    throw new StartupError(`DATA_DIR ${dir} is not writable: ${(err as Error).message}`);
  }
}

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

function listenHttp(
  fetch: (req: Request) => Response | Promise<Response>,
  port: number,
  host: string,
): Promise<{ server: ServerType; port: number }> {
  return new Promise((resolve, reject) => {
    const server = createAdaptorServer({ fetch });
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new StartupError(
          err.code === 'EADDRINUSE' ? `PORT ${port} is already in use on ${host}` : `PORT ${port}: ${err.message}`,
        ),
      ),
    );
    // A fleet fetching an update at once opens thousands of connections together (LISTEN_BACKLOG).
    server.listen({ port, host, backlog: LISTEN_BACKLOG }, () =>
      resolve({ server, port: (server.address() as AddressInfo).port }),
    );
  });
}

export async function startApp(config: Readonly<Config>, opts: AppOptions = {}) {
  const log = opts.log ?? createLogger(config.logLevel);
  const clock = opts.clock ?? systemClock;
  const metrics = createMetrics();
  const bus = new TypedBus<FleetEvents>(log);
  countFleetEvents(bus, metrics);
  if (!config.databaseUrl || !opts.db) await ensureWritableDir(config.dataDir);
  const handle = opts.db ?? (await openDb(config));
  const ownsDb = !opts.db;
  registerFleetGauges({ db: handle.db, metrics, clock, log });
  let mqttPort = config.mqttPort;
  let httpPort = config.port;
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
  await modules.apiKeys.bootstrap({
    adminToken: config.adminToken,
    dataDir: config.dataDir,
    announce: (line) => process.stdout.write(`${line}\n`),
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
  try {
    mqttPort = await broker.listen(config.mqttPort, config.host, LISTEN_BACKLOG);
  } catch (err) {
    await broker.close();
    if (ownsDb) await handle.close();
    const code = (err as NodeJS.ErrnoException).code;
    throw new StartupError(
      code === 'EADDRINUSE'
        ? `MQTT_PORT ${config.mqttPort} is already in use on ${config.host}`
        : `MQTT_PORT ${config.mqttPort}: ${(err as Error).message}`,
    );
  }

  let httpUp = false;
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
      const checks = { database: dbOk, broker: broker.listening, http: httpUp };
      return { ready: Object.values(checks).every(Boolean), checks };
    },
  });
  let listened: { server: ServerType; port: number };
  try {
    listened = await listenHttp(http.fetch, config.port, config.host);
  } catch (err) {
    await broker.close();
    if (ownsDb) await handle.close();
    throw err;
  }
  httpUp = true;
  httpPort = listened.port;
  const httpServer = listened.server as Server;
  const lanes = widenAccept(
    [
      { server: broker.server, onConnection: (socket) => broker.accept(socket) },
      { server: httpServer, onConnection: (socket) => httpServer.emit('connection', socket) },
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
      httpUp = false;
      const lanesClosed = lanes.close(); // no listener accepts through an extra handle any more
      const httpClosed = new Promise<void>((r) => listened.server.close(() => r()));
      (listened.server as unknown as { closeIdleConnections?: () => void }).closeIdleConnections?.();
      await broker.close(); // no new messages; those in flight finish below
      await scheduler.stop();
      await modules.drain();
      await Promise.all([httpClosed, lanesClosed]);
      if (ownsDb) await handle.close();
      log.info('stopped');
    })();
    return stopping;
  }

  log.info({ http: listened.port, mqtt: mqttPort, database: handle.kind }, 'posfleet ready');
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
    httpPort: listened.port,
    mqttPort,
    baseUrl: `http://127.0.0.1:${listened.port}`,
    mqttUrl: `mqtt://127.0.0.1:${mqttPort}`,
    stop,
  };
}

export type App = Awaited<ReturnType<typeof startApp>>;
