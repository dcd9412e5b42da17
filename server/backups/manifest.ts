// The backup file (docs/operations.md#backup-and-restore): a gzipped tar with
// manifest.json, one JSON-lines file per table (db/<table>.jsonl) and the files
// that travel with the data (files/…). Every part has its SHA-256 in the
// manifest; restore refuses a file whose parts do not match.
import { z } from 'zod';

export const BACKUP_FORMAT = 'posfleet-backup';
export const BACKUP_FORMAT_VERSION = 1;

const sha256 = z.string().regex(/^[0-9a-f]{64}$/);

export const manifestSchema = z.object({
  format: z.literal(BACKUP_FORMAT),
  formatVersion: z.literal(BACKUP_FORMAT_VERSION),
  id: z.string().min(1),
  createdAt: z.string(),
  posfleetVersion: z.string(),
  source: z.enum(['pglite', 'postgres']),
  /** Migrations applied in the source: restore brings the target to exactly these before loading rows. */
  migrations: z.array(z.string()).min(1),
  tables: z.array(z.object({ name: z.string(), file: z.string(), rows: z.number().int().min(0), sha256 })),
  sequences: z.array(z.object({ name: z.string(), lastValue: z.number().int().nullable() })),
  files: z.array(
    z.object({
      /** Where it goes back, relative to DATA_DIR. */
      path: z.string(),
      kind: z.enum(['artifact', 'key']),
      bytes: z.number().int().min(0),
      sha256,
    }),
  ),
  /** Keys that came from a setting are not in the file: the same setting must be given on restore. */
  keysFromSettings: z.array(z.enum(['URL_SIGNING_SECRET', 'HOOKS_SECRET_KEY', 'POSFLEET_ADMIN_TOKEN'])),
});
export type Manifest = z.infer<typeof manifestSchema>;

/** Where a table's rows and a DATA_DIR file sit inside the archive. */
export const tableFile = (name: string) => `db/${name}.jsonl`;
export const dataFile = (path: string) => `files/${path}`;

/** DATA_DIR files holding keys that must travel with the data. */
export const KEY_FILES = [
  { path: 'url-signing.key', setting: 'URL_SIGNING_SECRET' },
  { path: 'hooks.key', setting: 'HOOKS_SECRET_KEY' },
  { path: 'admin-token', setting: 'POSFLEET_ADMIN_TOKEN' },
] as const;
