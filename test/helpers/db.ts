// One migrated database per test worker, shared by the files it runs
// (vitest `isolate: false`): PGlite in memory, or a clone of the PostgreSQL
// template made by test/global-setup.ts. Tests create their own rows and never
// assume the tables are empty.
import pg from 'pg';
import { createDb, type DbHandle } from '../../server/db/index.ts';
import { migrateToLatest } from '../../server/db/migrator.ts';
import { TEMPLATE_DB, withDatabase, workerDb } from './pg-names.ts';

let shared: Promise<DbHandle> | undefined;

export const dbKind = (): 'postgres' | 'pglite' => (process.env.DATABASE_URL ? 'postgres' : 'pglite');

async function cloneTemplate(url: string): Promise<string> {
  const name = workerDb(process.env.VITEST_POOL_ID ?? String(process.pid));
  const admin = new pg.Client({ connectionString: withDatabase(url, 'postgres') });
  await admin.connect();
  try {
    await admin.query(`drop database if exists "${name}" with (force)`);
    await admin.query(`create database "${name}" template "${TEMPLATE_DB}"`);
  } finally {
    await admin.end();
  }
  return withDatabase(url, name);
}

async function open(): Promise<DbHandle> {
  const url = process.env.DATABASE_URL;
  if (url) return createDb({ databaseUrl: await cloneTemplate(url), poolSize: 10 });
  const handle = await createDb({ pgliteDir: 'memory://' });
  await migrateToLatest(handle.db);
  return handle;
}

export function sharedDb(): Promise<DbHandle> {
  shared ??= open();
  return shared;
}
