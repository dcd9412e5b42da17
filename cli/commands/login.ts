// login, logout, context list|use|remove, wait-ready.
import type { Command } from 'commander';
import { createClient } from '../client.ts';
import { readContexts, resolveContext, writeContexts } from '../contexts.ts';
import { commandOf, type Ctx } from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { parseDuration } from '../units.ts';

export function registerLogin(program: Command, ctx: Ctx): void {
  program
    .command('login')
    .description(
      'remember a server and an API key as a named context (the key is read from POSFLEET_TOKEN or a prompt)',
    )
    .requiredOption('--url <url>', 'the server, e.g. http://localhost:8080')
    .option('--name <context>', 'name of the context (default: "default"; --context works too)')
    .addHelpText(
      'after',
      '\nThe key is checked against the server, then stored in $XDG_CONFIG_HOME/posfleet/config.json\n(else ~/.config/posfleet/config.json), mode 0600. It is never printed.',
    )
    .action(async (opts: { url: string; name?: string }, ...rest: unknown[]) => {
      const cmd = commandOf(rest);
      const out = ctx.out(cmd);
      const name = opts.name ?? ctx.globals(cmd).context ?? 'default';
      let url: string;
      try {
        url = new URL(opts.url).toString().replace(/\/+$/, '');
      } catch {
        throw new CliError(EXIT.usage, `--url ${opts.url} is not a URL`);
      }
      const token = ctx.io.env.POSFLEET_TOKEN || (await ctx.io.readSecret(`API key for ${url}: `));
      if (!token) throw new CliError(EXIT.usage, 'no API key given');
      await createClient(ctx.io, url, token).call('GET', '/devices', { query: { limit: 1 } });
      const data = readContexts(ctx.io.env);
      data.contexts[name] = { url, token };
      data.current = name;
      const file = writeContexts(ctx.io.env, data);
      if (out.json) out.data({ context: name, url, file });
      else out.line(`logged in to ${url} as context "${name}" (saved in ${file})`);
    });

  program
    .command('logout')
    .description('forget the key of a context (the current one unless --name)')
    .option('--name <context>', 'the context to forget')
    .action(async (opts: { name?: string }, ...rest: unknown[]) => {
      const out = ctx.out(commandOf(rest));
      const data = readContexts(ctx.io.env);
      const name = opts.name ?? data.current;
      if (!name || !data.contexts[name]) throw new CliError(EXIT.notFound, `no context named "${name ?? ''}"`);
      delete data.contexts[name];
      if (data.current === name) data.current = null;
      writeContexts(ctx.io.env, data);
      out.line(`forgot context "${name}"`);
    });

  const context = program.command('context').description('named contexts: several servers or keys');
  context
    .command('list')
    .description('list contexts (the current one is marked *)')
    .action(async (...args: unknown[]) => {
      const out = ctx.out(commandOf(args));
      const data = readContexts(ctx.io.env);
      const rows = Object.entries(data.contexts).map(([name, c]) => ({
        name,
        url: c.url,
        current: name === data.current,
      }));
      if (out.json) return out.data({ current: data.current, contexts: rows });
      out.table(rows, [
        { header: '', value: (r) => (r.current ? '*' : ' ') },
        { header: 'NAME', value: (r) => r.name },
        { header: 'URL', value: (r) => r.url },
      ]);
    });
  context
    .command('use')
    .description('make a context the current one')
    .argument('<name>')
    .action(async (name: string, ...rest: unknown[]) => {
      const out = ctx.out(commandOf(rest));
      const data = readContexts(ctx.io.env);
      if (!data.contexts[name])
        throw new CliError(EXIT.notFound, `no context named "${name}"; see posfleet context list`);
      data.current = name;
      writeContexts(ctx.io.env, data);
      out.line(`current context is now "${name}" (${data.contexts[name].url})`);
    });
  context
    .command('remove')
    .description('remove a context and its key')
    .argument('<name>')
    .action(async (name: string, ...rest: unknown[]) => {
      const out = ctx.out(commandOf(rest));
      const data = readContexts(ctx.io.env);
      if (!data.contexts[name]) throw new CliError(EXIT.notFound, `no context named "${name}"`);
      delete data.contexts[name];
      if (data.current === name) data.current = null;
      writeContexts(ctx.io.env, data);
      out.line(`removed context "${name}"`);
    });

  program
    .command('wait-ready')
    .description('wait until a server answers GET /readyz with 200 (no key needed)')
    .option('--url <url>', 'the server (default: the current context, else http://localhost:8080)')
    .option('--timeout <duration>', 'give up after this long: 30s, 2m', '60s')
    .action(async (opts: { url?: string; timeout: string }, ...rest: unknown[]) => {
      const cmd = commandOf(rest);
      const out = ctx.out(cmd);
      const url = (opts.url ?? contextUrl(ctx, cmd) ?? 'http://localhost:8080').replace(/\/+$/, '');
      const limitMs = parseDuration(opts.timeout, '--timeout');
      const waitedMs = await waitReady(ctx, url, limitMs);
      if (out.json) out.data({ url, ready: true, waitedMs });
      else out.line(`${url} is ready`);
    });
}

function contextUrl(ctx: Ctx, cmd: Command): string | undefined {
  try {
    return resolveContext(ctx.io.env, ctx.globals(cmd).context).url;
  } catch {
    return undefined;
  }
}

/** Polls /readyz every 250 ms; resolves with the time waited, or fails with EXIT.unreachable. */
export async function waitReady(ctx: Ctx, url: string, limitMs: number): Promise<number> {
  let waited = 0;
  let last = 'no answer';
  for (;;) {
    try {
      const res = await ctx.io.fetch(`${url}/readyz`, { signal: AbortSignal.timeout(5_000) });
      await res.text();
      if (res.status === 200) return waited;
      last = `readyz answered ${res.status}`;
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause;
      last = cause?.code ?? (err as Error).message;
    }
    if (waited >= limitMs)
      throw new CliError(EXIT.unreachable, `${url} was not ready after ${limitMs / 1000} s (${last})`);
    await ctx.io.sleep(250);
    waited += 250;
  }
}
