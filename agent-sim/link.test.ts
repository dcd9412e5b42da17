// The terminal's link when something happens in the middle of it: a stop or a
// reboot while it enrols, a session that closes or stops before its SUBACK.
// Each ends in a state the table in states.ts allows, never in a stray one.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { manualClock, type ManualClock } from './clock.ts';
import { startFleet, type FleetHandle, type FleetOptions } from './fleet.ts';
import { advanceUntil, startTestBroker, until, type TestBroker } from './testing.ts';

let broker: TestBroker;
let enrolment: HeldEnrolment;
let clock: ManualClock;
let fleets: FleetHandle[] = [];
/** deviceId → password the broker accepts. */
const devices = new Map<string, string>();

interface HeldEnrolment {
  url: string;
  /** Requests waiting for an answer. */
  readonly pending: number;
  /** Answers the oldest waiting request: 201 with credentials, or 401. */
  answer(status: 201 | 401): void;
  close(): Promise<void>;
}

/** An enrolment endpoint that holds every request until the test answers it. */
async function heldEnrolment(): Promise<HeldEnrolment> {
  const waiting: ((status: 201 | 401) => void)[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const { serial } = JSON.parse(Buffer.concat(chunks).toString()) as { serial: string };
      waiting.push((status) => {
        const deviceId = `dev-${serial}`;
        const password = `pw-${devices.size}`;
        if (status === 201) devices.set(deviceId, password);
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify(
            status === 201
              ? {
                  deviceId,
                  status: 'active',
                  mqtt: { url: broker.url, username: deviceId, password, clientId: deviceId },
                  heartbeatIntervalS: 30,
                }
              : { error: { code: 'unauthorized', message: 'enrolment token revoked' } },
          ),
        );
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get pending() {
      return waiting.length;
    },
    answer: (status) => waiting.shift()?.(status),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const brokerOptions = (holdSubscribe = false) => ({
  authenticate: (u: string, p: string) => devices.get(u) === p,
  holdSubscribe,
});

beforeEach(async () => {
  devices.clear();
  broker = await startTestBroker(brokerOptions());
  enrolment = await heldEnrolment();
  clock = manualClock();
});

afterEach(async () => {
  await Promise.all(fleets.map((f) => f.stop()));
  fleets = [];
  await broker.close();
  await enrolment.close();
});

async function fleet(over: Partial<FleetOptions> = {}): Promise<FleetHandle> {
  const f = await startFleet({
    server: enrolment.url,
    enrollToken: 'enrol-me',
    terminals: 1,
    seed: 5,
    clock,
    stateDir: null,
    rampPerSecond: 0,
    bootMs: 1_000,
    ...over,
  });
  fleets.push(f);
  return f;
}

/** Lets every continuation already due run (an answered enrolment, say). */
const settle = () => new Promise((r) => setImmediate(r));

describe('terminal link races', () => {
  it('stays stopped when it is stopped while enrolling, and opens no MQTT session', async () => {
    const f = await fleet();
    const [a] = f.agents;
    await until(() => enrolment.pending === 1 && a.state === 'enrolling', 'an enrolment under way');
    await f.stop();
    enrolment.answer(201);
    await until(() => a.deviceId, 'the enrolment answer taken');
    await settle();
    expect(a.state).toBe('stopped');
    expect(a.client).toBeNull();
  });

  it('comes back from a reboot during an enrolment the server then refuses, and enrols again', async () => {
    const f = await fleet();
    const [a] = f.agents;
    await until(() => enrolment.pending === 1 && a.state === 'enrolling', 'an enrolment under way');
    const rebooted = a.reboot('remote');
    expect(a.state).toBe('rebooting');
    enrolment.answer(401);
    await advanceUntil(clock, () => enrolment.pending === 1, 'the boot enrolling again');
    expect(a.lastError?.code).toBe('enroll_unauthorized');
    enrolment.answer(201);
    await advanceUntil(clock, () => a.state === 'online', 'online');
    await rebooted;
  });

  it('fails when the server refuses its enrolment for good, and a reboot tries again', async () => {
    const f = await fleet();
    const [a] = f.agents;
    await until(() => enrolment.pending === 1, 'an enrolment under way');
    enrolment.answer(401);
    await until(() => a.state === 'failed', 'failed');
    void a.reboot('remote');
    await advanceUntil(clock, () => enrolment.pending === 1, 'the boot enrolling again');
    enrolment.answer(201);
    await advanceUntil(clock, () => a.state === 'online', 'online');
  });

  it('is not online when its link closes before the SUBACK', async () => {
    await broker.close();
    broker = await startTestBroker({ port: broker.port, ...brokerOptions(true) });
    const f = await fleet();
    const [a] = f.agents;
    await until(() => enrolment.pending === 1, 'an enrolment under way');
    enrolment.answer(201);
    await until(() => broker.subscribesHeld === 2, 'connected, waiting for its SUBACK (cmd and config)');
    expect(a.state).toBe('connecting');
    a.dropConnection();
    await until(() => a.state === 'offline', 'offline');
    await settle();
    expect(a.state).toBe('offline');
    expect(f.counters.disconnects).toBe(0);
    expect(f.counters.heartbeats).toBe(0);
  });

  it('stays stopped when its SUBACK arrives while it stops', async () => {
    await broker.close();
    broker = await startTestBroker({ port: broker.port, ...brokerOptions(true) });
    const f = await fleet();
    const [a] = f.agents;
    await until(() => enrolment.pending === 1, 'an enrolment under way');
    enrolment.answer(201);
    await until(() => broker.subscribesHeld === 2, 'connected, waiting for its SUBACK (cmd and config)');
    const stopped = f.stop(); // a graceful end waits for the SUBACK in flight
    broker.releaseSubscribes();
    await stopped;
    await settle();
    expect(a.state).toBe('stopped');
    expect(f.counters.heartbeats).toBe(0);
  });
});
