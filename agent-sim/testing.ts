// Stand-ins for posfleet used by agent-sim's own tests and bench/sim: a real
// aedes broker on 127.0.0.1 and a tiny HTTP enrolment endpoint that speaks the
// protocol/ shapes, and the bounded polls the tests wait with. Not for
// production, and never imported by the agent itself.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { Aedes } from 'aedes';
import { API_BASE, enrollRequestSchema, type EnrollRequest } from '../protocol/index.ts';
import type { ManualClock } from './clock.ts';

export interface Published {
  topic: string;
  payload: unknown;
  clientId: string | null;
}

export interface TestBroker {
  readonly port: number;
  readonly url: string;
  broker: Aedes;
  /** Uplink messages seen (when recording). */
  published: Published[];
  publish(topic: string, payload: unknown, opts?: { retain?: boolean; qos?: 0 | 1 }): Promise<void>;
  /** Drops every connection and comes back on the same port with an empty broker: a server restart. */
  restart(): Promise<void>;
  /** Subscriptions (one per topic) waiting for releaseSubscribes() (with `holdSubscribe`). */
  readonly subscribesHeld: number;
  /** Answers the SUBSCRIBEs held so far. */
  releaseSubscribes(): void;
  close(): Promise<void>;
}

export interface BrokerOptions {
  port?: number;
  record?: boolean;
  /** Returns true when username/password may connect; default accepts all. */
  authenticate?: (username: string, password: string) => boolean;
  /** Publishes to topics for which this returns true are never acknowledged (a server that stalls). */
  withholdAck?: (topic: string) => boolean;
  /** SUBSCRIBEs wait for releaseSubscribes(): a terminal connects but gets no SUBACK until then. */
  holdSubscribe?: boolean;
}

export async function startTestBroker(opts: BrokerOptions = {}): Promise<TestBroker> {
  const sockets = new Set<Socket>();
  const published: Published[] = [];
  const heldSubscribes: (() => void)[] = [];
  let broker = await makeBroker(opts, published, heldSubscribes);
  let server = await listen(broker, sockets, opts.port ?? 0);
  const port = (server.address() as AddressInfo).port;
  const shutdown = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await new Promise<void>((resolve) => broker.close(() => resolve()));
  };
  const tb: TestBroker = {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    published,
    get broker() {
      return broker;
    },
    publish: (topic, payload, o = {}) =>
      new Promise((resolve, reject) =>
        broker.publish(
          {
            cmd: 'publish',
            topic,
            payload: Buffer.from(JSON.stringify(payload)),
            qos: o.qos ?? 1,
            retain: o.retain ?? false,
            dup: false,
          },
          (err) => (err ? reject(err) : resolve()),
        ),
      ),
    async restart() {
      await shutdown();
      broker = await makeBroker(opts, published, heldSubscribes);
      server = await listen(broker, sockets, port);
    },
    get subscribesHeld() {
      return heldSubscribes.length;
    },
    releaseSubscribes: () => {
      for (const release of heldSubscribes.splice(0)) release();
    },
    close: shutdown,
  } as TestBroker;
  return tb;
}

async function makeBroker(opts: BrokerOptions, published: Published[], heldSubscribes: (() => void)[]): Promise<Aedes> {
  const broker = await Aedes.createBroker({
    authenticate: (_client, username, password, done) => {
      const ok = !opts.authenticate || opts.authenticate(username ?? '', password?.toString() ?? '');
      if (ok) done(null, true);
      else done(Object.assign(new Error('bad credentials'), { returnCode: 4 }) as never, false);
    },
    authorizePublish: (_client, packet, done) => {
      if (!opts.withholdAck?.(packet.topic)) done(null);
    },
    authorizeSubscribe: (_client, sub, done) => {
      if (opts.holdSubscribe) heldSubscribes.push(() => done(null, sub));
      else done(null, sub);
    },
  });
  if (opts.record) {
    broker.on('publish', (packet, client) => {
      if (!packet.topic.startsWith('fleet/')) return;
      let payload: unknown = packet.payload.toString();
      try {
        payload = JSON.parse(payload as string);
      } catch {
        /* keep the text */
      }
      published.push({ topic: packet.topic, payload, clientId: client?.id ?? null });
    });
  }
  return broker;
}

function listen(broker: Aedes, sockets: Set<Socket>, port: number): Promise<net.Server> {
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    broker.handle(socket);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

export interface TestEnrollServer {
  readonly url: string;
  /** deviceId → password of every enrolled device. */
  devices: Map<string, string>;
  requests: EnrollRequest[];
  close(): Promise<void>;
}

/** POST /api/v1/enroll with `Bearer <token>` answers credentials for `mqttUrl`. */
export async function startEnrollServer(o: {
  mqttUrl: string;
  token: string;
  heartbeatIntervalS?: number;
}): Promise<TestEnrollServer> {
  const devices = new Map<string, string>();
  const requests: EnrollRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.method !== 'POST' || req.url !== `${API_BASE}/enroll`)
        return send(404, { error: { code: 'not_found', message: 'no route' } });
      if (req.headers.authorization !== `Bearer ${o.token}`)
        return send(401, { error: { code: 'unauthorized', message: 'bad enrolment token' } });
      const parsed = enrollRequestSchema.safeParse(JSON.parse(Buffer.concat(chunks).toString() || '{}'));
      if (!parsed.success) return send(400, { error: { code: 'bad_request', message: parsed.error.message } });
      requests.push(parsed.data);
      const deviceId = `dev-${parsed.data.serial}`;
      const password = randomBytes(12).toString('hex');
      devices.set(deviceId, password);
      send(201, {
        deviceId,
        status: 'active',
        mqtt: { url: o.mqttUrl, username: deviceId, password, clientId: deviceId },
        heartbeatIntervalS: o.heartbeatIntervalS ?? 30,
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    devices,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Polls `get` every 20 ms until it gives something truthy; throws after 5 s. */
export async function until<T>(get: () => T | undefined | false, what: string): Promise<T> {
  for (let i = 0; i < 250; i++) {
    const v = get();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * Moves the terminals' clock in steps until `done()`: a timer armed late (a
 * reboot waits for the acks of its reports first) still fires.
 */
export async function advanceUntil(clock: ManualClock, done: () => boolean, what: string, stepMs = 500): Promise<void> {
  for (let i = 0; i < 50 && !done(); i++) {
    await clock.advance(stepMs);
    await new Promise((r) => setTimeout(r, 20));
  }
  if (!done()) throw new Error(`timed out waiting for ${what}`);
}
