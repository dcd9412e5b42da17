// The baseline's COPY: rows appended with the same copy-in the server's
// database thread uses (server/db/copy-in.mjs).
import type pg from 'pg';
import { copyIn } from '../../server/db/copy-in.mjs';

/** Copies tab-separated text rows into `table (columns)`. */
export async function copyRows(
  client: pg.PoolClient | pg.Client,
  table: string,
  columns: string[],
  rows: string[],
): Promise<void> {
  await copyIn(client, `COPY ${table} (${columns.join(', ')}) FROM STDIN`, `${rows.join('\n')}\n`);
}
