// Cohorts, rollouts and the per-device rollout state (the OTA engine).
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('cohorts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('filter', 'jsonb')
    .addColumn('device_ids', 'jsonb')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('created_by', 'text')
    .execute();

  await db.schema
    .createTable('rollouts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('artifact_id', 'text', (c) => c.notNull().references('artifacts.id'))
    .addColumn('cohort_id', 'text', (c) => c.notNull().references('cohorts.id'))
    .addColumn('component', 'text', (c) => c.notNull())
    .addColumn('version', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('spec', 'jsonb', (c) => c.notNull())
    .addColumn('seed', 'text', (c) => c.notNull())
    .addColumn('current_wave', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('reason', 'text')
    .addColumn('rollback_of', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('created_by', 'text')
    .addColumn('started_at', 'timestamptz')
    .addColumn('finished_at', 'timestamptz')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('rollouts_state').on('rollouts').column('state').execute();

  await db.schema
    .createTable('rollout_devices')
    .addColumn('rollout_id', 'text', (c) => c.notNull().references('rollouts.id').onDelete('cascade'))
    .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id'))
    .addColumn('component', 'text', (c) => c.notNull())
    .addColumn('wave', 'integer', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('from_version', 'text')
    .addColumn('job_id', 'text')
    .addColumn('command_id', 'text')
    .addColumn('sends', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('failures', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'timestamptz')
    .addColumn('sent_at', 'timestamptz')
    .addColumn('installed_at', 'timestamptz')
    .addColumn('install_boot_id', 'text')
    .addColumn('soak_until', 'timestamptz')
    .addColumn('boots_in_soak', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('finished_at', 'timestamptz')
    .addColumn('last_error', 'jsonb')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('rollout_devices_pk', ['rollout_id', 'device_id'])
    .execute();
  await db.schema
    .createIndex('rollout_devices_state')
    .on('rollout_devices')
    .columns(['rollout_id', 'state', 'wave'])
    .execute();
  await db.schema.createIndex('rollout_devices_job').on('rollout_devices').column('job_id').execute();
  // One active rollout per component per terminal, enforced by the database.
  await sql`CREATE UNIQUE INDEX rollout_devices_one_active ON rollout_devices (device_id, component)
    WHERE state NOT IN ('succeeded', 'failed', 'timed_out', 'skipped', 'cancelled')`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['rollout_devices', 'rollouts', 'cohorts']) await db.schema.dropTable(t).ifExists().execute();
}
