// One migrated database per test worker, shared by the files it runs
// (vitest `isolate: false`): PGlite in memory, or a clone of the PostgreSQL
// template made by test/global-setup.ts. Tests create their own rows and never
// assume the tables are empty.
import pg from 'pg';
import { createDb, type DbHandle } from '../../server/db/index.ts';
import { migrateToLatest } from '../../server/db/migrator.ts';
import { TEMPLATE_DB, withDatabase, workerDb } from './pg-names.ts';

let shared: Promise<DbHandle> | undefined;
let sharedUrl: string | undefined;

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
  if (url) {
    sharedUrl = await cloneTemplate(url);
    return createDb({ databaseUrl: sharedUrl, poolSize: 10 });
  }
  const handle = await createDb({ pgliteDir: 'memory://' });
  await migrateToLatest(handle.db);
  return handle;
}

/**
 * The worker's PostgreSQL database as a URL, for a server process a test
 * starts (undefined on PGlite). Never the database DATABASE_URL names: that
 * one is the machine's, and a test must leave it as it found it.
 */
export async function sharedDbUrl(): Promise<string | undefined> {
  await sharedDb();
  return sharedUrl;
}

export function sharedDb(): Promise<DbHandle> {
  shared ??= open();
  return shared;
}
