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

export class Connection {
  client: MqttClient | null = null;
  private attempt = 0;
  private retryTimer: TimerHandle | undefined;
  private needsEnroll = false;
  private networkUp = true;
  private readonly rng: Rng;

  constructor(private readonly agent: TerminalAgent, private readonly ev: LinkEvents) {
    this.rng = streamRng(agent.opts.seed, 'link', agent.index);
  }

  connect(): void {
    void this.attemptConnect();
  }

  private async attemptConnect(): Promise<void> {
    const { agent } = this;
    if (agent.state === 'stopped' || agent.state === 'failed') return;
    if (!this.networkUp) return this.retryLater();
    if (!agent.identity || this.needsEnroll) {
      agent.state = 'enrolling';
      if (!(await this.enroll())) return;
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
        serial: agent.serial, deviceId: res.deviceId, mqtt: res.mqtt, heartbeatIntervalS: res.heartbeatIntervalS,
        firmware: previous?.firmware ?? agent.opts.firmware, apps: previous?.apps ?? agent.opts.apps,
      };
      agent.heartbeatIntervalS = res.heartbeatIntervalS;
      this.needsEnroll = false;
      agent.opts.counters.enrolled++;
      await agent.persist();
      return true;
    } catch (err) {
      const retryable = !(err instanceof HttpError) || err.retryable;
      agent.fail(err instanceof HttpError ? `enroll_${err.code}` : 'enroll_failed', (err as Error).message);
      if (!retryable) { agent.state = 'failed'; return false; }
      this.retryLater();
      return false;
    }
  }

  private createClient(): MqttClient {
    const id = this.agent.identity!;
    const client = mqtt.connect(id.mqtt.url, {
      clientId: id.mqtt.clientId, username: id.mqtt.username, password: id.mqtt.password,
      protocolVersion: 4, clean: true, keepalive: 60, reconnectPeriod: 0, connectTimeout: 20_000, resubscribe: false,
      will: { topic: topicFor(id.deviceId, 'presence'), payload: Buffer.from(JSON.stringify({ v: PROTOCOL_VERSION, state: 'offline' })), qos: 1, retain: false },
    });
    client.on('connect', () => {
      this.attempt = 0;
      this.agent.opts.counters.connects++;
      const topics = [topicFor(id.deviceId, 'cmd'), topicFor(id.deviceId, 'config')];
      client.subscribe(topics, { qos: 1 }, () => this.ev.onOnline());
    });
    client.on('message', (topic, payload) => this.ev.onMessage(topic, payload));
    client.on('error', (err) => this.onError(err as Error & { code?: number | string }));
    client.on('close', () => this.onClose());
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
    else if (this.agent.state === 'offline') { this.agent.opts.clock.clearTimeout(this.retryTimer); this.attempt = 0; this.retryLater(); }
  }

  /** Ends the session for a reboot: graceful sends DISCONNECT (no will), otherwise the will fires. */
  drop(graceful: boolean): Promise<void> {
    this.agent.opts.clock.clearTimeout(this.retryTimer);
    const client = this.client;
    if (!client || client.disconnected) return Promise.resolve();
    // A graceful end waits for the acks of QoS 1 reports in flight. On a link
    // that is already down those never come, so the end is forced; when the link
    // dies during the wait, mqtt.js would wait for good (it flushes the reports
    // but never says the queue is empty): tell it, and the end completes.
    return new Promise((resolve) => {
      const linkLost = () => { if (client.disconnecting && !client.disconnected) client.emit('outgoingEmpty'); };
      client.once('close', linkLost);
      client.end(!graceful || !client.connected, () => {
        client.off('close', linkLost);
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    this.agent.opts.clock.clearTimeout(this.retryTimer);
    const client = this.client;
    if (!client) return;
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => client.end(true, () => resolve()), 2_000);
      client.end(false, () => { clearTimeout(force); resolve(); });
    });
  }
}
