// Paged lists ({items, nextCursor}, docs/api.md): one page, or every page with --all.
import type { Command } from 'commander';
import type { ApiClient, Query } from './client.ts';
import type { Column, Output } from './output.ts';
import { parseIntOption } from './units.ts';

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface PageOptions {
  limit?: string;
  cursor?: string;
  all?: boolean;
}

export function pageOptions(cmd: Command): Command {
  return cmd
    .option('--limit <n>', 'items per page (1-500)', '50')
    .option('--cursor <cursor>', 'continue after this cursor (nextCursor of the previous page)')
    .option('--all', 'follow nextCursor until the last page');
}

export async function fetchPages<T>(api: ApiClient, path: string, query: Query, opts: PageOptions): Promise<Page<T>> {
  const limit = parseIntOption(opts.limit ?? '50', '--limit', 1, 500);
  const items: T[] = [];
  let cursor = opts.cursor;
  for (;;) {
    const page = await api.call<Page<T>>('GET', path, { query: { ...query, limit, cursor } });
    items.push(...page.items);
    if (!opts.all || !page.nextCursor) return { items, nextCursor: page.nextCursor };
    cursor = page.nextCursor;
  }
}

/** A page as a table (with a hint when there is more), or as the API's JSON. */
export function showPage<T>(out: Output, page: Page<T>, columns: Column<T>[]): void {
  if (out.json) return out.data(page);
  out.table(page.items, columns);
  if (page.nextCursor) out.note(`more: --cursor ${page.nextCursor} (or --all)`);
}
