// The embedded MQTT broker (aedes 1.x, MQTT 3.1.1) with per-terminal
// credentials, the topic ACL, a packet-size cap and the uplink router.
import { createServer, type Server, type Socket } from 'node:net';
import { Aedes, type AuthenticateError, type Client, type Subscription } from 'aedes';
import type { Logger } from 'pino';
import { isUplinkKind, topicFor, type DownlinkKind } from '../../protocol/topics.ts';
import type { Command, DeviceConfig } from '../../protocol/messages.ts';
import type { DeviceLink } from '../devices/link.ts';
import type { Metrics } from '../lib/metrics.ts';
import { checkPublish, checkSubscribe, isAcceptableClientId } from './acl.ts';
import type { Router } from './router.ts';
import { GuardedConnection } from './size-guard.ts';
import { createIndexedPersistence } from './retained-index.ts';

export interface BrokerDeps {
  log: Logger;
  metrics: Metrics;
  maxPacketBytes: number;
  authenticateDevice: (
    id: string,
    password: Buffer | undefined,
  ) => Promise<'ok' | 'bad_credentials' | 'not_authorized'>;
  route: Router;
  onConnected: (deviceId: string) => void;
  onDisconnected: (deviceId: string) => void;
  /** The terminal subscribed to one of its downlink topics: send what it is owed. */
  onSubscribed: (deviceId: string, kind: DownlinkKind) => void;
}

function authError(returnCode: 4 | 5, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

export class Broker implements DeviceLink {
  readonly server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #retained = new Map<string, number>();
  /** When each session's CONNECT reached the credential check (for the connect-time histogram). */
  readonly #connecting = new WeakMap<Client, number>();
  private constructor(
    readonly aedes: Aedes,
    private readonly deps: BrokerDeps,
  ) {
    this.server = createServer((socket) => this.accept(socket));
  }

  static async create(deps: BrokerDeps): Promise<Broker> {
    let broker!: Broker;
    const aedes = await Aedes.createBroker({
      concurrency: 10_000, // aedes' default of 100 collapses under load
      persistence: createIndexedPersistence(),
      queueLimit: 1_000,
      authenticate: (client, username, password, done) => broker.#authenticate(client, username, password, done),
      authorizePublish: (client, packet, done) => broker.#authorizePublish(client, packet.topic, packet, done),
      authorizeSubscribe: (client, sub, done) => broker.#authorizeSubscribe(client, sub, done),
    });
    broker = new Broker(aedes, deps);
    broker.#endUplinksHere();
    broker.#watch();
    return broker;
  }

  /** Takes a terminal's TCP connection (from this server or an extra accept lane, server/lib/accept-lanes.ts). */
  accept(socket: Socket): void {
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    socket.setNoDelay(true);
    const conn = new GuardedConnection(socket, this.deps.maxPacketBytes, (verdict) => {
      if (verdict.reason !== 'oversize') return;
      this.deps.metrics.mqttOversize.inc();
      this.deps.log.warn(
        { remote: socket.remoteAddress, announced: verdict.announced, limit: this.deps.maxPacketBytes },
        'oversized MQTT packet; connection cut',
      );
    });
    this.aedes.handle(conn);
  }

  #authenticate(
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
    done: (err: AuthenticateError | null, ok: boolean | null) => void,
  ): void {
    const log = this.deps.log.child({ clientId: client.id });
    const refuse = (code: 4 | 5, reason: string) => {
      this.deps.metrics.mqttConnects.inc({ result: reason });
      log.warn({ reason }, 'MQTT connect refused');
      done(authError(code, reason), false);
    };
    if (!username || !password) return refuse(4, 'anonymous');
    if (!isAcceptableClientId(client.id)) return refuse(5, 'bad_client_id');
    if (client.id !== username) return refuse(5, 'client_id_mismatch');
    const started = performance.now();
    this.#connecting.set(client, started);
    this.deps.authenticateDevice(username, password).then(
      (verdict) => {
        this.deps.metrics.mqttAuthSeconds.observe((performance.now() - started) / 1000);
        if (verdict === 'bad_credentials') return refuse(4, 'bad_credentials');
        if (verdict === 'not_authorized') return refuse(5, 'not_authorized');
        this.deps.metrics.mqttConnects.inc({ result: 'ok' });
        done(null, true);
      },
      (err: unknown) => {
        log.error({ err }, 'device authentication failed');
        refuse(5, 'auth_unavailable');
      },
    );
  }

  #authorizePublish(
    client: Client | null,
    topic: string,
    packet: { payload: Buffer | string; retain: boolean },
    done: (err?: Error | null) => void,
  ): void {
    if (!client) return done(new Error('no client')); // stale wills of another broker instance
    const verdict = checkPublish(client.id, topic);
    if (!verdict.ok || !isUplinkKind(verdict.kind)) {
      const reason = verdict.ok ? 'not_uplink' : verdict.reason;
      this.deps.metrics.mqttRejected.inc({ reason: `publish_${reason}` });
      this.deps.log.warn({ clientId: client.id, topic, reason }, 'publish refused; connection closed');
      return done(new Error(`publish to ${topic} not allowed`));
    }
    packet.retain = false; // terminals never leave retained messages behind
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    // PUBACK is written only after this callback: durability comes from here.
    this.deps.route(client.id, verdict.kind, payload).then(
      () => done(null),
      (err: Error) => {
        this.deps.log.error(
          { err, clientId: client.id, topic },
          'message not persisted; no PUBACK, terminal will resend',
        );
        done(err);
      },
    );
  }

  /**
   * A terminal's publish (an uplink or its will) ends in #authorizePublish: the
   * router has taken it before the PUBACK. Nothing can subscribe to it either
   * (a terminal may subscribe only to its own downlinks, acl.ts), so aedes'
   * fan-out — offline queues, two topic-tree matches, the retained store and
   * the 'publish' event, for every heartbeat — would find no one. Only the
   * server's own publishes (downlinks, $SYS) are fanned out.
   */
  #endUplinksHere(): void {
    // aedes' typings know only publish(packet, done); at run time it is publish(packet, client?, done).
    type Done = (err?: Error | null) => void;
    const aedes = this.aedes as unknown as {
      publish(packet: unknown, client: Client | Done | null, done?: Done): void;
    };
    const fanOut = aedes.publish.bind(aedes);
    aedes.publish = (packet, client, done) => {
      if (client && typeof client === 'object') return done?.(null);
      return fanOut(packet, client, done);
    };
  }

  #authorizeSubscribe(
    client: Client,
    sub: Subscription,
    done: (err: Error | null, sub?: Subscription | null) => void,
  ): void {
    const verdict = checkSubscribe(client.id, sub.topic);
    if (!verdict.ok) {
      this.deps.metrics.mqttRejected.inc({ reason: `subscribe_${verdict.reason}` });
      this.deps.log.warn({ clientId: client.id, topic: sub.topic, reason: verdict.reason }, 'subscription refused');
      return done(null, null); // SUBACK 0x80 for this filter
    }
    done(null, { ...sub, qos: Math.min(sub.qos, 1) as Subscription['qos'] });
  }

  #watch(): void {
    const { aedes, deps } = this;
    aedes.on('clientReady', (client) => {
      const started = this.#connecting.get(client);
      this.#connecting.delete(client);
      if (started !== undefined) deps.metrics.mqttConnectSeconds.observe((performance.now() - started) / 1000);
      deps.metrics.mqttConnections.inc();
      deps.onConnected(client.id);
    });
    aedes.on('clientDisconnect', (client) => {
      deps.metrics.mqttConnections.dec();
      // After a session takeover the old connection closes last: the device is still online.
      if (this.#client(client.id)) return;
      deps.onDisconnected(client.id);
    });
    aedes.on('subscribe', (subs, client) => {
      if (!client) return;
      for (const s of subs) {
        const verdict = checkSubscribe(client.id, s.topic);
        if (verdict.ok) deps.onSubscribed(client.id, verdict.kind as DownlinkKind);
      }
    });
    aedes.on('clientError', (client, err) => deps.log.debug({ clientId: client.id, err: err.message }, 'client error'));
  }

  #client(id: string): Client | undefined {
    return (this.aedes as unknown as { clients: Record<string, Client | undefined> }).clients[id];
  }

  #publish(deviceId: string, kind: DownlinkKind, payload: unknown, retain: boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      this.aedes.publish(
        {
          cmd: 'publish',
          topic: topicFor(deviceId, kind),
          payload: Buffer.from(JSON.stringify(payload)),
          qos: 1,
          retain,
          dup: false,
        },
        (err) => (err ? reject(err) : resolve()),
      );
    });
  }

  isConnected(deviceId: string): boolean {
    return this.#client(deviceId)?.connected === true;
  }

  async sendCommand(deviceId: string, command: Command): Promise<boolean> {
    if (!this.isConnected(deviceId)) return false;
    await this.#publish(deviceId, 'cmd', command, false);
    this.deps.metrics.commandsSent.inc({ type: command.type });
    return true;
  }

  async sendConfig(deviceId: string, config: DeviceConfig, opts: { ifStale?: boolean } = {}): Promise<void> {
    // On a re-subscribe the retained copy already reaches the terminal; publish
    // again only when this broker has not retained this revision yet.
    if (opts.ifStale && this.#retained.get(deviceId) === config.revision) return;
    await this.#publish(deviceId, 'config', config, true);
    this.#retained.set(deviceId, config.revision);
  }

  disconnect(deviceId: string): void {
    this.#client(deviceId)?.close();
  }

  listen(port: number, host: string, backlog = 511): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ port, host, backlog }, () => {
        this.server.off('error', reject);
        const addr = this.server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : port);
      });
    });
  }

  get listening(): boolean {
    return this.server.listening && !this.aedes.closed;
  }

  /** Stops accepting, closes every session, then the broker. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    await new Promise<void>((resolve) => this.aedes.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    await closed;
  }
}
