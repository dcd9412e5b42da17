// Artifacts: trusted publisher keys and the catalogue of signed packages.
// Frozen once shipped: change the schema in a new, later migration.
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('signing_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('public_key', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('created_by', 'text')
    .execute();

  await db.schema
    .createTable('artifacts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('component', 'text', (c) => c.notNull())
    .addColumn('version', 'text', (c) => c.notNull())
    .addColumn('models', 'jsonb', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('manifest', 'jsonb', (c) => c.notNull())
    .addColumn('signature', 'text', (c) => c.notNull())
    .addColumn('key_id', 'text', (c) => c.notNull())
    .addColumn('notes', 'text')
    .addColumn('expires_at', 'timestamptz')
    .addColumn('storage_key', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('created_by', 'text')
    .addUniqueConstraint('artifacts_component_version', ['component', 'version'])
    .execute();
  await db.schema.createIndex('artifacts_models').on('artifacts').using('gin').column('models').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('artifacts').ifExists().execute();
  await db.schema.dropTable('signing_keys').ifExists().execute();
}
