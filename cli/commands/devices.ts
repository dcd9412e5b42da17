// devices list|show|command.
import type { Command } from 'commander';
import { commandOf, type Ctx } from '../context.ts';
import { fetchPages, pageOptions, showPage, type PageOptions } from '../lists.ts';
import { when } from '../output.ts';
import { collect, parseDuration, parsePairs } from '../units.ts';

interface Device {
  id: string;
  serial: string;
  model: string;
  status: string;
  firmware: string | null;
  merchantId: string | null;
  connected: boolean;
  lastSeenAt: string | null;
  [k: string]: unknown;
}

const FILTERS = ['status', 'model', 'merchant', 'tag', 'serial', 'firmware', 'presence', 'health'] as const;

export function registerDevices(program: Command, ctx: Ctx): void {
  const devices = program.command('devices').description('terminals: list, show, send commands');

  const list = devices.command('list').description('list terminals, with the filters of GET /devices');
  list
    .option('--status <status>', 'pending, active, suspended, in_repair, decommissioned')
    .option('--model <model>', 'e.g. T2')
    .option('--merchant <id>', 'merchant id')
    .option('--tag <tag>', 'a tag the terminal carries')
    .option('--serial <serial>', 'serial number')
    .option('--firmware <range>', "semver range, e.g. '>=2.0.0 <3.0.0'")
    .option('--presence <list>', 'online,late,offline,missing,unknown')
    .option('--health <list>', 'ok,info,warning,critical');
  pageOptions(list).action(async (opts: PageOptions & Record<string, string>, ...rest: unknown[]) => {
    const cmd = commandOf(rest);
    const query = Object.fromEntries(FILTERS.map((f) => [f, opts[f]]));
    const page = await fetchPages<Device>(ctx.api(cmd), '/devices', query, opts);
    const out = ctx.out(cmd);
    showPage(out, page, [
      { header: 'ID', value: (d) => d.id },
      { header: 'SERIAL', value: (d) => d.serial },
      { header: 'MODEL', value: (d) => d.model },
      { header: 'STATUS', value: (d) => d.status },
      { header: 'FIRMWARE', value: (d) => d.firmware },
      { header: 'CONNECTED', value: (d) => (d.connected ? 'yes' : 'no') },
      { header: 'LAST SEEN', value: (d) => when(d.lastSeenAt) },
    ]);
  });

  devices
    .command('show')
    .description('one terminal, with its health (presence, vitals, open alerts)')
    .argument('<id>', 'device id')
    .action(async (id: string, ...rest: unknown[]) => {
      const cmd = commandOf(rest);
      const api = ctx.api(cmd);
      const enc = encodeURIComponent(id);
      const device = await api.call<Device>('GET', `/devices/${enc}`);
      const health = await api.call<Record<string, unknown>>('GET', `/devices/${enc}/health`);
      const out = ctx.out(cmd);
      if (out.json) return out.data({ ...device, health });
      out.fields([
        ['id', device.id],
        ['serial', device.serial],
        ['model', device.model],
        ['status', out.state(device.status)],
        ['merchant', device.merchantId],
        ['firmware', device.firmware],
        ['apps', device.apps],
        ['tags', device.tags],
        ['connected', device.connected ? 'yes' : 'no'],
        ['presence', typeof health.presence === 'string' ? out.state(health.presence) : health.presence],
        ['health', typeof health.health === 'string' ? out.state(health.health) : health.health],
        ['last seen', when(device.lastSeenAt)],
        ['enrolled', when(device.createdAt)],
      ]);
    });

  devices
    .command('command')
    .description('send a command (stored first, delivered when the terminal is connected)')
    .argument('<id>', 'device id')
    .argument('<type>', 'reboot, ping, diagnostics, fetch_logs, set_config')
    .option('--param <key=value>', 'a parameter (repeatable; JSON values allowed)', collect, [])
    .option('--ttl <duration>', 'expire if not answered within this long, e.g. 10m')
    .action(async (id: string, type: string, opts: { param: string[]; ttl?: string }, ...rest: unknown[]) => {
      const cmd = commandOf(rest);
      const body = {
        type,
        params: parsePairs(opts.param, '--param'),
        ttlSeconds: opts.ttl ? Math.round(parseDuration(opts.ttl, '--ttl') / 1000) : undefined,
      };
      const created = await ctx
        .api(cmd)
        .call<{ id: string; state: string }>('POST', `/devices/${encodeURIComponent(id)}/commands`, { body });
      const out = ctx.out(cmd);
      if (out.json) return out.data(created);
      out.line(`command ${created.id} ${out.state(created.state)}`);
    });
}
