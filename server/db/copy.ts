// COPY FROM STDIN on PostgreSQL: rows written at the cost of a bulk load, for
// the hot paths that only append (heartbeats). The worker thread that holds the
// connections speaks the copy-in protocol (server/db/pg-worker.mjs): the
// statement "COPY table (columns) FROM STDIN" with the rows, in COPY's text
// format, as its one parameter. Not on PGlite: callers fall back to INSERT.
import { CompiledQuery } from 'kysely';
import type { Db } from './index.ts';

/** One value in COPY's text format: NULL as \N, and backslash, tab and line breaks escaped. */
export function copyValue(v: string | number | boolean | null): string {
  if (v === null) return '\\N';
  if (typeof v !== 'string') return String(v);
  return /[\\\t\n\r]/.test(v)
    ? v.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r')
    : v;
}

/** Appends rows (each already a line of tab-separated `copyValue`s) to `table (columns)`; resolves with the count. */
export async function copyRows(db: Db, table: string, columns: readonly string[], lines: string[]): Promise<number> {
  const text = `COPY ${table} (${columns.join(', ')}) FROM STDIN`;
  const res = await db.executeQuery(CompiledQuery.raw(text, [`${lines.join('\n')}\n`]));
  return Number(res.numAffectedRows ?? lines.length);
}
