// Opening a backup file: unpack, then check the manifest and every part's size
// and checksum before anything is restored.
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import * as tar from 'tar';
import { sha256File } from './files.ts';
import { dataFile, manifestSchema, type Manifest } from './manifest.ts';

export class BackupError extends Error {}

export interface OpenedBackup {
  dir: string;
  manifest: Manifest;
  lines(file: string): AsyncIterable<string>;
  close(): Promise<void>;
}

export async function openBackup(file: string): Promise<OpenedBackup> {
  const dir = await mkdtemp(join(tmpdir(), 'posfleet-restore-'));
  // A refused extraction may still be writing for a moment: retried, and never the error reported.
  const close = () => rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 }).catch(() => undefined);
  try {
    try {
      await tar.extract({ file, cwd: dir, strict: true });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOENT' && e.path === file) throw new BackupError(`${file} does not exist`);
      throw new BackupError(`${file} is damaged or not a posfleet backup (${e.message})`);
    }
    let manifest: Manifest;
    try {
      manifest = manifestSchema.parse(JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')));
    } catch (err) {
      throw new BackupError(
        `${file} is damaged or not a posfleet backup: its manifest cannot be read (${(err as Error).message.split('\n')[0]})`,
      );
    }
    const parts = [
      ...manifest.tables.map((t) => ({ path: t.file, sha256: t.sha256, bytes: undefined as number | undefined })),
      ...manifest.files.map((f) => ({
        path: dataFile(f.path),
        sha256: f.sha256,
        bytes: f.bytes as number | undefined,
      })),
    ];
    for (const part of parts) {
      const sum = await sha256File(join(dir, part.path)).catch(() => null);
      if (!sum) throw new BackupError(`${file} is damaged: ${part.path} is missing`);
      if (sum.sha256 !== part.sha256 || (part.bytes !== undefined && sum.bytes !== part.bytes))
        throw new BackupError(`${file} is damaged: ${part.path} does not match its checksum in the manifest`);
    }
    return {
      dir,
      manifest,
      lines: (name) =>
        createInterface({ input: createReadStream(join(dir, name)), crlfDelay: Number.POSITIVE_INFINITY }),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
