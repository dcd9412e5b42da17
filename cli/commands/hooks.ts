// hooks list|deliveries.
import type { Command } from 'commander';
import { commandOf, type Ctx } from '../context.ts';
import { fetchPages, pageOptions, showPage, type PageOptions } from '../lists.ts';
import { when } from '../output.ts';

interface Hook {
  id: string;
  url: string;
  events: string[];
  format: string;
  state: string;
  failingSince: string | null;
}
interface Delivery {
  id: string;
  eventType: string;
  state: string;
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  createdAt: string;
  deliveredAt: string | null;
}

export function registerHooks(program: Command, ctx: Ctx): void {
  const hooks = program.command('hooks').description('webhook subscriptions and their delivery log');
  pageOptions(hooks.command('list').description('list webhook subscriptions')).action(
    async (opts: PageOptions, ...rest: unknown[]) => {
      const cmd = commandOf(rest);
      showPage(ctx.out(cmd), await fetchPages<Hook>(ctx.api(cmd), '/hooks', {}, opts), [
        { header: 'ID', value: (h) => h.id },
        { header: 'STATE', value: (h) => h.state },
        { header: 'FORMAT', value: (h) => h.format },
        { header: 'EVENTS', value: (h) => h.events },
        { header: 'FAILING SINCE', value: (h) => when(h.failingSince) },
        { header: 'URL', value: (h) => h.url },
      ]);
    },
  );
  const deliveries = hooks
    .command('deliveries')
    .description("a subscription's delivery log, newest first")
    .argument('<id>', 'hook id')
    .option('--state <state>', 'pending, delivered, failed, …');
  pageOptions(deliveries).action(async (id: string, opts: PageOptions & { state?: string }, ...rest: unknown[]) => {
    const cmd = commandOf(rest);
    const page = await fetchPages<Delivery>(
      ctx.api(cmd),
      `/hooks/${encodeURIComponent(id)}/deliveries`,
      { state: opts.state },
      opts,
    );
    showPage(ctx.out(cmd), page, [
      { header: 'ID', value: (d) => d.id },
      { header: 'EVENT', value: (d) => d.eventType },
      { header: 'STATE', value: (d) => d.state },
      { header: 'ATTEMPTS', value: (d) => d.attempts },
      { header: 'LAST', value: (d) => d.lastStatus ?? d.lastError },
      { header: 'CREATED', value: (d) => when(d.createdAt) },
      { header: 'DELIVERED', value: (d) => when(d.deliveredAt) },
    ]);
  });
}
