// The database layer as every module sees it, on PGlite and on PostgreSQL (whose
// connections work in a thread of their own, server/db/pg-worker-pool.ts):
// driver errors keep their codes, transactions keep one connection, binary and
// typed values survive, and more statements than connections all complete.
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { copyRows, copyValue } from '../server/db/copy.ts';
import { createDb } from '../server/db/index.ts';
import { randomChars } from '../server/lib/ids.ts';
import { dbKind, sharedDb } from './helpers/db.ts';

describe(`database layer (${dbKind()})`, () => {
  const merchant = (id: string) => ({
    id,
    name: 'db test',
    timezone: 'Europe/Berlin',
    trading_hours: '[]',
    created_at: new Date(),
    updated_at: new Date(),
  });

  it('reports a unique violation with its code and constraint', async () => {
    const { db } = await sharedDb();
    const id = `mer_db_${randomChars(8)}`;
    await db.insertInto('merchants').values(merchant(id)).execute();
    const err = await db
      .insertInto('merchants')
      .values(merchant(id))
      .execute()
      .catch((e: unknown) => e as Record<string, unknown>);
    expect(err).toBeInstanceOf(Error);
    expect(err).toMatchObject({ code: '23505', constraint: 'merchants_pkey' });
  });

  it('rolls a transaction back on one connection, and commits another', async () => {
    const { db } = await sharedDb();
    const [a, b] = [`mer_db_${randomChars(8)}`, `mer_db_${randomChars(8)}`];
    await expect(
      db.transaction().execute(async (trx) => {
        await trx.insertInto('merchants').values(merchant(a)).execute();
        expect(await trx.selectFrom('merchants').select('id').where('id', '=', a).executeTakeFirst()).toEqual({
          id: a,
        });
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    await db.transaction().execute((trx) => trx.insertInto('merchants').values(merchant(b)).execute());
    const found = await db.selectFrom('merchants').select('id').where('id', 'in', [a, b]).execute();
    expect(found.map((r) => r.id)).toEqual([b]);
  });

  it('carries bytes, timestamps, bigints, dates and json both ways', async () => {
    const { db } = await sharedDb();
    const bytes = Buffer.from([0, 1, 2, 250, 255]);
    const at = new Date('2026-03-01T12:34:56.789Z');
    const row = (
      await sql<{ b: Buffer; t: Date; n: number; d: string; j: { a: number[] } }>`
      select ${bytes}::bytea as b, ${at}::timestamptz as t, 9007199254740991::bigint as n, '2026-03-01'::date as d, ${JSON.stringify({ a: [1, 2] })}::jsonb as j`.execute(
        db,
      )
    ).rows[0];
    expect(Buffer.isBuffer(row.b) && row.b.equals(bytes)).toBe(true);
    expect(row.t).toEqual(at);
    expect(row).toMatchObject({ n: 9007199254740991, d: '2026-03-01', j: { a: [1, 2] } });
  });

  it('keeps one connection for every statement of a session, also after a failed statement', async () => {
    // The scheduler's lock (server/jobs/scheduler.ts) is a session lock: taken by one statement, released by a later one.
    const { db } = await sharedDb();
    let others: Promise<unknown>[] = [];
    const pids = await db.connection().execute(async (conn) => {
      const first = (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(conn)).rows[0].pid;
      await expect(sql`select 1/0`.execute(conn)).rejects.toMatchObject({ code: '22012' });
      // Other statements busy meanwhile take whatever connections the pool has free.
      others = Array.from({ length: 5 }, () => sql`select pg_sleep(0.05)`.execute(db));
      const again = (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(conn)).rows[0].pid;
      return [first, again];
    });
    await Promise.all(others); // on PGlite's one connection they run after the session
    expect(pids[1]).toBe(pids[0]);
  });

  it('runs a statement marked "-- prepare: NAME" again and again with new parameters', async () => {
    // On PostgreSQL it is planned once per connection (server/db/pg-worker.mjs); on PGlite the mark is a comment.
    const { db } = await sharedDb();
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        sql<{ v: number }>`-- prepare: db_test_add_one
      select ${i}::int + 1 as v`.execute(db),
      ),
    );
    expect(results.map((r) => r.rows[0].v)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    const names = await db.connection().execute(async (conn) => {
      await sql`-- prepare: db_test_add_one
      select ${1}::int + 1 as v`.execute(conn);
      return (await sql<{ name: string }>`select name from pg_prepared_statements`.execute(conn)).rows.map(
        (r) => r.name,
      );
    });
    expect(names.includes('db_test_add_one')).toBe(dbKind() === 'postgres');
  });

  // COPY is PostgreSQL's alone (PGlite's driver cannot feed it; the ingest INSERTs there instead).
  if (dbKind() === 'postgres')
    it('appends rows with COPY, escaped values intact, and refuses a duplicate whole with its code', async () => {
      const { db } = await sharedDb();
      const table = `copy_${randomChars(8).toLowerCase()}`;
      await sql`create table ${sql.table(table)} (id int primary key, note text, doc jsonb)`.execute(db);
      try {
        const odd = 'tab\there, line\nbreak, back\\slash, \r, ünïcödé';
        const line = (id: number, note: string | null, doc: object) =>
          [String(id), copyValue(note), copyValue(JSON.stringify(doc))].join('\t');
        expect(
          await copyRows(db, table, ['id', 'note', 'doc'], [line(1, odd, { s: odd }), line(2, null, { n: 2 })]),
        ).toBe(2);
        const rows = (await db
          .selectFrom(table as never)
          .selectAll()
          .orderBy('id' as never)
          .execute()) as { id: number; note: string | null; doc: object }[];
        expect(rows).toEqual([
          { id: 1, note: odd, doc: { s: odd } },
          { id: 2, note: null, doc: { n: 2 } },
        ]);
        // One duplicate fails the whole COPY, promptly, and the connection serves the next statement.
        await expect(
          copyRows(db, table, ['id', 'note', 'doc'], [line(3, 'x', {}), line(2, 'y', {})]),
        ).rejects.toMatchObject({ code: '23505' });
        expect(
          (await sql<{ n: number }>`select count(*)::int as n from ${sql.table(table)}`.execute(db)).rows[0].n,
        ).toBe(2);
      } finally {
        await sql`drop table ${sql.table(table)}`.execute(db);
      }
    });

  // The worker pool (PostgreSQL): a release rides on the next statement or goes alone a turn later.
  if (dbKind() === 'postgres')
    it('serves statement after statement from a pool of one connection, every release reaching the worker', async () => {
      const one = await createDb({ databaseUrl: process.env.DATABASE_URL!, poolSize: 1 });
      try {
        for (let i = 0; i < 20; i++)
          expect((await sql<{ v: number }>`select ${i}::int as v`.execute(one.db)).rows[0].v).toBe(i);
        await one.db.transaction().execute((trx) => sql`select 1`.execute(trx));
        await new Promise((r) => setTimeout(r, 20)); // no statement followed the last release: it went alone
        const [a, b] = await Promise.all([
          sql<{ v: number }>`select 1 as v`.execute(one.db),
          sql<{ v: number }>`select 2 as v`.execute(one.db),
        ]);
        expect([a.rows[0].v, b.rows[0].v]).toEqual([1, 2]);
      } finally {
        await one.close();
      }
    });

  it('completes more statements at once than it has connections', async () => {
    const { db } = await sharedDb();
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => sql<{ v: number }>`select ${i}::int as v, pg_sleep(0.001)`.execute(db)),
    );
    expect(results.map((r) => r.rows[0].v)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });
});
