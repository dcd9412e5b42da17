// Runs once per `npm test`. On PostgreSQL (DATABASE_URL set) it builds one
// migrated template database for this run; each worker clones it
// (test/helpers/db.ts). Databases of runs whose process is gone are dropped.
import pg from 'pg';
import { createDb } from '../server/db/index.ts';
import { migrateToLatest } from '../server/db/migrator.ts';
import { RUN_DB_PATTERN, RUN_ID, TEMPLATE_DB, withDatabase } from './helpers/pg-names.ts';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function dropWhere(url: string, keep: (name: string) => boolean): Promise<void> {
  const admin = new pg.Client({ connectionString: withDatabase(url, 'postgres') });
  await admin.connect();
  try {
    const rows = await admin.query<{ datname: string }>(
      `select datname from pg_database where datname like 'posfleet_t%'`,
    );
    for (const { datname } of rows.rows)
      if (!keep(datname)) await admin.query(`drop database if exists "${datname}" with (force)`);
  } finally {
    await admin.end();
  }
}

export default async function setup(): Promise<(() => Promise<void>) | void> {
  const url = process.env.DATABASE_URL;
  if (!url) return;
  process.env.POSFLEET_TEST_RUN = RUN_ID; // workers name their clones after this run
  await dropWhere(url, (name) => {
    const m = RUN_DB_PATTERN.exec(name);
    return !!m && m[1] !== RUN_ID && alive(Number(m[1]));
  });
  const admin = new pg.Client({ connectionString: withDatabase(url, 'postgres') });
  await admin.connect();
  await admin.query(`create database "${TEMPLATE_DB}"`).finally(() => admin.end());
  const handle = await createDb({ databaseUrl: withDatabase(url, TEMPLATE_DB), poolSize: 1 });
  try {
    await migrateToLatest(handle.db);
  } finally {
    await handle.close();
  }
  return async () => {
    await dropWhere(url, (name) => !name.startsWith(`posfleet_t${RUN_ID}_`));
  };
}
