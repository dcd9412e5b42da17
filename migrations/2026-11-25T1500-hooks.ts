// Alerting hooks (issue 7): webhook subscriptions, deliveries (one row per
// event and subscription, the same id on every retry) and their attempts; the
// outbox gains a dispatched mark so fan-out survives restarts and gaps.
import { sql, type Kysely } from 'kysely';

const OPEN = sql`state in ('pending', 'delivering', 'failed')`;

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('hook_subscriptions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('events', 'jsonb', (c) => c.notNull())
    .addColumn('format', 'text', (c) => c.notNull())
    .addColumn('filter', 'jsonb', (c) => c.notNull())
    .addColumn('config', 'jsonb', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('secret_sealed', 'text', (c) => c.notNull())
    .addColumn('prev_secret_sealed', 'text')
    .addColumn('prev_secret_until', 'timestamptz')
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('start_seq', 'bigint', (c) => c.notNull())
    .addColumn('failing_since', 'timestamptz')
    .addColumn('disabled_at', 'timestamptz')
    .addColumn('disabled_reason', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('created_by', 'text')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('hook_deliveries')
    .addColumn('seq', 'bigserial', (c) => c.primaryKey())
    .addColumn('id', 'text', (c) => c.notNull().unique())
    .addColumn('subscription_id', 'text', (c) => c.notNull().references('hook_subscriptions.id').onDelete('cascade'))
    .addColumn('event_id', 'text')
    .addColumn('event_type', 'text', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('ordered', 'boolean', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('retry_base', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'timestamptz', (c) => c.notNull())
    .addColumn('lease_until', 'timestamptz')
    .addColumn('last_status', 'integer')
    .addColumn('last_error', 'text')
    .addColumn('last_latency_ms', 'integer')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('delivered_at', 'timestamptz')
    .execute();
  await sql`create index hook_deliveries_open on hook_deliveries (subscription_id, seq) where ${OPEN}`.execute(db);
  await sql`create index hook_deliveries_due on hook_deliveries (next_attempt_at) where ${OPEN}`.execute(db);
  await db.schema
    .createIndex('hook_deliveries_subscription')
    .on('hook_deliveries')
    .columns(['subscription_id', 'seq'])
    .execute();

  await db.schema
    .createTable('hook_attempts')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('delivery_id', 'text', (c) => c.notNull().references('hook_deliveries.id').onDelete('cascade'))
    .addColumn('attempt', 'integer', (c) => c.notNull())
    .addColumn('started_at', 'timestamptz', (c) => c.notNull())
    .addColumn('status', 'integer')
    .addColumn('latency_ms', 'integer', (c) => c.notNull())
    .addColumn('error', 'text')
    .addColumn('response', 'text')
    .execute();
  await db.schema
    .createIndex('hook_attempts_delivery')
    .on('hook_attempts')
    .columns(['delivery_id', 'attempt'])
    .execute();

  await db.schema.alterTable('outbox_events').addColumn('dispatched_at', 'timestamptz').execute();
  await sql`create index outbox_events_undispatched on outbox_events (seq) where dispatched_at is null`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists outbox_events_undispatched`.execute(db);
  await db.schema.alterTable('outbox_events').dropColumn('dispatched_at').execute();
  await db.schema.dropTable('hook_attempts').ifExists().execute();
  await db.schema.dropTable('hook_deliveries').ifExists().execute();
  await db.schema.dropTable('hook_subscriptions').ifExists().execute();
}
