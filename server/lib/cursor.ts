// Opaque list cursors: the sort key of the last item, base64url-encoded.
import { badRequest } from './errors.ts';

export function encodeCursor(key: string): string {
  return Buffer.from(key, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string | undefined): string | null {
  if (!cursor) return null;
  const key = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!key || key.length > 200 || encodeCursor(key) !== cursor)
    throw badRequest('invalid_cursor', 'cursor is not one this server issued');
  return key;
}

/** Cuts a `limit + 1` result into a page and the cursor to the next one. */
export function pageOf<T>(
  rows: T[],
  limit: number,
  keyOf: (row: T) => string,
): { rows: T[]; nextCursor: string | null } {
  const more = rows.length > limit;
  const pageRows = more ? rows.slice(0, limit) : rows;
  return { rows: pageRows, nextCursor: more ? encodeCursor(keyOf(pageRows[pageRows.length - 1])) : null };
}
