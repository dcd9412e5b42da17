// The terminal's link to posfleet: enrolment when it has no identity, then one
// MQTT 3.1.1 session with its last will on `presence`, and reconnects with
// capped, jittered exponential backoff so a server restart does not bring
// every terminal back in the same second (docs/agent-sim.md). The link owns
// none of the terminal's state: it tells the terminal what happened through
// the events it is built with.
import mqtt, { type MqttClient } from 'mqtt';
import { PROTOCOL_VERSION, topicFor, type EnrollRequest, type EnrollResponse } from '../protocol/index.ts';
import type { Clock, TimerHandle } from './clock.ts';
import type { FleetCounters, Limiter } from './counters.ts';
import { enroll, HttpError, type Identity } from './identity.ts';
import { between, type Rng } from './rng.ts';

export interface LinkOptions {
  clock: Clock;
  rng: Rng;
  counters: FleetCounters;
  server?: string;
  enrollToken?: string;
  /** Shared by a fleet so thousands of terminals do not enrol at once. */
  enrollLimiter?: Limiter;
  /** Credentials handed in from outside: a refused CONNECT is not mended by enrolling again. */
  givenCredentials: boolean;
  /** The identity the terminal holds now; null before its first enrolment. */
  identity(): Identity | null;
  /** What the terminal tells the server when it enrols. */
  enrollRequest(): EnrollRequest;
}

/** What the link tells the terminal. */
export interface LinkEvents {
  /** An enrolment attempt begins. */
  onEnrolling(): void;
  /** The server enrolled the terminal: it takes the identity at once, and resolves once it is saved. */
  onEnrolled(answer: EnrollResponse): Promise<void>;
  /** An MQTT connection attempt begins. */
  onConnecting(): void;
  /** Connected and subscribed to `cmd` and `config`. */
  onConnected(): void;
  /** The session ended by itself (not by a reboot or a stop); the link retries on its own. */
  onClosed(): void;
  onMessage(topic: string, payload: Buffer): void;
  /** Something went wrong; `fatal` when the link gives up until the next connect(). */
  onError(code: string, message: string, fatal: boolean): void;
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
  /** Closed for good by close(). */
  private closed = false;
  /** An enrolment was refused for good: nothing more until the next connect(). */
  private gaveUp = false;
  /** Subscribed, and the session has not closed since. */
  private online = false;
  /** The session closed by itself and a retry is due. */
  private waiting = false;
  /** Bumped by connect(), drop() and close(): an attempt that awaited something checks it is still the current one. */
  private epoch = 0;
  /** The client a reboot let go of, while it still ends. */
  private leaving: MqttClient | null = null;

  constructor(
    private readonly opts: LinkOptions,
    private readonly ev: LinkEvents,
  ) {}

  /** Starts the link, or starts it again after a reboot. */
  connect(): void {
    this.down = false;
    this.gaveUp = false;
    this.epoch++;
    void this.attemptConnect();
  }

  private async attemptConnect(): Promise<void> {
    if (this.closed || this.down || this.gaveUp) return;
    if (!this.networkUp) return this.retryLater();
    this.waiting = false;
    if (!this.opts.identity() || this.needsEnroll) {
      const epoch = this.epoch;
      this.ev.onEnrolling();
      if (!(await this.enroll(epoch))) return;
      if (epoch !== this.epoch) return; // a reboot or a stop came while enrolling; a reboot's boot connects
    }
    this.ev.onConnecting();
    if (!this.client) this.client = this.createClient();
    else if (this.client.disconnected) this.client.reconnect();
    // Keep the stores across a network drop, so QoS 1 reports made while offline still go out.
    else this.client.reconnect({ incomingStore: this.client.incomingStore, outgoingStore: this.client.outgoingStore });
  }

  private async enroll(epoch: number): Promise<boolean> {
    const { server, enrollToken, enrollLimiter, counters } = this.opts;
    if (!server || !enrollToken) {
      this.gaveUp = true;
      this.ev.onError('no_credentials', 'no identity, and no server and enrolment token to get one', true);
      return false;
    }
    try {
      const task = () => enroll(server, enrollToken, this.opts.enrollRequest());
      const answer = await (enrollLimiter ? enrollLimiter.run(task) : task());
      const saved = this.ev.onEnrolled(answer);
      this.needsEnroll = false;
      counters.enrolled++;
      // A client made with the old credentials would reconnect with them: the
      // next connect starts a new one (reports it still held go with it).
      const stale = this.client;
      this.client = null;
      stale?.end(true);
      await saved;
      return true;
    } catch (err) {
      const code = err instanceof HttpError ? `enroll_${err.code}` : 'enroll_failed';
      const retryable = !(err instanceof HttpError) || err.retryable;
      // Refused for good, unless a reboot or a stop came meanwhile: a reboot enrols again.
      const fatal = !retryable && epoch === this.epoch;
      if (fatal) this.gaveUp = true;
      this.ev.onError(code, (err as Error).message, fatal);
      if (retryable && epoch === this.epoch) this.retryLater();
      return false;
    }
  }

  private createClient(): MqttClient {
    const id = this.opts.identity()!;
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
      this.opts.counters.connects++;
      const topics = [topicFor(id.deviceId, 'cmd'), topicFor(id.deviceId, 'config')];
      client.subscribe(topics, { qos: 1 }, (err) => {
        // A link that closes before the SUBACK calls back with an error just
        // before its close: that session never came online.
        if (!current() || this.closed || (err && client.stream?.destroyed)) return;
        this.online = true;
        this.ev.onConnected();
      });
    });
    client.on('message', (topic, payload) => {
      if (current()) this.ev.onMessage(topic, payload);
    });
    client.on('error', (err) => {
      if (current()) this.onClientError(err as Error & { code?: number | string });
    });
    client.on('close', () => {
      if (current()) this.onClose();
    });
    return client;
  }

  private onClientError(err: Error & { code?: number | string }): void {
    // CONNACK 4/5: the server no longer knows these credentials; enrol again if we can.
    if (err.code === 4 || err.code === 5) {
      this.needsEnroll = Boolean(this.opts.enrollToken && !this.opts.givenCredentials);
      this.ev.onError('mqtt_refused', err.message, false);
    } else {
      this.ev.onError('mqtt_error', err.message, false);
    }
  }

  private onClose(): void {
    if (this.online) this.opts.counters.disconnects++;
    this.online = false;
    if (this.closed || this.gaveUp) return;
    this.waiting = true;
    this.ev.onClosed();
    this.retryLater();
  }

  private retryLater(): void {
    if (this.down || this.closed) return;
    const { clock } = this.opts;
    clock.clearTimeout(this.retryTimer);
    const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this.attempt++);
    this.retryTimer = clock.setTimeout(
      () => void this.attemptConnect(),
      Math.round(between(this.opts.rng, cap / 2, cap)),
    );
  }

  /** A broken link without DISCONNECT: the broker publishes the last will. */
  dropNetwork(): void {
    this.client?.stream?.destroy();
  }

  /** Takes the network away (or gives it back) until told otherwise. */
  setNetwork(up: boolean): void {
    this.networkUp = up;
    if (!up) this.dropNetwork();
    else if (this.waiting) {
      this.opts.clock.clearTimeout(this.retryTimer);
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
    const { clock } = this.opts;
    clock.clearTimeout(this.retryTimer);
    this.down = true;
    this.online = false;
    this.waiting = false;
    this.epoch++;
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

  /** Ends the link for good (the simulator stops). */
  async close(): Promise<void> {
    this.closed = true;
    this.online = false;
    this.waiting = false;
    this.epoch++;
    this.opts.clock.clearTimeout(this.retryTimer);
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
