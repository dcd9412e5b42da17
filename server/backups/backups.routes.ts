// HTTP: POST /backups makes an online backup and sends it (admin).
import { createReadStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createRoute } from '@hono/zod-openapi';
import { errors, guarded, router } from '../http/openapi.ts';
import type { Backups } from './backup.service.ts';

export function backupRoutes(deps: { backups: Backups; dataDir: string }) {
  const app = router();
  app.openapi(
    createRoute({
      method: 'post',
      path: '/backups',
      ...guarded('admin', 'operations'),
      summary: 'Make a consistent online backup (database, artifacts, keys) and download it (tar.gz with a manifest)',
      responses: {
        200: {
          description: 'the backup file; x-backup-sha256 is its checksum, x-backup-id its id',
          content: { 'application/gzip': { schema: { type: 'string', format: 'binary' } } },
        },
        401: errors[401],
        403: errors[403],
      },
    }),
    (async () => {
      const dir = join(deps.dataDir, '.backups-out');
      await mkdir(dir, { recursive: true });
      const made = await deps.backups.make(join(dir, `${Date.now()}-${Math.random().toString(36).slice(2)}.tar.gz`));
      const stream = createReadStream(made.file);
      // The file is only a carrier: gone once sent (or once the client went away).
      stream.once('close', () => void rm(made.file, { force: true }));
      return new Response(Readable.toWeb(stream) as ReadableStream<Uint8Array>, {
        status: 200,
        headers: {
          'content-type': 'application/gzip',
          'content-length': String(made.bytes),
          'content-disposition': `attachment; filename="posfleet-backup-${made.id}.tar.gz"`,
          'x-backup-sha256': made.sha256,
          'x-backup-id': made.id,
        },
      });
    }) as never,
  );
  return app;
}
