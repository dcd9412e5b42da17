// backup --out FILE: the server makes a consistent online backup (database,
// artifacts, keys; docs/operations.md#backup-and-restore) and streams it here.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { commandOf, type Ctx } from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { byteProgress } from '../progress.ts';

export function registerBackup(program: Command, ctx: Ctx): void {
  program
    .command('backup')
    .description('back up a running server (database, artifacts, keys) into one file (admin key)')
    .requiredOption('--out <file>', 'where to write the backup (.tar.gz, mode 0600)')
    .addHelpText(
      'after',
      '\nThe file holds the keys that must travel with the data (URL signing, webhook secrets): keep it safe.\nRestore with the server stopped: posfleet restore FILE (docs/operations.md).',
    )
    .action(async (opts: { out: string }, ...rest: unknown[]) => {
      const cmd = commandOf(rest);
      const out = ctx.out(cmd);
      const res = await ctx.api(cmd).send('POST', '/api/v1/backups', {});
      const total = Number(res.headers.get('content-length') ?? 0);
      const expected = res.headers.get('x-backup-sha256');
      const progress = byteProgress(ctx.io, 'backup', total, out.colour);
      const hash = createHash('sha256');
      let received = 0;
      const tmp = `${opts.out}.partial`;
      try {
        await pipeline(
          Readable.fromWeb(res.body as import('node:stream/web').ReadableStream),
          new Transform({
            transform(chunk: Buffer, _enc, done) {
              received += chunk.length;
              hash.update(chunk);
              progress.update(received);
              done(null, chunk);
            },
          }),
          createWriteStream(tmp, { mode: 0o600 }),
        );
      } catch (err) {
        await rm(tmp, { force: true });
        throw new CliError(EXIT.failed, `backup download failed: ${(err as Error).message}`);
      } finally {
        progress.stop();
      }
      const sha256 = hash.digest('hex');
      if (expected && expected !== sha256) {
        await rm(tmp, { force: true });
        throw new CliError(
          EXIT.failed,
          'the backup arrived damaged (its checksum differs from the server’s); try again',
        );
      }
      await rename(tmp, opts.out);
      if (out.json) return out.data({ file: opts.out, bytes: received, sha256, id: res.headers.get('x-backup-id') });
      out.line(`wrote ${opts.out} (${received} bytes, sha256 ${sha256.slice(0, 16)}…)`);
    });
}
