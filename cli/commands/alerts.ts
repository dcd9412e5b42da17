// alerts list|ack|resolve.
import type { Command } from 'commander';
import { commandOf, type Ctx } from '../context.ts';
import { fetchPages, pageOptions, showPage, type PageOptions } from '../lists.ts';
import { when } from '../output.ts';

interface Alert {
  id: string;
  deviceId: string;
  ruleName: string;
  severity: string;
  state: string;
  message: string;
  count: number;
  openedAt: string;
}

const FILTERS = ['state', 'severity', 'rule', 'merchant', 'model', 'device'] as const;

export function registerAlerts(program: Command, ctx: Ctx): void {
  const alerts = program.command('alerts').description('health alerts: list, acknowledge, resolve');
  const list = alerts
    .command('list')
    .description('list alerts, newest first')
    .option('--state <state>', 'open, acknowledged, resolved')
    .option('--severity <severity>', 'info, warning, critical')
    .option('--rule <id>', 'health rule id')
    .option('--merchant <id>', 'merchant id')
    .option('--model <model>', 'terminal model')
    .option('--device <id>', 'device id');
  pageOptions(list).action(async (opts: PageOptions & Record<string, string>, ...rest: unknown[]) => {
    const cmd = commandOf(rest);
    const query = Object.fromEntries(FILTERS.map((f) => [f, opts[f]]));
    showPage(ctx.out(cmd), await fetchPages<Alert>(ctx.api(cmd), '/alerts', query, opts), [
      { header: 'ID', value: (a) => a.id },
      { header: 'DEVICE', value: (a) => a.deviceId },
      { header: 'SEVERITY', value: (a) => a.severity },
      { header: 'STATE', value: (a) => a.state },
      { header: 'RULE', value: (a) => a.ruleName },
      { header: 'COUNT', value: (a) => a.count },
      { header: 'OPENED', value: (a) => when(a.openedAt) },
      { header: 'MESSAGE', value: (a) => a.message },
    ]);
  });

  for (const [verb, description] of [
    ['ack', 'acknowledge an open alert (someone is on it)'],
    ['resolve', 'resolve an alert by hand'],
  ] as const) {
    alerts
      .command(verb)
      .description(description)
      .argument('<id>', 'alert id')
      .action(async (id: string, ...rest: unknown[]) => {
        const cmd = commandOf(rest);
        const alert = await ctx.api(cmd).call<Alert>('POST', `/alerts/${encodeURIComponent(id)}/${verb}`);
        const out = ctx.out(cmd);
        if (out.json) return out.data(alert);
        out.line(`alert ${alert.id} is ${out.state(alert.state)}`);
      });
  }
}
