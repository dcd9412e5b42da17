// Health: presence, rules, per-(device, rule) evaluation state, alerts and
// maintenance predictions. Frozen once shipped.
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('device_presence')
    .addColumn('device_id', 'text', (c) => c.primaryKey())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('since', 'timestamptz', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('device_presence_state').on('device_presence').column('state').execute();

  await db.schema
    .createTable('health_rules')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('metric', 'text', (c) => c.notNull())
    .addColumn('comparison', 'text', (c) => c.notNull())
    .addColumn('threshold', 'jsonb', (c) => c.notNull())
    .addColumn('clear_threshold', 'jsonb')
    .addColumn('conditions', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('for_count', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('for_seconds', 'integer')
    .addColumn('severity', 'text', (c) => c.notNull())
    .addColumn('scope', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('ticket', 'jsonb')
    .addColumn('remediation', 'text')
    .addColumn('enabled', 'boolean', (c) => c.notNull().defaultTo(true))
    .addColumn('builtin', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addColumn('deleted_at', 'timestamptz')
    .execute();

  // Only non-default states are stored: a healthy heartbeat writes nothing here.
  await db.schema
    .createTable('rule_state')
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('rule_id', 'text', (c) => c.notNull())
    .addColumn('state', 'jsonb', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('rule_state_pk', ['device_id', 'rule_id'])
    .execute();

  await db.schema
    .createTable('alerts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('rule_id', 'text', (c) => c.notNull())
    .addColumn('rule_name', 'text', (c) => c.notNull())
    .addColumn('severity', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('merchant_id', 'text')
    .addColumn('model', 'text', (c) => c.notNull())
    .addColumn('message', 'text', (c) => c.notNull())
    .addColumn('remediation', 'text')
    .addColumn('value', 'jsonb')
    .addColumn('count', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('flapping', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('muted', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('ticket_id', 'text')
    .addColumn('opened_at', 'timestamptz', (c) => c.notNull())
    .addColumn('last_seen_at', 'timestamptz', (c) => c.notNull())
    .addColumn('acknowledged_at', 'timestamptz')
    .addColumn('acknowledged_by', 'text')
    .addColumn('resolved_at', 'timestamptz')
    .addColumn('resolved_by', 'text')
    .addColumn('resolution', 'text')
    .execute();
  // One open (or acknowledged) alert per device and rule.
  await sql`CREATE UNIQUE INDEX alerts_one_open ON alerts (device_id, rule_id) WHERE state <> 'resolved'`.execute(db);
  await db.schema.createIndex('alerts_state').on('alerts').columns(['state', 'severity']).execute();
  await db.schema.createIndex('alerts_device').on('alerts').columns(['device_id', 'opened_at']).execute();

  await db.schema
    .createTable('device_predictions')
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('due_in_days', 'double precision')
    .addColumn('due_at', 'timestamptz')
    .addColumn('basis', 'jsonb', (c) => c.notNull())
    .addColumn('computed_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('device_predictions_pk', ['device_id', 'kind'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['device_predictions', 'alerts', 'rule_state', 'health_rules', 'device_presence']) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
