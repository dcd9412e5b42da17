// Table rows as JSON lines, in primary-key order, each row as PostgreSQL's
// to_jsonb prints it with fixed session settings: the same rows give the same
// bytes on PGlite and on PostgreSQL, so a checksum taken at backup time can be
// checked again after a restore into either.
import { createHash } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import type { Database } from '../db/schema.ts';
import { ident, type TableInfo } from './tables.ts';

const FETCH_ROWS = 2000;

/** Settings that fix how values print; for the transaction only. */
export async function fixOutputSettings(trx: Transaction<Database>): Promise<void> {
  await sql`set local timezone = 'UTC'`.execute(trx);
  await sql`set local extra_float_digits = 1`.execute(trx);
  await sql`set local bytea_output = 'hex'`.execute(trx);
  await sql`set local datestyle = 'ISO, YMD'`.execute(trx);
  await sql`set local intervalstyle = 'postgres'`.execute(trx);
}

/**
 * Reads a table through a cursor, `FETCH_ROWS` rows at a time; `sink` gets each
 * chunk of lines (newline-terminated). Returns the row count and the SHA-256 of
 * all lines.
 */
export async function dumpTable(
  trx: Transaction<Database>,
  table: TableInfo,
  sink: (text: string) => Promise<void> | void,
): Promise<{ rows: number; sha256: string }> {
  const hash = createHash('sha256');
  let rows = 0;
  const order = sql.join(table.orderBy.map((c) => sql`t.${ident(c)}`));
  await sql`declare posfleet_dump no scroll cursor for
    select to_jsonb(t)::text as j from ${ident(table.name)} t order by ${order}`.execute(trx);
  for (;;) {
    const { rows: chunk } = await sql<{
      j: string;
    }>`fetch forward ${sql.raw(String(FETCH_ROWS))} from posfleet_dump`.execute(trx);
    if (chunk.length === 0) break;
    let text = '';
    for (const r of chunk) text += `${r.j}\n`;
    hash.update(text);
    rows += chunk.length;
    await sink(text);
  }
  await sql`close posfleet_dump`.execute(trx);
  return { rows, sha256: hash.digest('hex') };
}

/** Inserts JSON lines into a table, about 2 MB per statement; PostgreSQL converts each value back to its column type. */
export async function loadRows(
  trx: Transaction<Database>,
  table: TableInfo,
  lines: AsyncIterable<string>,
): Promise<number> {
  const cols = sql.join(table.columns.map((c) => ident(c)));
  let batch: string[] = [];
  let bytes = 0;
  let rows = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    await sql`insert into ${ident(table.name)} (${cols})
      select ${cols} from jsonb_populate_recordset(null::${ident(table.name)}, ${`[${batch.join(',')}]`}::jsonb)`.execute(
      trx,
    );
    rows += batch.length;
    batch = [];
    bytes = 0;
  };
  for await (const line of lines) {
    if (!line) continue;
    batch.push(line);
    bytes += line.length;
    if (bytes > 2_000_000 || batch.length >= 5000) await flush();
  }
  await flush();
  return rows;
}
