// artifacts upload|list|withdraw.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import type { Command } from 'commander';
import { commandOf, type Ctx } from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { fetchPages, pageOptions, showPage, type PageOptions } from '../lists.ts';
import { when } from '../output.ts';
import { byteProgress } from '../progress.ts';

interface Artifact {
  id: string;
  component: string;
  version: string;
  models: string[];
  size: number;
  sha256: string;
  keyId: string;
  createdAt: string;
}

export function registerArtifacts(program: Command, ctx: Ctx): void {
  const artifacts = program
    .command('artifacts')
    .description('signed firmware and app packages: upload, list, withdraw');

  artifacts
    .command('upload')
    .description('upload a package made by posfleet firmware pack (streamed, with a progress bar)')
    .argument('<file>', 'the .pkg file')
    .action(async (file: string, ...rest: unknown[]) => {
      const cmd = commandOf(rest);
      const out = ctx.out(cmd);
      const api = ctx.api(cmd);
      const size = await stat(file).then(
        (s) => s.size,
        (err: NodeJS.ErrnoException) => {
          throw new CliError(EXIT.usage, `cannot read ${file}: ${err.code ?? err.message}`);
        },
      );
      const progress = byteProgress(ctx.io, `upload ${basename(file)}`, size, out.colour);
      let sent = 0;
      const source = createReadStream(file, { highWaterMark: 256 * 1024 });
      source.on('data', (chunk) => {
        sent += chunk.length;
        progress.update(sent);
      });
      let res: Response;
      try {
        res = await api.send('POST', '/api/v1/artifacts', {
          body: Readable.toWeb(source) as unknown as NonNullable<RequestInit['body']>,
          headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
        });
      } finally {
        progress.stop();
      }
      const artifact = (await res.json()) as Artifact;
      if (out.json) return out.data(artifact);
      out.line(
        `uploaded ${artifact.component} ${artifact.version} for ${artifact.models.join(',')} as ${artifact.id} (${artifact.size} bytes, sha256 ${artifact.sha256.slice(0, 12)}…)`,
      );
    });

  const list = artifacts
    .command('list')
    .description('list artifacts, newest first')
    .option('--component <component>', 'firmware or app:NAME')
    .option('--version <version>', 'exact version')
    .option('--model <model>', 'artifacts for this model');
  pageOptions(list).action(async (opts: PageOptions & Record<string, string>, ...rest: unknown[]) => {
    const cmd = commandOf(rest);
    const query = { component: opts.component, version: opts.version, model: opts.model };
    showPage(ctx.out(cmd), await fetchPages<Artifact>(ctx.api(cmd), '/artifacts', query, opts), [
      { header: 'ID', value: (a) => a.id },
      { header: 'COMPONENT', value: (a) => a.component },
      { header: 'VERSION', value: (a) => a.version },
      { header: 'MODELS', value: (a) => a.models },
      { header: 'SIZE', value: (a) => a.size },
      { header: 'KEY', value: (a) => a.keyId },
      { header: 'CREATED', value: (a) => when(a.createdAt) },
    ]);
  });

  artifacts
    .command('withdraw')
    .description('withdraw (delete) an artifact that no rollout uses')
    .argument('<id>', 'artifact id')
    .action(async (id: string, ...rest: unknown[]) => {
      const cmd = commandOf(rest);
      await ctx.api(cmd).call('DELETE', `/artifacts/${encodeURIComponent(id)}`);
      const out = ctx.out(cmd);
      if (out.json) return out.data({ id, withdrawn: true });
      out.line(`withdrew artifact ${id}`);
    });
}
