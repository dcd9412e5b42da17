// inspections run|show.
import type { Command } from 'commander';
import { commandOf, type Ctx } from '../context.ts';
import { when } from '../output.ts';

interface Report {
  id: string;
  startedAt: string;
  completedAt: string;
  devices: number;
  counts: Record<string, number>;
  failing: string[];
  results?: { deviceId: string; verdict: string; checks: unknown }[];
}

export function registerInspections(program: Command, ctx: Ctx): void {
  const inspections = program.command('inspections').description('the periodic fleet inspection: run now, show');
  inspections
    .command('run')
    .description('inspect every terminal now (as INSPECTION_CRON does) and print the summary')
    .action(async (...args: unknown[]) => {
      const cmd = commandOf(args);
      const report = await ctx.api(cmd).call<Report>('POST', '/reports/inspections');
      show(ctx, cmd, report);
    });
  inspections
    .command('show')
    .description('the latest inspection report with per-terminal verdicts')
    .option('--verdict <verdict>', 'only pass, attention or fail')
    .option('--limit <n>', 'terminals listed at most', '1000')
    .action(async (opts: { verdict?: string; limit: string }, ...rest: unknown[]) => {
      const cmd = commandOf(rest);
      const report = await ctx
        .api(cmd)
        .call<Report>('GET', '/reports/inspections/latest', { query: { verdict: opts.verdict, limit: opts.limit } });
      show(ctx, cmd, report);
    });
}

function show(ctx: Ctx, cmd: Command, report: Report): void {
  const out = ctx.out(cmd);
  if (out.json) return out.data(report);
  const counts = Object.entries(report.counts)
    .map(([verdict, n]) => `${out.state(verdict)} ${n}`)
    .join(', ');
  out.line(`inspection ${report.id} at ${when(report.completedAt)}: ${report.devices} terminals — ${counts}`);
  if (report.results) {
    out.line();
    out.table(report.results, [
      { header: 'DEVICE', value: (r) => r.deviceId },
      { header: 'VERDICT', value: (r) => r.verdict },
      {
        header: 'FINDINGS',
        value: (r) =>
          (Array.isArray(r.checks) ? r.checks : [])
            .filter((c: { verdict?: string }) => c.verdict && c.verdict !== 'pass')
            .map((c: { name?: string; check?: string; verdict?: string }) => `${c.name ?? c.check}:${c.verdict}`),
      },
    ]);
  }
}
