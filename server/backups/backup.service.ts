// Online backups: one repeatable-read, read-only transaction gives a snapshot
// of every table (on PGlite, whose one connection it holds, other work waits
// for it and nothing is lost); then the artifact files that snapshot names and
// the key files, a manifest with checksums, and one tar.gz.
// docs/operations.md#backup-and-restore.
import { createWriteStream } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sql } from 'kysely';
import * as tar from 'tar';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { Db } from '../db/index.ts';
import type { Clock } from '../lib/clock.ts';
import { newId } from '../lib/ids.ts';
import { fixOutputSettings, dumpTable } from './dump.ts';
import { exists, placeFile, sha256File } from './files.ts';
import { BACKUP_FORMAT, BACKUP_FORMAT_VERSION, KEY_FILES, dataFile, tableFile, type Manifest } from './manifest.ts';
import { listSequences, listTables } from './tables.ts';
import { VERSION } from './version.ts';

export interface BackupResult {
  id: string;
  file: string;
  bytes: number;
  sha256: string;
  manifest: Manifest;
}

export interface BackupDeps {
  db: Db;
  dbKind: 'postgres' | 'pglite';
  config: Pick<Config, 'dataDir' | 'urlSigningSecret' | 'hooksSecretKey' | 'adminToken'>;
  clock: Clock;
  log: Logger;
}

export function createBackups(deps: BackupDeps) {
  const { db, config, clock } = deps;

  /** Tables into `stage/db`; returns what the manifest says of them and the artifact files the snapshot names. */
  async function snapshot(stage: string) {
    return db
      .transaction()
      .setIsolationLevel('repeatable read')
      .execute(async (trx) => {
        await sql`set transaction read only`.execute(trx);
        await fixOutputSettings(trx);
        const migrations = (
          await sql<{ name: string }>`select name from kysely_migration order by name`.execute(trx)
        ).rows.map((r) => r.name);
        const tables: Manifest['tables'] = [];
        for (const table of await listTables(trx)) {
          const file = tableFile(table.name);
          const out = createWriteStream(join(stage, file));
          const sum = await dumpTable(trx, table, (text) => writeChunk(out, text));
          await new Promise<void>((resolve, reject) =>
            out.end((err?: Error | null) => (err ? reject(err) : resolve())),
          );
          tables.push({ name: table.name, file, ...sum });
        }
        const sequences = await listSequences(trx);
        const storageKeys = (
          await sql<{ storage_key: string }>`select storage_key from artifacts order by storage_key`.execute(trx)
        ).rows.map((r) => r.storage_key);
        return { migrations, tables, sequences, storageKeys };
      });
  }

  /** Artifact payloads and key files into `stage/files`. */
  async function collectFiles(stage: string, storageKeys: string[]) {
    const files: Manifest['files'] = [];
    const keysFromSettings: Manifest['keysFromSettings'] = [];
    for (const key of storageKeys) {
      const path = `artifacts/${key}`;
      const from = join(config.dataDir, path);
      if (!(await exists(from))) throw new Error(`artifact file ${from} is missing: the backup cannot be complete`);
      await placeFile(from, join(stage, dataFile(path)));
      files.push({ path, kind: 'artifact', ...(await sha256File(join(stage, dataFile(path)))) });
    }
    const settings = {
      URL_SIGNING_SECRET: config.urlSigningSecret,
      HOOKS_SECRET_KEY: config.hooksSecretKey,
      POSFLEET_ADMIN_TOKEN: config.adminToken,
    };
    for (const k of KEY_FILES) {
      if (settings[k.setting]) {
        keysFromSettings.push(k.setting);
        continue;
      }
      const from = join(config.dataDir, k.path);
      if (!(await exists(from))) continue;
      await placeFile(from, join(stage, dataFile(k.path)), 0o600);
      files.push({ path: k.path, kind: 'key', ...(await sha256File(join(stage, dataFile(k.path)))) });
    }
    return { files, keysFromSettings };
  }

  /** Writes a backup to `file` (mode 0600; through a temporary name, so a half-written backup never has the final name). */
  async function make(file: string): Promise<BackupResult> {
    const started = performance.now();
    const id = newId('bkp', clock.nowMs());
    const stage = await mkdtemp(join(config.dataDir, '.backup-'));
    try {
      await mkdir(join(stage, 'db'));
      const snap = await snapshot(stage);
      const { files, keysFromSettings } = await collectFiles(stage, snap.storageKeys);
      const manifest: Manifest = {
        format: BACKUP_FORMAT,
        formatVersion: BACKUP_FORMAT_VERSION,
        id,
        createdAt: clock.now().toISOString(),
        posfleetVersion: VERSION,
        source: deps.dbKind,
        migrations: snap.migrations,
        tables: snap.tables,
        sequences: snap.sequences,
        files,
        keysFromSettings,
      };
      await writeFile(join(stage, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
      const tmp = `${file}.${id}.tmp`;
      const parts = ['manifest.json', 'db', ...((await exists(join(stage, 'files'))) ? ['files'] : [])];
      await tar.create(
        { gzip: true, cwd: stage, file: tmp, portable: true, mode: 0o600 } as tar.TarOptionsWithAliasesFile,
        parts,
      );
      await chmod(tmp, 0o600);
      await rename(tmp, file);
      const sum = await sha256File(file);
      deps.log.info(
        {
          backupId: id,
          file,
          bytes: sum.bytes,
          rows: manifest.tables.reduce((n, t) => n + t.rows, 0),
          files: files.length,
          ms: Math.round(performance.now() - started),
        },
        'backup written',
      );
      return { id, file, ...sum, manifest };
    } finally {
      await rm(stage, { recursive: true, force: true });
    }
  }

  /** Keeps the newest `keep` scheduled backups in `dir`. */
  async function prune(dir: string, keep: number): Promise<string[]> {
    const mine = (await readdir(dir)).filter((f) => /^posfleet-backup-.*\.tar\.gz$/.test(f)).sort();
    const old = mine.slice(0, Math.max(0, mine.length - keep));
    for (const f of old) await rm(join(dir, f), { force: true });
    return old;
  }

  /** The scheduled backup (BACKUP_CRON): a new file in `dir`, then the oldest beyond `keep` removed. */
  async function scheduled(dir: string, keep: number): Promise<BackupResult> {
    await mkdir(dir, { recursive: true });
    const stamp = clock
      .now()
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d+Z$/, 'Z');
    const result = await make(join(dir, `posfleet-backup-${stamp}.tar.gz`));
    const removed = await prune(dir, keep);
    if (removed.length) deps.log.info({ removed, keep }, 'old backups removed');
    return result;
  }

  return { make, scheduled, prune };
}

function writeChunk(out: import('node:fs').WriteStream, text: string): Promise<void> | void {
  if (out.write(text)) return;
  return new Promise((resolve) => out.once('drain', () => resolve()));
}

export type Backups = ReturnType<typeof createBackups>;
