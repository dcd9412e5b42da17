// Runs once per `npm test`. On PostgreSQL (DATABASE_URL set) it builds one
// migrated template database; each worker clones it (test/helpers/db.ts).
import pg from 'pg';
import { createDb } from '../server/db/index.ts';
import { migrateToLatest } from '../server/db/migrator.ts';
import { TEMPLATE_DB, withDatabase } from './helpers/pg-names.ts';

export default async function setup(): Promise<void> {
  const url = process.env.DATABASE_URL;
  if (!url) return;
  const admin = new pg.Client({ connectionString: withDatabase(url, 'postgres') });
  await admin.connect();
  try {
    // Clones of an old template may still exist from an earlier run: drop them first.
    const old = await admin.query<{ datname: string }>(`select datname from pg_database where datname like 'posfleet_test_w%' or datname = $1`, [TEMPLATE_DB]);
    for (const { datname } of old.rows) await admin.query(`drop database if exists "${datname}" with (force)`);
    await admin.query(`create database "${TEMPLATE_DB}"`);
  } finally {
    await admin.end();
  }
  const handle = await createDb({ databaseUrl: withDatabase(url, TEMPLATE_DB), poolSize: 1 });
  try {
    await migrateToLatest(handle.db);
  } finally {
    await handle.close();
  }
}
