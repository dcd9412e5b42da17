// Telemetry: raw heartbeats (deduplicated on device, boot, seq), hourly
// roll-ups, the latest state of each device, boots and device events.
// Frozen once shipped: change the schema in a new, later migration.
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // No foreign key to devices: it would cost a lookup per row on the hot path,
  // and devices are never deleted (they are decommissioned).
  await db.schema
    .createTable('heartbeats')
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('boot_id', 'text', (c) => c.notNull())
    .addColumn('seq', 'bigint', (c) => c.notNull())
    .addColumn('ts', 'timestamptz', (c) => c.notNull())
    .addColumn('received_at', 'timestamptz', (c) => c.notNull())
    .addColumn('drift_ms', 'bigint', (c) => c.notNull())
    .addColumn('firmware', 'text', (c) => c.notNull())
    .addColumn('vitals', 'jsonb', (c) => c.notNull())
    .addPrimaryKeyConstraint('heartbeats_pk', ['device_id', 'boot_id', 'seq'])
    .execute();
  await db.schema
    .createIndex('heartbeats_device_time')
    .on('heartbeats')
    .columns(['device_id', 'received_at'])
    .execute();
  await db.schema.createIndex('heartbeats_time').on('heartbeats').column('received_at').execute();

  await db.schema
    .createTable('heartbeat_hourly')
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('hour', 'timestamptz', (c) => c.notNull())
    .addColumn('count', 'integer', (c) => c.notNull())
    .addColumn('stats', 'jsonb', (c) => c.notNull())
    .addPrimaryKeyConstraint('heartbeat_hourly_pk', ['device_id', 'hour'])
    .execute();
  await db.schema.createIndex('heartbeat_hourly_hour').on('heartbeat_hourly').column('hour').execute();

  await db.schema
    .createTable('device_state')
    .addColumn('device_id', 'text', (c) => c.primaryKey())
    .addColumn('boot_id', 'text', (c) => c.notNull())
    .addColumn('seq', 'bigint', (c) => c.notNull())
    .addColumn('ts', 'timestamptz', (c) => c.notNull())
    .addColumn('received_at', 'timestamptz', (c) => c.notNull())
    .addColumn('drift_ms', 'bigint', (c) => c.notNull())
    .addColumn('vitals', 'jsonb', (c) => c.notNull())
    // Decayed sums of card-reader outcomes: the error rate over recent transactions.
    .addColumn('reader_ok', 'double precision', (c) => c.notNull().defaultTo(0))
    .addColumn('reader_err', 'double precision', (c) => c.notNull().defaultTo(0))
    .execute();

  await db.schema
    .createTable('device_boots')
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('boot_id', 'text', (c) => c.notNull())
    .addColumn('at', 'timestamptz', (c) => c.notNull())
    .addColumn('reason', 'text')
    .addPrimaryKeyConstraint('device_boots_pk', ['device_id', 'boot_id'])
    .execute();
  await db.schema.createIndex('device_boots_time').on('device_boots').columns(['device_id', 'at']).execute();

  await db.schema
    .createTable('device_events')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('severity', 'text')
    .addColumn('ts', 'timestamptz', (c) => c.notNull())
    .addColumn('received_at', 'timestamptz', (c) => c.notNull())
    .addColumn('data', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .execute();
  // A resent event (QoS 1 redelivery) carries the same device time and type.
  await db.schema
    .createIndex('device_events_dedupe')
    .on('device_events')
    .columns(['device_id', 'ts', 'type'])
    .unique()
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['device_events', 'device_boots', 'device_state', 'heartbeat_hourly', 'heartbeats']) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
