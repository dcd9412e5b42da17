// Rows rewritten on every heartbeat (a device's last-seen and latest state)
// and alerts touched while they fire: leave room on each page so PostgreSQL
// can update them in place (HOT) instead of adding an entry to every index.
// Only new pages are filled to the new mark; existing ones fill as they turn over.
import { sql, type Kysely } from 'kysely';

const HOT: [string, number][] = [
  ['devices', 70],
  ['device_state', 70],
  ['alerts', 85],
];

export async function up(db: Kysely<any>): Promise<void> {
  for (const [table, fill] of HOT)
    await sql`ALTER TABLE ${sql.table(table)} SET (fillfactor = ${sql.lit(fill)})`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const [table] of HOT) await sql`ALTER TABLE ${sql.table(table)} RESET (fillfactor)`.execute(db);
}
