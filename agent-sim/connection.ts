// The terminal's link to posfleet: enrolment when it has no identity, then one
// MQTT 3.1.1 session with its last will on `presence`, and reconnects with
// capped, jittered exponential backoff (house rule 7) so a server restart does
// not bring every terminal back in the same second.
import mqtt, { type MqttClient } from 'mqtt';
import { PROTOCOL_VERSION, topicFor } from '../protocol/index.ts';
import type { TerminalAgent } from './agent.ts';
import type { TimerHandle } from './clock.ts';
import { enroll, HttpError } from './identity.ts';
import { between, streamRng, type Rng } from './rng.ts';

export interface LinkEvents {
  onOnline(): void;
  onOffline(): void;
  onMessage(topic: string, payload: Buffer): void;
}

const BACKOFF_BASE_MS = 1_000;
const BACKOFF_MAX_MS = 60_000;
/** How long a graceful shutdown waits for the acks of reports in flight before the terminal powers off anyway. */
const SHUTDOWN_MS = 5_000;

export class Connection {
  client: MqttClient | null = null;
  private attempt = 0;
  private retryTimer: TimerHandle | undefined;
  private needsEnroll = false;
  private networkUp = true;
  /** Down for a reboot: no retry reconnects until the boot calls connect(). */
  private down = false;
  /** The client a reboot let go of, while it still ends. */
  private leaving: MqttClient | null = null;
  private readonly rng: Rng;

  constructor(
    private readonly agent: TerminalAgent,
    private readonly ev: LinkEvents,
  ) {
    this.rng = streamRng(agent.opts.seed, 'link', agent.index);
  }

  connect(): void {
    this.down = false;
    void this.attemptConnect();
  }

  private async attemptConnect(): Promise<void> {
    const { agent } = this;
    if (agent.state === 'stopped' || agent.state === 'failed' || this.down) return;
    if (!this.networkUp) return this.retryLater();
    if (!agent.identity || this.needsEnroll) {
      agent.state = 'enrolling';
      if (!(await this.enroll())) return;
      if (this.down) return; // a reboot began while enrolling; its boot connects
    }
    agent.state = 'connecting';
    if (!this.client) this.client = this.createClient();
    else if (this.client.disconnected) this.client.reconnect();
    // Keep the stores across a network drop, so QoS 1 reports made while offline still go out.
    else this.client.reconnect({ incomingStore: this.client.incomingStore, outgoingStore: this.client.outgoingStore });
  }

  private async enroll(): Promise<boolean> {
    const { agent } = this;
    const { server, enrollToken } = agent.opts;
    if (!server || !enrollToken) {
      agent.fail('no_credentials', 'no identity, and no server and enrolment token to get one');
      agent.state = 'failed';
      return false;
    }
    const body = { serial: agent.serial, model: agent.model.name, firmware: agent.firmware, apps: agent.apps };
    try {
      const task = () => enroll(server, enrollToken, body);
      const limiter = agent.opts.enrollLimiter;
      const res = await (limiter ? limiter.run(task) : task());
      const previous = agent.identity;
      agent.identity = {
        serial: agent.serial,
        deviceId: res.deviceId,
        mqtt: res.mqtt,
        heartbeatIntervalS: res.heartbeatIntervalS,
        firmware: previous?.firmware ?? agent.opts.firmware,
        apps: previous?.apps ?? agent.opts.apps,
      };
      agent.heartbeatIntervalS = res.heartbeatIntervalS;
      this.needsEnroll = false;
      agent.opts.counters.enrolled++;
      await agent.persist();
      return true;
    } catch (err) {
      const retryable = !(err instanceof HttpError) || err.retryable;
      agent.fail(err instanceof HttpError ? `enroll_${err.code}` : 'enroll_failed', (err as Error).message);
      if (!retryable) {
        agent.state = 'failed';
        return false;
      }
      this.retryLater();
      return false;
    }
  }

  private createClient(): MqttClient {
    const id = this.agent.identity!;
    const client = mqtt.connect(id.mqtt.url, {
      clientId: id.mqtt.clientId,
      username: id.mqtt.username,
      password: id.mqtt.password,
      protocolVersion: 4,
      clean: true,
      keepalive: 60,
      reconnectPeriod: 0,
      connectTimeout: 20_000,
      resubscribe: false,
      will: {
        topic: topicFor(id.deviceId, 'presence'),
        payload: Buffer.from(JSON.stringify({ v: PROTOCOL_VERSION, state: 'offline' })),
        qos: 1,
        retain: false,
      },
    });
    // A client a reboot has let go of may still call back (a late SUBACK, its
    // close): it no longer speaks for the terminal.
    const current = () => this.client === client;
    client.on('connect', () => {
      if (!current()) return;
      this.attempt = 0;
      this.agent.opts.counters.connects++;
      const topics = [topicFor(id.deviceId, 'cmd'), topicFor(id.deviceId, 'config')];
      client.subscribe(topics, { qos: 1 }, () => {
        if (current()) this.ev.onOnline();
      });
    });
    client.on('message', (topic, payload) => {
      if (current()) this.ev.onMessage(topic, payload);
    });
    client.on('error', (err) => {
      if (current()) this.onError(err as Error & { code?: number | string });
    });
    client.on('close', () => {
      if (current()) this.onClose();
    });
    return client;
  }

  private onError(err: Error & { code?: number | string }): void {
    // CONNACK 4/5: the server no longer knows these credentials; enrol again if we can.
    if (err.code === 4 || err.code === 5) {
      this.needsEnroll = Boolean(this.agent.opts.enrollToken && !this.agent.opts.credentials);
      this.agent.fail('mqtt_refused', err.message);
    } else {
      this.agent.fail('mqtt_error', err.message);
    }
  }

  private onClose(): void {
    const wasOnline = this.agent.state === 'online';
    if (wasOnline) this.agent.opts.counters.disconnects++;
    this.ev.onOffline();
    if (this.agent.state === 'stopped' || this.agent.state === 'rebooting' || this.agent.state === 'failed') return;
    this.retryLater();
  }

  private retryLater(): void {
    if (this.down) return;
    const { clock } = this.agent.opts;
    clock.clearTimeout(this.retryTimer);
    const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this.attempt++);
    this.retryTimer = clock.setTimeout(() => this.connect(), Math.round(between(this.rng, cap / 2, cap)));
  }

  /** A broken link without DISCONNECT: the broker publishes the last will. */
  dropNetwork(): void {
    this.client?.stream?.destroy();
  }

  /** Takes the network away (or gives it back) until told otherwise. */
  setNetwork(up: boolean): void {
    this.networkUp = up;
    if (!up) this.dropNetwork();
    else if (this.agent.state === 'offline') {
      this.agent.opts.clock.clearTimeout(this.retryTimer);
      this.attempt = 0;
      this.retryLater();
    }
  }

  /**
   * Ends the session for a reboot: graceful sends DISCONNECT (no will),
   * otherwise the will fires. The reboot loses the client with its RAM: the
   * boot's connect() starts a new one, whatever state this one is left in.
   */
  drop(graceful: boolean): Promise<void> {
    const { clock } = this.agent.opts;
    clock.clearTimeout(this.retryTimer);
    this.down = true;
    const client = this.client;
    this.client = null;
    if (!client || client.disconnected) return Promise.resolve();
    // A graceful end waits for the acks of QoS 1 reports in flight, but not for
    // good: not once the link is gone (mqtt.js would wait for an empty queue
    // that never comes), and not beyond SHUTDOWN_MS.
    this.leaving = client;
    return new Promise((resolve) => {
      let bound: TimerHandle | undefined;
      const off = () => {
        clock.clearTimeout(bound);
        client.off('close', off);
        if (this.leaving === client) this.leaving = null;
        resolve();
      };
      bound = clock.setTimeout(() => {
        client.stream?.destroy();
        off();
      }, SHUTDOWN_MS);
      client.once('close', off);
      client.end(!graceful || !client.connected, off);
    });
  }

  async close(): Promise<void> {
    this.agent.opts.clock.clearTimeout(this.retryTimer);
    this.leaving?.stream?.destroy();
    const client = this.client;
    if (!client) return;
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => client.end(true, () => resolve()), 2_000);
      client.end(false, () => {
        clearTimeout(force);
        resolve();
      });
    });
  }
}
