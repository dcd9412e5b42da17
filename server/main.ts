// Entry point: config → app → listen; SIGTERM/SIGINT → graceful stop, exit 0.
// Start-up problems end with one line naming the cause, not a stack trace.
import { ConfigError, loadConfig } from './config.ts';
import { StartupError, startApp } from './app.ts';
import { createDb, pgliteDirIn } from './db/index.ts';
import { migrateToLatest } from './db/migrator.ts';
import { errorLine } from './lib/errors.ts';

function fail(err: unknown): never {
  const known = err instanceof ConfigError || err instanceof StartupError;
  process.stderr.write(`posfleet: ${known ? err.message : errorLine(err)}\n`);
  process.exit(1);
}

export async function serve(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (err) {
    fail(err);
  }
  const app = await startApp(config).catch(fail);
  process.stdout.write(
    `posfleet: HTTP on http://${config.host}:${app.httpPort} (docs at /docs), MQTT on ${config.host}:${app.mqttPort}, database ${app.dbKind}\n`,
  );
  let signals = 0;
  const onSignal = (signal: string) => {
    if (++signals > 1) process.exit(1); // a second Ctrl-C means now
    app.log.info({ signal }, 'stopping');
    app.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        app.log.error({ err }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
}

export async function migrate(): Promise<void> {
  try {
    const config = loadConfig();
    const handle = await createDb({ databaseUrl: config.databaseUrl, pgliteDir: pgliteDirIn(config.dataDir) });
    try {
      const results = await migrateToLatest(handle.db);
      for (const r of results) process.stdout.write(`migrated ${r.migrationName}: ${r.status}\n`);
      if (results.length === 0) process.stdout.write('database schema is up to date\n');
    } finally {
      await handle.close();
    }
  } catch (err) {
    fail(err);
  }
}
