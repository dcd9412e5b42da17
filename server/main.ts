// Entry point: config → app → listen; SIGTERM/SIGINT → graceful stop, exit 0.
// Start-up problems end with one line naming the cause, not a stack trace.
import { ConfigError, loadConfig, type Config } from './config.ts';
import { StartupError, startApp } from './app.ts';
import { createDb, pgliteDirIn } from './db/index.ts';
import { migrateToLatest } from './db/migrator.ts';
import { DataDirError, prepareDataDir } from './lib/data-dir.ts';
import { errorLine } from './lib/errors.ts';
import { createLogger, type LogFormat } from './lib/logger.ts';

function fail(err: unknown): never {
  const known = err instanceof ConfigError || err instanceof StartupError || err instanceof DataDirError;
  process.stderr.write(`posfleet: ${known ? err.message : errorLine(err)}\n`);
  process.exit(1);
}

function settings(): Readonly<Config> {
  try {
    return loadConfig();
  } catch (err) {
    fail(err);
  }
}

/** LOG_FORMAT, else readable lines on a terminal and JSON lines for everything else. */
function logFormatOf(config: Readonly<Config>): LogFormat {
  return config.logFormat ?? (process.stdout.isTTY ? 'pretty' : 'json');
}

export async function serve(): Promise<void> {
  const config = settings();
  const format = logFormatOf(config);
  const log = createLogger(config.logLevel, { format, colour: process.stdout.isTTY && !config.noColor });
  const app = await startApp(config, { log }).catch(fail);
  if (app.adminKey) {
    // Written to its file before this; shown on a terminal only, never in a JSON log a collector keeps.
    if (format === 'pretty')
      process.stdout.write(
        `generated an admin API key; it is shown once here and saved in ${app.adminKey.file}:\n  ${app.adminKey.token}\n`,
      );
    else log.warn({ file: app.adminKey.file }, 'generated an admin API key; read it from the file');
  }
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
  // Started by bin/posfleet.js: its IPC channel closing means the launcher is gone.
  if (process.channel) {
    process.on('disconnect', () => onSignal('launcher gone'));
    process.channel.unref();
  }
}

export async function migrate(): Promise<void> {
  const config = settings();
  try {
    // The embedded database is locked as a server locks it; PostgreSQL needs no DATA_DIR.
    const lease = config.databaseUrl
      ? { release: () => undefined }
      : prepareDataDir(config.dataDir, { lock: true, purpose: 'migrate' });
    try {
      const handle = await createDb({ databaseUrl: config.databaseUrl, pgliteDir: pgliteDirIn(config.dataDir) });
      try {
        const results = await migrateToLatest(handle.db);
        for (const r of results) process.stdout.write(`migrated ${r.migrationName}: ${r.status}\n`);
        if (results.length === 0) process.stdout.write('database schema is up to date\n');
      } finally {
        await handle.close();
      }
    } finally {
      lease.release();
    }
  } catch (err) {
    fail(err);
  }
}
