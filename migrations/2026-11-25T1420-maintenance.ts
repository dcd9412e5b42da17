// Maintenance: repair and part-replacement tickets, inspection reports.
// Frozen once shipped.
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('tickets')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id'))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('part', 'text')
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('severity', 'text', (c) => c.notNull())
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('alert_id', 'text')
    .addColumn('merchant_id', 'text')
    .addColumn('model', 'text', (c) => c.notNull())
    .addColumn('billable', 'boolean', (c) => c.notNull())
    .addColumn('warranty_reason', 'text', (c) => c.notNull())
    .addColumn('damage', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('damage_note', 'text')
    .addColumn('assignee', 'text')
    .addColumn('notes', 'text')
    .addColumn('sla_due_at', 'timestamptz', (c) => c.notNull())
    .addColumn('scheduled_for', 'timestamptz')
    .addColumn('opened_at', 'timestamptz', (c) => c.notNull())
    .addColumn('started_at', 'timestamptz')
    .addColumn('closed_at', 'timestamptz')
    .addColumn('resolution', 'text')
    .addColumn('replacement_device_id', 'text')
    .addColumn('created_by', 'text')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('tickets_device').on('tickets').columns(['device_id', 'state']).execute();
  await db.schema.createIndex('tickets_state').on('tickets').columns(['state', 'sla_due_at']).execute();

  await db.schema
    .createTable('inspection_reports')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('started_at', 'timestamptz', (c) => c.notNull())
    .addColumn('completed_at', 'timestamptz', (c) => c.notNull())
    .addColumn('summary', 'jsonb', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('inspection_reports_completed').on('inspection_reports').column('completed_at').execute();

  await db.schema
    .createTable('inspection_results')
    .addColumn('report_id', 'text', (c) => c.notNull().references('inspection_reports.id').onDelete('cascade'))
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('verdict', 'text', (c) => c.notNull())
    .addColumn('checks', 'jsonb', (c) => c.notNull())
    .addPrimaryKeyConstraint('inspection_results_pk', ['report_id', 'device_id'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['inspection_results', 'inspection_reports', 'tickets'])
    await db.schema.dropTable(t).ifExists().execute();
}
