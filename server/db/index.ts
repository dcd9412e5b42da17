// Kysely factory: node-postgres Pool on PostgreSQL, or PGlite through its
// node-postgres shim (pool of 1: PGlite is single-connection).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { createWorkerPool } from './pg-worker-pool.ts';
import type { Database } from './schema.ts';

export type Db = Kysely<Database>;

export interface DbHandle {
  db: Db;
  kind: 'postgres' | 'pglite';
  close(): Promise<void>;
}

// bigint (int8) as number: counts and bigserial ids stay well below 2^53.
pg.types.setTypeParser(20, (v) => Number(v));
// date columns stay plain YYYY-MM-DD strings, not local-midnight Dates.
pg.types.setTypeParser(1082, (v) => v);

export interface DbOptions {
  databaseUrl?: string;
  /** Directory for PGlite files; 'memory://' for an in-memory database. */
  pgliteDir?: string;
  poolSize?: number;
}

export async function createDb(opts: DbOptions): Promise<DbHandle> {
  if (opts.databaseUrl) {
    // The connections work in a thread of their own (pg-worker-pool.ts).
    const pool = createWorkerPool({ connectionString: opts.databaseUrl, max: opts.poolSize ?? 10 });
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: pool as unknown as pg.Pool }) });
    return { db, kind: 'postgres', close: () => db.destroy() };
  }
  const dir = opts.pgliteDir ?? 'memory://';
  const { PGlite } = await import('@electric-sql/pglite');
  const { createPgConfig } = await import('@electric-sql/pglite/node-postgres');
  if (!dir.startsWith('memory://')) mkdirSync(dir, { recursive: true });
  const pglite = await PGlite.create(dir);
  const pool = new pg.Pool({ ...createPgConfig(pglite), max: 1 } as pg.PoolConfig);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    kind: 'pglite',
    close: async () => {
      await db.destroy();
      await pglite.close();
    },
  };
}

export function pgliteDirIn(dataDir: string): string {
  return join(dataDir, 'pglite');
}

/** Fails with the driver's own message when the database cannot be reached. */
export async function pingDb(db: Db): Promise<void> {
  await sql`select 1`.execute(db);
}

/** jsonb values are always written as JSON text (PGlite and pg agree on that). */
export const json = (value: unknown): string => JSON.stringify(value);

/** Deadlock or serialization failure: the transaction may simply be run again. */
export function isTransientDbError(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === '40P01' || code === '40001';
}
