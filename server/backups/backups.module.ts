// Backups: the online backup behind POST /api/v1/backups and the scheduled one
// (BACKUP_CRON into BACKUP_DIR, keeping BACKUP_KEEP). Restore runs offline
// (restore.ts). docs/operations.md#backup-and-restore.
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { Db } from '../db/index.ts';
import type { JobSpec } from '../jobs/scheduler.ts';
import type { Clock } from '../lib/clock.ts';
import { createBackups } from './backup.service.ts';
import { backupRoutes } from './backups.routes.ts';

export function createBackupsModule(deps: {
  config: Readonly<Config>;
  db: Db;
  dbKind: 'postgres' | 'pglite';
  clock: Clock;
  log: Logger;
}) {
  const { config } = deps;
  const backups = createBackups({ ...deps, log: deps.log.child({ part: 'backups' }) });
  const jobs: JobSpec[] = config.backupCron
    ? [
        {
          name: 'backups.scheduled',
          cron: config.backupCron,
          jitterMs: 30_000,
          run: async () => {
            await backups.scheduled(config.backupDir, config.backupKeep);
          },
        },
      ]
    : [];
  return { backups, jobs, routers: [backupRoutes({ backups, dataDir: config.dataDir })] };
}
