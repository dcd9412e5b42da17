// keys list|create|revoke (admin).
import type { Command } from 'commander';
import { commandOf, type Ctx } from '../context.ts';
import { fetchPages, pageOptions, showPage, type PageOptions } from '../lists.ts';
import { when } from '../output.ts';

interface ApiKey {
  id: string;
  name: string;
  role: string;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

export function registerKeys(program: Command, ctx: Ctx): void {
  const keys = program.command('keys').description('API keys (admin): list, create, revoke');
  pageOptions(keys.command('list').description('list API keys (never their secrets)')).action(
    async (opts: PageOptions, ...rest: unknown[]) => {
      const cmd = commandOf(rest);
      showPage(ctx.out(cmd), await fetchPages<ApiKey>(ctx.api(cmd), '/api-keys', {}, opts), [
        { header: 'ID', value: (k) => k.id },
        { header: 'NAME', value: (k) => k.name },
        { header: 'ROLE', value: (k) => k.role },
        { header: 'CREATED', value: (k) => when(k.createdAt) },
        { header: 'LAST USED', value: (k) => when(k.lastUsedAt) },
        { header: 'REVOKED', value: (k) => when(k.revokedAt) },
      ]);
    },
  );
  keys
    .command('create')
    .description('create an API key; its token is printed once, on stdout only')
    .requiredOption('--name <name>', 'what the key is for')
    .requiredOption('--role <role>', 'viewer, operator or admin')
    .action(async (opts: { name: string; role: string }, ...rest: unknown[]) => {
      const cmd = commandOf(rest);
      const key = await ctx.api(cmd).call<ApiKey & { token: string }>('POST', '/api-keys', { body: opts });
      const out = ctx.out(cmd);
      if (out.json) return out.data(key);
      out.note(`created key ${key.id} (${key.role}); its token is shown once:`);
      out.line(key.token);
    });
  keys
    .command('revoke')
    .description('revoke an API key at once')
    .argument('<id>', 'key id')
    .action(async (id: string, ...rest: unknown[]) => {
      const cmd = commandOf(rest);
      await ctx.api(cmd).call('DELETE', `/api-keys/${encodeURIComponent(id)}`);
      const out = ctx.out(cmd);
      if (out.json) return out.data({ id, revoked: true });
      out.line(`revoked key ${id}`);
    });
}
