// rollouts list|show|plan|create|start|pause|resume|cancel|rollback|watch.
import type { Command } from 'commander';
import type { ApiClient } from '../client.ts';
import { commandOf, type Ctx } from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { fetchPages, pageOptions, showPage, type PageOptions } from '../lists.ts';
import { when } from '../output.ts';
import { waveDone, waveProgress, type WaveView } from '../progress.ts';
import { collect, parseDuration, parseIntOption, parseList } from '../units.ts';

interface Rollout {
  id: string;
  name: string;
  state: string;
  component: string;
  version: string;
  currentWave: number;
  reason: string | null;
  waves: WaveView[];
  counts: Record<string, number>;
  total: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

const FINAL = ['completed', 'failed', 'cancelled'];

interface SpecOptions {
  name?: string;
  artifact: string;
  cohort: string;
  waves?: string;
  canary: string[];
  soak?: string;
  onFailure?: string;
  successThreshold?: string;
  failureThreshold?: string;
  minFinished?: string;
  retries?: string;
  rate?: string;
  maxInFlight?: string;
  window?: string;
  windowMinutes?: string;
  outsideTradingHours?: boolean;
  startAt?: string;
  allowDowngrade?: boolean;
  start?: boolean;
}

function specOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--artifact <id>', 'the artifact to roll out')
    .requiredOption('--cohort <id>', 'the cohort of terminals')
    .option('--name <name>', 'a name (default: component and version)')
    .option('--waves <percents>', 'cumulative wave sizes in %, e.g. 10,50,100', '100')
    .option('--canary <deviceId>', 'a canary terminal, updated first (repeatable)', collect, [])
    .option('--soak <duration>', 'time a wave must stay healthy before the next, e.g. 30m')
    .option('--on-failure <action>', 'pause or rollback')
    .option('--success-threshold <ratio>', 'share of a wave that must succeed (0-1)')
    .option('--failure-threshold <ratio>', 'share of failures that stops the rollout (0-1)')
    .option('--min-finished <n>', 'terminals that must finish before the thresholds are judged')
    .option('--retries <n>', 'retries of a transient failure per terminal')
    .option('--rate <n>', 'updates sent per minute at most')
    .option('--max-in-flight <n>', 'terminals updating at once at most')
    .option('--window <cron>', 'maintenance window start (cron), with --window-minutes')
    .option('--window-minutes <n>', 'length of the maintenance window')
    .option('--outside-trading-hours', "only outside each merchant's trading hours")
    .option('--start-at <iso>', 'start later (ISO 8601)')
    .option('--allow-downgrade', 'allow a lower version than installed');
}

function specBody(o: SpecOptions): Record<string, unknown> {
  const num = (v: string | undefined, flag: string) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new CliError(EXIT.usage, `${flag} must be a number`);
    return n;
  };
  const waves = parseList(o.waves)?.map((p) => ({ percent: num(p, '--waves') }));
  if (o.window && !o.windowMinutes) throw new CliError(EXIT.usage, '--window needs --window-minutes');
  return {
    name: o.name ?? `rollout of ${o.artifact}`,
    artifactId: o.artifact,
    cohortId: o.cohort,
    waves,
    canaryDeviceIds: o.canary.length ? o.canary : undefined,
    soakMinutes: o.soak === undefined ? undefined : parseDuration(o.soak, '--soak') / 60_000,
    onFailure: o.onFailure,
    successThreshold: num(o.successThreshold, '--success-threshold'),
    failureThreshold: num(o.failureThreshold, '--failure-threshold'),
    minFinished: o.minFinished === undefined ? undefined : parseIntOption(o.minFinished, '--min-finished', 1, 100_000),
    retries: o.retries === undefined ? undefined : parseIntOption(o.retries, '--retries', 0, 20),
    ratePerMinute: o.rate === undefined ? undefined : parseIntOption(o.rate, '--rate', 1, 1_000_000),
    maxInFlight:
      o.maxInFlight === undefined ? undefined : parseIntOption(o.maxInFlight, '--max-in-flight', 1, 1_000_000),
    window: o.window
      ? {
          cron: o.window,
          durationMinutes: parseIntOption(o.windowMinutes!, '--window-minutes', 1, 1440),
          outsideTradingHours: o.outsideTradingHours === true,
        }
      : undefined,
    startAt: o.startAt,
    allowDowngrade: o.allowDowngrade === true ? true : undefined,
  };
}

function summary(ctx: Ctx, cmd: Command, r: Rollout): void {
  const out = ctx.out(cmd);
  if (out.json) return out.data(r);
  out.fields([
    ['id', r.id],
    ['name', r.name],
    ['state', out.state(r.state)],
    ['update', `${r.component} ${r.version}`],
    ['terminals', r.total],
    ['reason', r.reason],
    ['started', when(r.startedAt)],
    ['finished', when(r.finishedAt)],
  ]);
  out.line();
  out.table(r.waves, [
    { header: 'WAVE', value: (w) => w.index + 1 },
    { header: 'PERCENT', value: (w) => `${w.percent}%` },
    { header: 'STATE', value: (w) => w.state },
    { header: 'DONE', value: (w) => `${waveDone(w)}/${w.size}` },
    { header: 'COUNTS', value: (w) => Object.entries(w.counts).map(([s, n]) => `${s} ${n}`) },
  ]);
}

export function registerRollouts(program: Command, ctx: Ctx): void {
  const rollouts = program.command('rollouts').description('staged updates: plan, create, steer, watch');

  const list = rollouts
    .command('list')
    .description('list rollouts, newest first')
    .option('--state <state>', 'e.g. running');
  pageOptions(list).action(async (opts: PageOptions & { state?: string }, ...rest: unknown[]) => {
    const cmd = commandOf(rest);
    showPage(ctx.out(cmd), await fetchPages<Rollout>(ctx.api(cmd), '/rollouts', { state: opts.state }, opts), [
      { header: 'ID', value: (r) => r.id },
      { header: 'NAME', value: (r) => r.name },
      { header: 'STATE', value: (r) => r.state },
      { header: 'UPDATE', value: (r) => `${r.component} ${r.version}` },
      { header: 'TERMINALS', value: (r) => r.total },
      { header: 'CREATED', value: (r) => when(r.createdAt) },
    ]);
  });

  rollouts
    .command('show')
    .description('a rollout with its waves and counts')
    .argument('<id>', 'rollout id')
    .action(async (id: string, ...rest: unknown[]) => {
      const cmd = commandOf(rest);
      summary(ctx, cmd, await ctx.api(cmd).call<Rollout>('GET', `/rollouts/${encodeURIComponent(id)}`));
    });

  specOptions(
    rollouts.command('plan').description('dry run: eligibility, waves, windows, estimate (changes nothing)'),
  ).action(async (opts: SpecOptions, ...rest: unknown[]) => {
    const cmd = commandOf(rest);
    const plan = await ctx.api(cmd).call<Record<string, unknown>>('POST', '/rollouts/plan', { body: specBody(opts) });
    const out = ctx.out(cmd);
    if (out.json) return out.data(plan);
    out.fields(Object.entries(plan));
  });

  specOptions(
    rollouts.command('create').description('create a rollout; it starts at once unless --no-start or --start-at'),
  )
    .option('--no-start', 'create it as a draft; start it later with rollouts start')
    .action(async (opts: SpecOptions, ...rest: unknown[]) => {
      const cmd = commandOf(rest);
      const body = { ...specBody(opts), start: opts.start === false ? false : undefined };
      summary(ctx, cmd, await ctx.api(cmd).call<Rollout>('POST', '/rollouts', { body }));
    });

  for (const [verb, description] of [
    ['start', 'start a draft or scheduled rollout'],
    ['pause', 'pause: no new updates are sent'],
    ['resume', 'resume a paused rollout'],
    ['cancel', 'cancel: no new updates; terminals not yet updated stay as they are'],
    ['rollback', 'roll back: new rollouts to each terminal’s previous version'],
  ] as const) {
    rollouts
      .command(verb)
      .description(description)
      .argument('<id>', 'rollout id')
      .action(async (id: string, ...rest: unknown[]) => {
        const cmd = commandOf(rest);
        const result = await ctx
          .api(cmd)
          .call<Rollout | Record<string, unknown>>('POST', `/rollouts/${encodeURIComponent(id)}/${verb}`);
        const out = ctx.out(cmd);
        if (out.json) return out.data(result);
        if ('state' in result && 'waves' in result)
          out.line(`rollout ${result.id} is ${out.state(String(result.state))}`);
        else out.fields(Object.entries(result));
      });
  }

  rollouts
    .command('watch')
    .description('live per-wave progress until the rollout ends; exit 0 when completed, 1 when failed or cancelled')
    .argument('<id>', 'rollout id')
    .option('--interval <duration>', 'how often to ask the server', '2s')
    .option('--timeout <duration>', 'give up (exit 1) after this long')
    .addHelpText(
      'after',
      '\nIn CI: posfleet rollouts watch $ID || exit 1 — fails the step unless the rollout completes.',
    )
    .action(async (id: string, opts: { interval: string; timeout?: string }, ...rest: unknown[]) => {
      const cmd = commandOf(rest);
      ctx.exitCode = await watch(ctx, cmd, ctx.api(cmd), id, {
        intervalMs: parseDuration(opts.interval, '--interval'),
        timeoutMs: opts.timeout ? parseDuration(opts.timeout, '--timeout') : undefined,
      });
    });
}

async function watch(
  ctx: Ctx,
  cmd: Command,
  api: ApiClient,
  id: string,
  o: { intervalMs: number; timeoutMs?: number },
): Promise<number> {
  const out = ctx.out(cmd);
  const path = `/rollouts/${encodeURIComponent(id)}`;
  let r = await api.call<Rollout>('GET', path);
  const bars = waveProgress(ctx.io, `rollout ${r.id}`, out.colour);
  let waited = 0;
  try {
    for (;;) {
      bars.update(r.state, r.waves);
      if (FINAL.includes(r.state)) break;
      if (o.timeoutMs !== undefined && waited >= o.timeoutMs) {
        bars.stop();
        throw new CliError(EXIT.failed, `rollout ${r.id} still ${r.state} after ${o.timeoutMs / 1000} s`);
      }
      await ctx.io.sleep(o.intervalMs);
      waited += o.intervalMs;
      r = await api.call<Rollout>('GET', path);
    }
  } finally {
    bars.stop();
  }
  if (out.json) out.data(r);
  else
    out.line(
      `rollout ${r.id} ${out.state(r.state)}: ${Object.entries(r.counts)
        .filter(([, n]) => n > 0)
        .map(([s, n]) => `${s} ${n}`)
        .join(', ')}${r.reason ? ` (${r.reason})` : ''}`,
    );
  return r.state === 'completed' ? EXIT.ok : EXIT.failed;
}
