// Restore (docs/operations.md#backup-and-restore), with the server stopped:
// into an empty DATA_DIR (PGlite) or an empty PostgreSQL database plus DATA_DIR
// for the files. The schema is brought to the backup's migrations, the rows are
// loaded in one transaction and checked against the manifest's checksums, then
// newer migrations run, and the files are put back and checked.
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { sql } from 'kysely';
import type { Config } from '../config.ts';
import { createDb, pgliteDirIn, type DbHandle } from '../db/index.ts';
import { knownMigrations, migrateTo, migrateToLatest } from '../db/migrator.ts';
import { LOCK_FILE, prepareDataDir } from '../lib/data-dir.ts';
import { BackupError, openBackup, type OpenedBackup } from './archive.ts';
import { dumpTable, fixOutputSettings, loadRows } from './dump.ts';
import { placeFile, sha256File } from './files.ts';
import { dataFile, KEY_FILES, type Manifest } from './manifest.ts';
import { ident, listTables } from './tables.ts';

export { BackupError };

export interface RestoreReport {
  id: string;
  target: 'pglite' | 'postgres';
  tables: number;
  rows: number;
  files: number;
  /** Settings the backed-up server had that this one must be given too. */
  missingSettings: string[];
}

const IGNORED_ENTRIES = new Set([LOCK_FILE, 'lost+found']);

async function dataDirEntries(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((e) => !IGNORED_ENTRIES.has(e));
}

async function userTables(handle: DbHandle): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = current_schema() and c.relkind in ('r', 'p')`.execute(handle.db);
  return rows.map((r) => r.name);
}

/** Refuses a target that holds data, unless `force`: then posfleet's tables and files there are deleted. */
async function clearTarget(config: Readonly<Config>, handle: DbHandle | null, m: Manifest, force: boolean) {
  const entries = await dataDirEntries(config.dataDir);
  const tables = handle ? await userTables(handle) : [];
  if (!force && entries.length > 0)
    throw new BackupError(
      `DATA_DIR ${config.dataDir} is not empty (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', …' : ''}); restore into an empty one, or give --force to replace what is there`,
    );
  if (!force && tables.length > 0)
    throw new BackupError(
      `the database at DATABASE_URL is not empty (${tables.length} tables); restore into an empty one, or give --force to replace posfleet's tables`,
    );
  if (handle) {
    const ours = new Set([...m.tables.map((t) => t.name), 'kysely_migration', 'kysely_migration_lock']);
    for (const t of tables.filter((name) => ours.has(name)))
      await sql`drop table if exists ${ident(t)} cascade`.execute(handle.db);
  }
  for (const e of entries) await rm(join(config.dataDir, e), { recursive: true, force: true });
}

async function loadTables(handle: DbHandle, backup: OpenedBackup): Promise<number> {
  const m = backup.manifest;
  return handle.db.transaction().execute(async (trx) => {
    let rows = 0;
    const present = new Map((await listTables(trx)).map((t) => [t.name, t]));
    for (const entry of m.tables) {
      const table = present.get(entry.name);
      if (!table) throw new BackupError(`the schema has no table ${entry.name} after the backup's migrations`);
      rows += await loadRows(trx, table, backup.lines(entry.file));
    }
    for (const s of m.sequences)
      if (s.lastValue !== null) await sql`select setval(${s.name}::regclass, ${s.lastValue})`.execute(trx);
    // Verified inside the same transaction: what was loaded prints exactly as what was backed up.
    await fixOutputSettings(trx);
    for (const entry of m.tables) {
      const sum = await dumpTable(trx, present.get(entry.name)!, () => undefined);
      if (sum.rows !== entry.rows || sum.sha256 !== entry.sha256)
        throw new BackupError(`table ${entry.name} did not restore exactly (${sum.rows} of ${entry.rows} rows match)`);
    }
    return rows;
  });
}

async function placeFiles(config: Readonly<Config>, backup: OpenedBackup): Promise<void> {
  for (const f of backup.manifest.files) {
    const to = join(config.dataDir, f.path);
    await placeFile(join(backup.dir, dataFile(f.path)), to, f.kind === 'key' ? 0o600 : undefined);
    const sum = await sha256File(to);
    if (sum.sha256 !== f.sha256) throw new BackupError(`${to} did not restore exactly`);
  }
}

export async function restoreBackup(
  file: string,
  opts: { config: Readonly<Config>; force: boolean; say: (line: string) => void },
): Promise<RestoreReport> {
  const { config, say } = opts;
  const backup = await openBackup(file);
  try {
    const m = backup.manifest;
    say(`backup ${m.id} of ${m.createdAt} (${m.source}, posfleet ${m.posfleetVersion}): checksums match`);
    const known = new Set(await knownMigrations());
    const unknown = m.migrations.filter((name) => !known.has(name));
    if (unknown.length)
      throw new BackupError(
        `the backup was made by a newer posfleet (migration ${unknown[0]} is unknown here): upgrade first`,
      );
    const lease = prepareDataDir(config.dataDir, { lock: !config.databaseUrl, purpose: 'restore' });
    let handle: DbHandle | null = null;
    try {
      if (config.databaseUrl) {
        handle = await createDb({ databaseUrl: config.databaseUrl, poolSize: 2 });
        await clearTarget(config, handle, m, opts.force);
      } else {
        await clearTarget(config, null, m, opts.force);
        handle = await createDb({ pgliteDir: pgliteDirIn(config.dataDir) });
      }
      await migrateTo(handle.db, m.migrations[m.migrations.length - 1]);
      const rows = await loadTables(handle, backup);
      say(`loaded ${rows} rows into ${m.tables.length} tables (${handle.kind}): they match the backup`);
      await migrateToLatest(handle.db);
      await placeFiles(config, backup);
      say(`restored ${m.files.length} files into ${config.dataDir}: they match the backup`);
      const given: Record<string, string | undefined> = {
        URL_SIGNING_SECRET: config.urlSigningSecret,
        HOOKS_SECRET_KEY: config.hooksSecretKey,
        POSFLEET_ADMIN_TOKEN: config.adminToken,
      };
      const missingSettings = m.keysFromSettings.filter((s) => !given[s]);
      return { id: m.id, target: handle.kind, tables: m.tables.length, rows, files: m.files.length, missingSettings };
    } finally {
      await handle?.close().catch(() => undefined);
      lease.release();
    }
  } finally {
    await backup.close();
  }
}

/** Key files a restore writes into DATA_DIR. */
export const RESTORED_KEY_FILES = KEY_FILES.map((k) => k.path);
