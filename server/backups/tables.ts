// What the database holds, asked of PostgreSQL's catalogue (the same on PGlite):
// the posfleet tables in load order (a table after those its foreign keys
// point to), their primary keys (the dump's row order) and sequences.
import { sql, type Transaction } from 'kysely';
import type { Db } from '../db/index.ts';
import type { Database } from '../db/schema.ts';

type Conn = Db | Transaction<Database>;

/** Kysely's own bookkeeping: restore rebuilds it by running the migrations. */
const SKIPPED = new Set(['kysely_migration', 'kysely_migration_lock']);

export interface TableInfo {
  name: string;
  /** Columns of the primary key (the dump's order), or all columns when there is none. */
  orderBy: string[];
  /** Columns to write on load (generated ones are left to the database). */
  columns: string[];
}

export async function listTables(db: Conn): Promise<TableInfo[]> {
  const { rows: tables } = await sql<{ name: string }>`
    select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = current_schema() and c.relkind in ('r', 'p') and not c.relispartition`.execute(db);
  const { rows: cols } = await sql<{ table: string; column: string; generated: string; pk: boolean }>`
    select c.relname as table, a.attname as column, a.attgenerated as generated,
      exists (select 1 from pg_index i where i.indrelid = c.oid and i.indisprimary and a.attnum = any(i.indkey)) as pk
    from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = current_schema() and a.attnum > 0 and not a.attisdropped
    order by c.relname, a.attnum`.execute(db);
  const { rows: fks } = await sql<{ table: string; references: string }>`
    select c.relname as table, r.relname as references from pg_constraint k
    join pg_class c on c.oid = k.conrelid join pg_class r on r.oid = k.confrelid
    join pg_namespace n on n.oid = c.relnamespace
    where k.contype = 'f' and n.nspname = current_schema()`.execute(db);
  const names = tables.map((t) => t.name).filter((n) => !SKIPPED.has(n));
  const info = new Map<string, TableInfo>();
  for (const name of names) {
    const own = cols.filter((c) => c.table === name);
    const pk = own.filter((c) => c.pk).map((c) => c.column);
    info.set(name, {
      name,
      orderBy: pk.length ? pk : own.map((c) => c.column),
      columns: own.filter((c) => !c.generated).map((c) => c.column),
    });
  }
  return loadOrder(names, fks).map((n) => info.get(n)!);
}

/** Tables sorted so each comes after the tables it references (self-references aside). */
export function loadOrder(names: string[], fks: { table: string; references: string }[]): string[] {
  const sorted: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string) => {
    if (state.get(name) === 'done' || state.get(name) === 'visiting') return;
    state.set(name, 'visiting');
    for (const fk of fks)
      if (fk.table === name && fk.references !== name && names.includes(fk.references)) visit(fk.references);
    state.set(name, 'done');
    sorted.push(name);
  };
  for (const name of [...names].sort()) visit(name);
  return sorted;
}

export async function listSequences(db: Conn): Promise<{ name: string; lastValue: number | null }[]> {
  const { rows } = await sql<{ name: string; last_value: string | number | null }>`
    select sequencename as name, last_value from pg_sequences where schemaname = current_schema() order by 1`.execute(
    db,
  );
  return rows.map((r) => ({ name: r.name, lastValue: r.last_value === null ? null : Number(r.last_value) }));
}

export const ident = (name: string) => sql.id(name);
