// Migrations are dated, ordered, and run on a fresh database of the kind under test.
import { readdirSync } from 'node:fs';
import { sql } from 'kysely';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createDb } from '../server/db/index.ts';
import { MIGRATIONS_DIR, migrateToLatest } from '../server/db/migrator.ts';
import { dbKind } from './helpers/db.ts';
import { withDatabase } from './helpers/pg-names.ts';

describe(`migrations (${dbKind()})`, { timeout: 90_000 }, () => {
  it('are all named YYYY-MM-DDTHHMM-name.ts and sort by date', () => {
    const files = readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect(f).toMatch(/^\d{4}-\d{2}-\d{2}T\d{4}-[a-z0-9-]+\.ts$/);
  });

  it('run in order on an empty database, and a second run does nothing', async () => {
    let url: string | undefined;
    const name = `posfleet_migrate_${process.pid}`;
    if (process.env.DATABASE_URL) {
      const admin = new pg.Client({ connectionString: withDatabase(process.env.DATABASE_URL, 'postgres') });
      await admin.connect();
      await admin.query(`drop database if exists "${name}" with (force)`);
      await admin.query(`create database "${name}"`);
      await admin.end();
      url = withDatabase(process.env.DATABASE_URL, name);
    }
    const handle = await createDb({ databaseUrl: url, pgliteDir: 'memory://' });
    try {
      const first = await migrateToLatest(handle.db);
      const files = readdirSync(MIGRATIONS_DIR)
        .filter((f) => f.endsWith('.ts'))
        .sort()
        .map((f) => f.replace(/\.ts$/, ''));
      expect(first.map((r) => r.migrationName)).toEqual(files);
      expect(first.every((r) => r.status === 'Success')).toBe(true);
      expect(await migrateToLatest(handle.db)).toEqual([]);
      const tables = await sql<{
        n: number;
      }>`select count(*)::int as n from information_schema.tables where table_name = 'devices'`.execute(handle.db);
      expect(tables.rows[0].n).toBe(1);
    } finally {
      await handle.close();
    }
  });
});
