// Commands from `fleet/{id}/cmd`, answered on `fleet/{id}/reply`. Commands may
// arrive twice (QoS 1, re-sends after a reconnect): a repeated id gets the same
// reply again and is not executed twice.
import { commandSchema, type Command } from '../protocol/index.ts';
import type { LogRing } from './logs.ts';
import type { ModelSpec } from './models.ts';
import type { OtaClient, Reply } from './ota.ts';
import type { TerminalProfile } from './profiles.ts';
import type { VitalsModel } from './vitals.ts';

export interface CommandHost {
  now(): number;
  deviceNow(): number;
  model: ModelSpec;
  profile: TerminalProfile;
  vitals: VitalsModel;
  logs: LogRing;
  ota: OtaClient;
  bootId(): string;
  /** Merges into the running configuration; returns the result or throws a message. */
  applyConfig(params: Record<string, unknown>): Record<string, unknown>;
  /** Reboots once the reply is out. */
  reboot(reason: string): void;
}

export interface Handled {
  commandId: string;
  type: string;
  reply: Reply;
  /** Runs after the reply is published (a reboot must not swallow its own reply). */
  after?: () => void;
  duplicate: boolean;
}

const REMEMBERED_COMMANDS = 64;

export class CommandHandler {
  private readonly recent = new Map<string, Handled>();

  constructor(private readonly host: CommandHost) {}

  handle(payload: Buffer): Handled | null {
    const raw = safeJson(payload.toString());
    const parsed = commandSchema.safeParse(raw);
    if (!parsed.success) {
      const id = (raw as { id?: unknown } | null)?.id;
      if (typeof id !== 'string' || id.length === 0 || id.length > 64) return null;
      return {
        commandId: id,
        type: 'unknown',
        duplicate: false,
        reply: {
          status: 'rejected',
          error: { code: 'bad_command', message: parsed.error.issues[0]?.message ?? 'bad command' },
        },
      };
    }
    const cmd = parsed.data;
    const seen = this.recent.get(cmd.id);
    if (seen) return { ...seen, after: undefined, duplicate: true };
    const handled = { commandId: cmd.id, type: cmd.type, duplicate: false, ...this.execute(cmd) };
    this.recent.set(cmd.id, handled);
    if (this.recent.size > REMEMBERED_COMMANDS) this.recent.delete(this.recent.keys().next().value!);
    this.host.logs.add(
      this.host.now(),
      handled.reply.status === 'ok' ? 'info' : 'warn',
      `command ${cmd.type} ${cmd.id}: ${handled.reply.status}`,
    );
    return handled;
  }

  private execute(cmd: Command): { reply: Reply; after?: () => void } {
    const { host } = this;
    if (cmd.type === 'update') return { reply: host.ota.handle(cmd.params, cmd.expiresAt) };
    // The terminal's own clock is wrong under clock-drift; expiry is judged on true time
    // so that drifting terminals still obey the server (the server measures the drift).
    if (cmd.expiresAt < host.now())
      return {
        reply: { status: 'rejected', error: { code: 'expired_command', message: 'command expired before it arrived' } },
      };
    switch (cmd.type) {
      case 'ping':
        return {
          reply: {
            status: 'ok',
            result: {
              pong: true,
              ts: host.deviceNow(),
              bootId: host.bootId(),
              uptimeS: Math.floor((host.vitals.simNow - host.vitals.bootAt) / 1000),
            },
          },
        };
      case 'reboot':
        return { reply: { status: 'ok', result: { rebooting: true } }, after: () => host.reboot('remote') };
      case 'diagnostics':
        return { reply: { status: 'ok', result: diagnostics(host) } };
      case 'fetch_logs': {
        const n = Math.min(200, Math.max(1, Number(cmd.params.lines ?? 50) || 50));
        return { reply: { status: 'ok', result: { lines: host.logs.lines(n) } } };
      }
      case 'set_config':
        try {
          return { reply: { status: 'ok', result: { config: host.applyConfig(cmd.params) } } };
        } catch (err) {
          return { reply: { status: 'rejected', error: { code: 'bad_params', message: (err as Error).message } } };
        }
    }
  }
}

type Check = { status: 'pass' | 'warn' | 'fail'; detail: string };

/** Self-test per component, from what the vitals model knows. */
export function diagnostics(host: CommandHost): Record<string, unknown> {
  const v = host.vitals;
  const components: Record<string, Check> = {};
  if (host.model.printer) {
    const s = v.printerState;
    components.printer = { status: s === 'ok' ? 'pass' : s === 'paper_low' ? 'warn' : 'fail', detail: s };
  }
  if (host.model.battery) {
    const h = v.batteryHealthPct;
    components.battery = {
      status: h >= 80 ? 'pass' : h >= 60 ? 'warn' : 'fail',
      detail: `health ${h.toFixed(1)}%, ${Math.floor(v.cycles)} cycles`,
    };
  }
  components.reader =
    host.profile.readerWear && v.readerUses > 20_000
      ? { status: 'warn', detail: `head worn after ${v.readerUses} reads` }
      : { status: 'pass', detail: `${v.readerUses} reads` };
  components.network = { status: host.profile.flakyNetwork ? 'warn' : 'pass', detail: v.netType };
  const free = v.storageFreePct();
  components.storage = { status: free > 15 ? 'pass' : free > 5 ? 'warn' : 'fail', detail: `${free.toFixed(1)}% free` };
  components.secureElement = v.tamper
    ? { status: 'fail', detail: 'tamper latch set' }
    : { status: 'pass', detail: 'keys present' };
  const statuses = Object.values(components).map((c) => c.status);
  const overall = statuses.includes('fail') ? 'fail' : statuses.includes('warn') ? 'warn' : 'pass';
  return { overall, components, ranAt: host.deviceNow() };
}

const safeJson = (text: string): unknown => {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
};
