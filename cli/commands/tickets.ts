// tickets list|show|update.
import type { Command } from 'commander';
import { commandOf, type Ctx } from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { fetchPages, pageOptions, showPage, type PageOptions } from '../lists.ts';
import { when } from '../output.ts';

interface Ticket {
  id: string;
  deviceId: string;
  kind: string;
  part: string | null;
  state: string;
  severity: string;
  title: string;
  warranty: { decision?: string; reason?: string } & Record<string, unknown>;
  assignee: string | null;
  slaDueAt: string;
  slaBreached: boolean;
  openedAt: string;
  [k: string]: unknown;
}

const FILTERS = ['state', 'device', 'kind', 'part', 'merchant', 'source'] as const;

export function registerTickets(program: Command, ctx: Ctx): void {
  const tickets = program.command('tickets').description('maintenance tickets: list, show, update');
  const list = tickets
    .command('list')
    .description('list tickets, newest first')
    .option('--state <state>', 'open, scheduled, in_progress, resolved, cancelled')
    .option('--device <id>', 'device id')
    .option('--kind <kind>', 'repair, part_replacement, inspection')
    .option('--part <part>', 'printer, scanner, battery, reader, …')
    .option('--merchant <id>', 'merchant id')
    .option('--source <source>', 'alert, prediction, manual, …');
  pageOptions(list).action(async (opts: PageOptions & Record<string, string>, ...rest: unknown[]) => {
    const cmd = commandOf(rest);
    const query = Object.fromEntries(FILTERS.map((f) => [f, opts[f]]));
    showPage(ctx.out(cmd), await fetchPages<Ticket>(ctx.api(cmd), '/tickets', query, opts), [
      { header: 'ID', value: (t) => t.id },
      { header: 'DEVICE', value: (t) => t.deviceId },
      { header: 'KIND', value: (t) => (t.part ? `${t.kind}:${t.part}` : t.kind) },
      { header: 'STATE', value: (t) => t.state },
      { header: 'SEVERITY', value: (t) => t.severity },
      { header: 'SLA DUE', value: (t) => `${when(t.slaDueAt)}${t.slaBreached ? ' (breached)' : ''}` },
      { header: 'TITLE', value: (t) => t.title },
    ]);
  });

  tickets
    .command('show')
    .description('one ticket, with its warranty decision')
    .argument('<id>', 'ticket id')
    .action(async (id: string, ...rest: unknown[]) => {
      const cmd = commandOf(rest);
      const t = await ctx.api(cmd).call<Ticket>('GET', `/tickets/${encodeURIComponent(id)}`);
      const out = ctx.out(cmd);
      if (out.json) return out.data(t);
      out.fields([
        ['id', t.id],
        ['title', t.title],
        ['device', t.deviceId],
        ['kind', t.part ? `${t.kind} (${t.part})` : t.kind],
        ['state', out.state(t.state)],
        ['severity', out.state(t.severity)],
        ['warranty', t.warranty],
        ['assignee', t.assignee],
        ['scheduled for', when(t.scheduledFor)],
        ['sla due', `${when(t.slaDueAt)}${t.slaBreached ? ' (breached)' : ''}`],
        ['opened', when(t.openedAt)],
        ['notes', t.notes],
        ['resolution', t.resolution],
      ]);
    });

  tickets
    .command('update')
    .description('change a ticket: state, schedule, assignee, notes, damage, resolution')
    .argument('<id>', 'ticket id')
    .option('--state <state>', 'open → scheduled → in_progress → resolved | cancelled')
    .option('--scheduled-for <iso>', 'visit time (ISO 8601), or "none"')
    .option('--assignee <name>', 'who works it, or "none"')
    .option('--notes <text>', 'notes')
    .option('--damage', 'damage found: the repair becomes billable')
    .option('--damage-note <text>', 'what the damage is')
    .option('--resolution <text>', 'how it was resolved')
    .option('--severity <severity>', 'info, warning, critical')
    .action(async (id: string, opts: Record<string, string | boolean | undefined>, ...rest: unknown[]) => {
      const cmd = commandOf(rest);
      const none = (v: unknown) => (v === 'none' ? null : v);
      const body = {
        state: opts.state,
        scheduledFor: none(opts.scheduledFor),
        assignee: none(opts.assignee),
        notes: opts.notes,
        damage: opts.damage === true ? true : undefined,
        damageNote: opts.damageNote,
        resolution: opts.resolution,
        severity: opts.severity,
      };
      if (Object.values(body).every((v) => v === undefined))
        throw new CliError(EXIT.usage, 'nothing to change: give --state, --assignee, --notes, …');
      const t = await ctx.api(cmd).call<Ticket>('PATCH', `/tickets/${encodeURIComponent(id)}`, { body });
      const out = ctx.out(cmd);
      if (out.json) return out.data(t);
      out.line(`ticket ${t.id} is ${out.state(t.state)}`);
    });
}
