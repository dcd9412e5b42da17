// When a device was last heard is its newest heartbeat's receive time, which
// device_state already holds: devices.last_seen_at repeated it, and writing it
// rewrote the wide devices row (config, tags, credentials) on every heartbeat
// batch, with its row lock held against operators' updates. Reads now take
// device_state.received_at; the heartbeat writer touches a device row only
// when its reported firmware or apps change.
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('devices').dropColumn('last_seen_at').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('devices').addColumn('last_seen_at', 'timestamptz').execute();
  await sql`UPDATE devices d SET last_seen_at = s.received_at FROM device_state s WHERE s.device_id = d.id`.execute(db);
}
