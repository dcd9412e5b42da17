// Runs the dated migrations in migrations/ (frozen files, never server imports).
import { readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Migrator, type Kysely, type Migration, type MigrationProvider, type MigrationResult } from 'kysely';

export const MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'migrations');
const NAME = /^\d{4}-\d{2}-\d{2}T\d{4}-[a-z0-9-]+\.ts$/;

class DirectoryProvider implements MigrationProvider {
  constructor(private readonly dir: string) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    const files = (await readdir(this.dir)).filter((f) => NAME.test(f)).sort();
    const out: Record<string, Migration> = {};
    for (const file of files) {
      out[file.replace(/\.ts$/, '')] = (await import(pathToFileURL(join(this.dir, file)).href)) as Migration;
    }
    return out;
  }
}

export async function migrateToLatest(db: Kysely<any>, dir = MIGRATIONS_DIR): Promise<MigrationResult[]> {
  const migrator = new Migrator({ db, provider: new DirectoryProvider(dir) });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    throw new Error(`migration ${failed?.migrationName ?? '?'} failed: ${(error as Error).message ?? error}`);
  }
  return results ?? [];
}

/** The names of the migrations this code ships, oldest first. */
export async function knownMigrations(dir = MIGRATIONS_DIR): Promise<string[]> {
  return Object.keys(await new DirectoryProvider(dir).getMigrations());
}

/** Runs the migrations up to and including `name` (a restore rebuilds the schema its backup was made on). */
export async function migrateTo(db: Kysely<any>, name: string, dir = MIGRATIONS_DIR): Promise<void> {
  const migrator = new Migrator({ db, provider: new DirectoryProvider(dir) });
  const { error, results } = await migrator.migrateTo(name);
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    throw new Error(`migration ${failed?.migrationName ?? '?'} failed: ${(error as Error).message ?? error}`);
  }
}
