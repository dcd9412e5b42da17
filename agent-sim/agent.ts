// One simulated terminal: identity, MQTT session with last will, jittered
// reconnects, heartbeats that follow the retained config, events, commands and
// OTA. Time comes from the injected clock only.
import type { KeyObject } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import {
  deviceConfigSchema,
  PROTOCOL_VERSION,
  topicFor,
  type EnrollResponse,
  type Manifest,
} from '../protocol/index.ts';
import type { Clock, TimerHandle } from './clock.ts';
import { CommandHandler } from './commands.ts';
import { Connection } from './connection.ts';
import type { FleetCounters, Limiter } from './counters.ts';
import { loadIdentity, saveIdentity, type Identity } from './identity.ts';
import { LogRing } from './logs.ts';
import type { SimMerchant } from './merchants.ts';
import { modelSpec, type ModelSpec } from './models.ts';
import { OtaClient, type OtaStatus } from './ota.ts';
import type { TerminalPlan } from './plan.ts';
import { between, chance, jitter, streamRng, type Rng } from './rng.ts';
import { transition, type AgentState } from './states.ts';
import { VitalsModel, type VitalsEvent } from './vitals.ts';

export interface AgentOptions {
  plan: TerminalPlan;
  merchant: SimMerchant;
  seed: number;
  clock: Clock;
  counters: FleetCounters;
  /** Factory defaults: the version it ships with and its first heartbeat interval. */
  firmware: string;
  apps: Record<string, string>;
  heartbeatS: number;
  /** Simulated seconds per clock second for the vitals model. */
  speed: number;
  server?: string;
  enrollToken?: string;
  /** Shared by a fleet so thousands of terminals do not enrol at once. */
  enrollLimiter?: Limiter;
  /** Given credentials instead of enrolment. */
  credentials?: Identity;
  stateDir?: string | null;
  publicKey: KeyObject | null;
  bootMs?: number;
  installMs?: number;
  downloadRetryMs?: number;
}

export class TerminalAgent {
  readonly serial: string;
  readonly index: number;
  readonly model: ModelSpec;
  readonly vitals: VitalsModel;
  readonly logs = new LogRing();
  readonly ota: OtaClient;
  identity: Identity | null = null;
  bootId = '';
  seq = 0;
  rebootReason = 'power_on';
  heartbeatIntervalS: number;
  configRevision = -1;
  config: Record<string, unknown> = {};
  lastOta: OtaStatus | null = null;
  lastError: { code: string; message: string } | null = null;
  private current: AgentState = 'idle';
  private readonly rng: Rng;
  private readonly conn: Connection;
  private readonly commands: CommandHandler;
  private hbTimer: TimerHandle | undefined;
  private faultTimer: TimerHandle | undefined;
  private lastAdvance: number;
  private readonly clockStart: number;
  /** Who waits for the terminal to be back online after a reboot (an install, a reboot command). */
  private bootWaiters: (() => void)[] = [];

  constructor(readonly opts: AgentOptions) {
    const { plan, clock } = opts;
    this.serial = plan.serial;
    this.index = plan.index;
    this.model = modelSpec(plan.model);
    this.rng = streamRng(opts.seed, 'agent', plan.index);
    this.clockStart = this.lastAdvance = clock.now();
    this.vitals = new VitalsModel({
      model: this.model,
      merchant: opts.merchant,
      profile: plan.profile,
      rng: streamRng(opts.seed, 'vitals', plan.index),
      startMs: clock.now(),
    });
    this.heartbeatIntervalS = opts.heartbeatS;
    this.ota = new OtaClient({
      clock,
      rng: streamRng(opts.seed, 'ota', plan.index),
      model: this.model.name,
      profile: plan.profile,
      publicKey: opts.publicKey,
      installed: () => ({ firmware: this.firmware, apps: this.apps }),
      report: (status) => this.reportOta(status),
      busy: () => plan.profile.busyRate !== null && chance(this.rng, plan.profile.busyRate),
      installAndReboot: (component, version, manifest) => this.install(component, version, manifest),
      installMs: opts.installMs,
      downloadRetryMs: opts.downloadRetryMs,
    });
    this.commands = new CommandHandler({
      now: () => clock.now(),
      deviceNow: () => this.deviceNow(),
      model: this.model,
      profile: plan.profile,
      vitals: this.vitals,
      logs: this.logs,
      ota: this.ota,
      bootId: () => this.bootId,
      applyConfig: (p) => this.applyConfig(p, false),
      reboot: (reason) => this.reboot(reason),
    });
    this.conn = new Connection(
      {
        clock,
        rng: streamRng(opts.seed, 'link', plan.index),
        counters: opts.counters,
        server: opts.server,
        enrollToken: opts.enrollToken,
        enrollLimiter: opts.enrollLimiter,
        givenCredentials: Boolean(opts.credentials),
        identity: () => this.identity,
        enrollRequest: () => ({
          serial: this.serial,
          model: this.model.name,
          firmware: this.firmware,
          apps: this.apps,
        }),
      },
      {
        onEnrolling: () => this.moveTo('enrolling'),
        onEnrolled: (answer) => this.onEnrolled(answer),
        onConnecting: () => this.moveTo('connecting'),
        onConnected: () => this.onConnected(),
        onClosed: () => this.onClosed(),
        onMessage: (topic, payload) => this.onMessage(topic, payload),
        onError: (code, message, fatal) => {
          this.fail(code, message);
          if (fatal) this.moveTo('failed');
        },
      },
    );
  }

  /** Where the terminal is; it changes only along the table in states.ts. */
  get state(): AgentState {
    return this.current;
  }

  get deviceId(): string | undefined {
    return this.identity?.deviceId;
  }
  get firmware(): string {
    return this.identity?.firmware ?? this.opts.firmware;
  }
  get apps(): Record<string, string> {
    return this.identity?.apps ?? this.opts.apps;
  }
  get profileNames(): string[] {
    return this.opts.plan.profile.names;
  }
  get connected(): boolean {
    return this.state === 'online';
  }
  get client(): MqttClient | null {
    return this.conn.client;
  }

  /** The terminal's own clock: true time unless the clock-drift profile bends it. */
  deviceNow(): number {
    const { clockOffsetMs, clockDriftRate } = this.opts.plan.profile;
    const now = this.opts.clock.now();
    return Math.max(0, Math.round(now + clockOffsetMs + (now - this.clockStart) * clockDriftRate));
  }

  async start(): Promise<void> {
    this.boot('power_on');
    const { stateDir, credentials } = this.opts;
    this.identity = credentials ?? (stateDir ? await loadIdentity(stateDir, this.serial) : null);
    if (this.identity) this.heartbeatIntervalS = this.identity.heartbeatIntervalS;
    this.conn.connect();
  }

  async stop(): Promise<void> {
    this.moveTo('stopped');
    this.clearTimers();
    for (const resolve of this.bootWaiters.splice(0)) resolve();
    await this.conn.close();
  }

  /** Saves what must survive a simulator restart: credentials and installed versions. */
  async persist(): Promise<void> {
    if (this.opts.stateDir && this.identity && !this.opts.credentials)
      await saveIdentity(this.opts.stateDir, this.identity);
  }

  private fail(code: string, message: string): void {
    this.lastError = { code, message };
    this.opts.counters.error(code);
    this.logs.add(this.opts.clock.now(), 'error', `${code}: ${message}`);
  }

  /**
   * Restart: drop the session (abruptly unless the reboot was asked for), new
   * bootId, reconnect. Resolves when the terminal is online again; a reboot
   * asked for while one is under way joins it. A terminal that is stopped, or
   * was never started, has nothing to restart.
   */
  reboot(reason: string): Promise<void> {
    if (this.state === 'stopped' || this.state === 'idle') return Promise.resolve();
    const back = new Promise<void>((resolve) => {
      this.bootWaiters.push(resolve);
    });
    if (this.state === 'rebooting') return back;
    this.moveTo('rebooting');
    this.clearTimers();
    this.opts.counters.reboots++;
    const graceful = reason === 'remote' || reason === 'update';
    void this.conn.drop(graceful).then(() => {
      this.opts.clock.setTimeout(
        () => {
          if (this.state !== 'rebooting') return;
          this.boot(reason);
          this.conn.connect();
        },
        jitter(this.rng, this.opts.bootMs ?? 5_000, 0.4),
      );
    });
    return back;
  }

  /** Publishes a heartbeat now (tests, and right after every connect). */
  heartbeatNow(): void {
    if (this.state !== 'online') return;
    this.clock().clearTimeout(this.hbTimer);
    this.tick();
  }

  dropConnection(): void {
    this.conn.dropNetwork();
  }

  /** Takes the terminal's network away, or gives it back. */
  setNetwork(up: boolean): void {
    this.conn.setNetwork(up);
  }

  private boot(reason: string): void {
    this.bootId = `${this.opts.clock.now().toString(36)}-${Math.floor(this.rng() * 2 ** 32)
      .toString(16)
      .padStart(8, '0')}`;
    this.seq = 0;
    this.rebootReason = reason;
    this.vitals.onBoot();
    this.logs.add(this.opts.clock.now(), 'info', `boot ${this.bootId} firmware ${this.firmware} reason ${reason}`);
  }

  private moveTo(to: AgentState): void {
    this.current = transition(this.current, to, `terminal ${this.serial}`);
  }

  /** Takes the identity the server just gave, keeping the versions it runs. */
  private onEnrolled(answer: EnrollResponse): Promise<void> {
    const previous = this.identity;
    this.identity = {
      serial: this.serial,
      deviceId: answer.deviceId,
      mqtt: answer.mqtt,
      heartbeatIntervalS: answer.heartbeatIntervalS,
      firmware: previous?.firmware ?? this.opts.firmware,
      apps: previous?.apps ?? this.opts.apps,
    };
    this.heartbeatIntervalS = answer.heartbeatIntervalS;
    return this.persist();
  }

  private onConnected(): void {
    this.moveTo('online');
    // Those who waited for this boot; a reboot the first heartbeat sets off (a flat battery) has its own.
    const booted = this.bootWaiters.splice(0);
    // One reboot event per boot, on its first connect: why it restarted and into what.
    if (this.seq === 0 && this.rebootReason !== 'power_on') {
      const severity = ['remote', 'update'].includes(this.rebootReason) ? 'info' : 'warning';
      this.event({
        type: 'reboot',
        severity,
        data: { reason: this.rebootReason, bootId: this.bootId, firmware: this.firmware },
      });
    }
    this.tick();
    this.scheduleFaults();
    for (const resolve of booted) resolve();
  }

  private onClosed(): void {
    this.moveTo('offline');
    this.clock().clearTimeout(this.hbTimer);
  }

  private onMessage(topic: string, payload: Buffer): void {
    if (topic.endsWith('/config')) {
      const parsed = deviceConfigSchema.safeParse(safeJson(payload));
      if (parsed.success && parsed.data.revision >= this.configRevision) {
        this.configRevision = parsed.data.revision;
        this.applyConfig(parsed.data, true);
      }
      return;
    }
    const handled = this.commands.handle(payload);
    if (!handled) return;
    this.opts.counters.command(handled.type, handled.reply.status, handled.duplicate);
    this.publish('reply', { v: PROTOCOL_VERSION, commandId: handled.commandId, ...handled.reply }, true, handled.after);
  }

  private applyConfig(params: Record<string, unknown>, fromRetained: boolean): Record<string, unknown> {
    const interval = params.heartbeatIntervalS;
    if (
      interval !== undefined &&
      (!Number.isInteger(interval) || (interval as number) < 5 || (interval as number) > 86_400)
    ) {
      throw new Error('heartbeatIntervalS must be an integer from 5 to 86400');
    }
    this.config = { ...this.config, ...params };
    if (typeof interval === 'number' && interval !== this.heartbeatIntervalS) {
      this.heartbeatIntervalS = interval;
      if (this.state === 'online') this.scheduleHeartbeat();
    }
    this.logs.add(
      this.opts.clock.now(),
      'info',
      `config ${fromRetained ? `revision ${String(params.revision)}` : 'set'}: heartbeat ${this.heartbeatIntervalS}s`,
    );
    return { ...this.config, heartbeatIntervalS: this.heartbeatIntervalS };
  }

  private tick(): void {
    const now = this.opts.clock.now();
    const rebootReason = this.vitals.advance((now - this.lastAdvance) * this.opts.speed);
    this.lastAdvance = now;
    for (const e of this.vitals.drainEvents()) this.event(e);
    if (rebootReason) {
      void this.reboot(rebootReason);
      return;
    }
    const vitals = this.vitals.snapshot();
    vitals.sys = { ...vitals.sys, rebootReason: this.rebootReason };
    this.publish('heartbeat', {
      v: PROTOCOL_VERSION,
      seq: this.seq++,
      bootId: this.bootId,
      ts: this.deviceNow(),
      firmware: this.firmware,
      apps: this.apps,
      ...vitals,
    });
    this.opts.counters.heartbeats++;
    this.scheduleHeartbeat();
  }

  private scheduleHeartbeat(): void {
    this.clock().clearTimeout(this.hbTimer);
    this.hbTimer = this.clock().setTimeout(() => this.tick(), jitter(this.rng, this.heartbeatIntervalS * 1000, 0.1));
  }

  /** Profile faults on the clock: network drops, crash loops after a bad firmware or a reboot-loop. */
  private scheduleFaults(): void {
    const { profile } = this.opts.plan;
    this.clock().clearTimeout(this.faultTimer);
    const crashing = profile.rebootLoop || profile.badFirmware.includes(this.firmware);
    if (crashing) {
      this.faultTimer = this.clock().setTimeout(
        () => {
          this.event({
            type: 'crash',
            severity: 'critical',
            data: { firmware: this.firmware, process: 'payment-app' },
          });
          void this.reboot('crash');
        },
        between(this.rng, 30_000, 120_000),
      );
    } else if (profile.flakyNetwork) {
      this.faultTimer = this.clock().setTimeout(() => this.conn.dropNetwork(), -Math.log(1 - this.rng()) * 8 * 60_000);
    }
  }

  private event(e: VitalsEvent): void {
    this.opts.counters.events++;
    this.logs.add(this.opts.clock.now(), e.severity === 'info' ? 'info' : 'warn', `event ${e.type}`);
    this.publish('event', { v: PROTOCOL_VERSION, ts: this.deviceNow(), ...e });
  }

  private reportOta(status: OtaStatus): void {
    this.lastOta = status;
    this.opts.counters.ota(status.state, status.error?.code);
    this.logs.add(
      this.opts.clock.now(),
      status.error ? 'warn' : 'info',
      `ota ${status.jobId} ${status.state}${status.error ? ` ${status.error.code}` : ''}`,
    );
    this.publish('ota', { v: PROTOCOL_VERSION, ...status });
  }

  private async install(component: string, version: string, manifest: Manifest): Promise<void> {
    if (!this.identity) throw new Error('not enrolled');
    if (component === 'firmware') {
      this.identity = { ...this.identity, firmware: version, patchLevel: manifest.createdAt.slice(0, 10) };
      this.vitals.patchLevel = manifest.createdAt.slice(0, 10);
    } else {
      this.identity = { ...this.identity, apps: { ...this.identity.apps, [component.slice(4)]: version } };
    }
    await this.persist();
    await this.reboot('update');
  }

  publish(kind: 'heartbeat' | 'event' | 'ota' | 'reply', body: unknown, send = true, after?: () => void): void {
    const client = this.conn.client;
    if (!send || !client || !this.identity) return;
    client.publish(
      topicFor(this.identity.deviceId, kind),
      JSON.stringify(body),
      { qos: 1 },
      after ? () => after() : undefined,
    );
  }

  private clock(): Clock {
    return this.opts.clock;
  }

  private clearTimers(): void {
    this.clock().clearTimeout(this.hbTimer);
    this.clock().clearTimeout(this.faultTimer);
  }
}

const safeJson = (payload: Buffer): unknown => {
  try {
    return JSON.parse(payload.toString());
  } catch {
    return null;
  }
};
