import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { canonicalJson, heartbeatSchema, replySchema, type Manifest } from '../protocol/index.ts';
import { manualClock, type ManualClock } from './clock.ts';
import { startFleet, type FleetHandle, type FleetOptions } from './fleet.ts';
import {
  advanceUntil as advanceTo,
  startEnrollServer,
  startTestBroker,
  until,
  type Published,
  type TestBroker,
  type TestEnrollServer,
} from './testing.ts';

let broker: TestBroker;
let enroll: TestEnrollServer;
let clock: ManualClock;
let stateDir: string;
let fleets: FleetHandle[] = [];

beforeEach(async () => {
  enroll = undefined as unknown as TestEnrollServer;
  broker = await startTestBroker({ record: true, authenticate: (u, p) => enroll?.devices.get(u) === p });
  enroll = await startEnrollServer({ mqttUrl: broker.url, token: 'enrol-me', heartbeatIntervalS: 30 });
  clock = manualClock();
  stateDir = await mkdtemp(join(tmpdir(), 'agent-sim-'));
});

afterEach(async () => {
  await Promise.all(fleets.map((f) => f.stop()));
  fleets = [];
  await broker.close();
  await enroll.close();
  await rm(stateDir, { recursive: true, force: true });
});

async function fleet(over: Partial<FleetOptions> = {}): Promise<FleetHandle> {
  const f = await startFleet({
    server: enroll.url,
    enrollToken: 'enrol-me',
    terminals: 3,
    seed: 5,
    clock,
    stateDir,
    rampPerSecond: 0,
    bootMs: 1_000,
    ...over,
  });
  fleets.push(f);
  await f.waitForOnline(f.agents.length, 5_000);
  return f;
}

const on = (kind: string, deviceId?: string) => (p: Published) =>
  p.topic.endsWith(`/${kind}`) && (!deviceId || p.topic === `fleet/${deviceId}/${kind}`);
const messages = (kind: string, deviceId?: string) =>
  broker.published.filter(on(kind, deviceId)).map((p) => p.payload as Record<string, any>);
const advanceUntil = (done: () => boolean, what: string) => advanceTo(clock, done, what);
const command = (deviceId: string, id: string, type: string, params: Record<string, unknown> = {}) =>
  broker.publish(`fleet/${deviceId}/cmd`, { v: 1, id, type, params, expiresAt: clock.now() + 60_000 });

describe('terminal agent against a real broker', () => {
  it('enrols, connects with a last will, and sends valid heartbeats on the retained config interval', async () => {
    const f = await fleet();
    expect(enroll.requests.map((r) => r.serial).sort()).toEqual(f.agents.map((a) => a.serial).sort());
    const id = f.agents[0].deviceId!;
    await until(() => messages('heartbeat', id).length === 1, 'first heartbeat');
    await broker.publish(`fleet/${id}/config`, { v: 1, revision: 2, heartbeatIntervalS: 10 }, { retain: true });
    await until(() => f.agents[0].heartbeatIntervalS === 10, 'config applied');
    await clock.advance(11_000);
    await clock.advance(11_000);
    const beats = await until(() => messages('heartbeat', id).length >= 3 && messages('heartbeat', id), 'heartbeats');
    for (const hb of beats) expect(heartbeatSchema.safeParse(hb).success).toBe(true);
    expect(beats.map((b) => b.seq)).toEqual([0, 1, 2]);
    expect(new Set(beats.map((b) => b.bootId)).size).toBe(1);

    f.agents[0].dropConnection();
    const will = await until(() => messages('presence', id)[0], 'last will');
    expect(will).toEqual({ v: 1, state: 'offline' });
    await advanceUntil(() => f.stats().online === 3, 'all online again');
  });

  it('answers every command once, even when it arrives twice', async () => {
    const f = await fleet({ terminals: 1 });
    const id = f.agents[0].deviceId!;
    await command(id, 'c-ping', 'ping');
    await command(id, 'c-diag', 'diagnostics');
    await command(id, 'c-logs', 'fetch_logs', { lines: 5 });
    await command(id, 'c-set', 'set_config', { heartbeatIntervalS: 60 });
    await command(id, 'c-set', 'set_config', { heartbeatIntervalS: 60 });
    await command(id, 'c-bad', 'set_config', { heartbeatIntervalS: 1 });
    const replies = await until(() => messages('reply', id).length >= 6 && messages('reply', id), 'replies');
    for (const r of replies) expect(replySchema.safeParse(r).success).toBe(true);
    const by = Object.fromEntries(replies.map((r) => [r.commandId, r]));
    expect(by['c-ping']).toMatchObject({ status: 'ok', result: { pong: true } });
    expect(by['c-diag'].result.components).toHaveProperty('reader');
    expect(by['c-logs'].result.lines.length).toBeGreaterThan(0);
    expect(by['c-set']).toMatchObject({ status: 'ok', result: { config: { heartbeatIntervalS: 60 } } });
    expect(by['c-bad']).toMatchObject({ status: 'rejected', error: { code: 'bad_params' } });
    expect(replies.filter((r) => r.commandId === 'c-set')).toHaveLength(2);
    expect(f.counters.commands.set_config).toBe(2);
    expect(f.counters.duplicateCommands).toBe(1);
  });

  it('reboots on command with a new bootId and seq from 0', async () => {
    const f = await fleet({ terminals: 1 });
    const a = f.agents[0];
    const firstBoot = a.bootId;
    await command(a.deviceId!, 'c-reboot', 'reboot');
    await until(() => a.state === 'rebooting', 'rebooting');
    await advanceUntil(() => a.state === 'online', 'online after the reboot');
    const beats = await until(
      () => messages('heartbeat', a.deviceId).length >= 2 && messages('heartbeat', a.deviceId),
      'heartbeat after reboot',
    );
    expect(beats.at(-1)).toMatchObject({ seq: 0, sys: { rebootReason: 'remote' } });
    expect(beats.at(-1)!.bootId).not.toBe(firstBoot);
    expect(messages('event', a.deviceId)).toContainEqual(
      expect.objectContaining({ type: 'reboot', data: expect.objectContaining({ reason: 'remote' }) }),
    );
  });

  it('survives a broker restart by reconnecting with backoff', async () => {
    const f = await fleet();
    await broker.restart();
    await until(() => f.agents.every((a) => !a.connected), 'all offline');
    for (let i = 0; i < 6 && f.stats().online < 3; i++) {
      await clock.advance(5_000);
      await new Promise((r) => setTimeout(r, 100));
    }
    await f.waitForOnline(3, 5_000);
    expect(f.counters.connects).toBeGreaterThanOrEqual(6);
  });

  it('finishes a reboot whose link dies while it waits for the acks of its reports', async () => {
    await broker.close();
    broker = await startTestBroker({
      port: broker.port,
      authenticate: (u, p) => enroll?.devices.get(u) === p,
      withholdAck: (topic) => topic.endsWith('/heartbeat'),
    });
    const f = await fleet({ terminals: 1 });
    const [a] = f.agents;
    await until(
      () => a.client && Object.keys((a.client as unknown as { outgoing: object }).outgoing).length > 0,
      'a heartbeat waiting for its ack',
    );
    const rebooted = a.reboot('remote');
    await until(() => a.state === 'rebooting', 'rebooting');
    await broker.restart(); // the link dies with the heartbeat still unacknowledged
    await advanceUntil(() => a.state === 'online', 'online after the reboot');
    await rebooted;
    expect(a.state).toBe('online');
  });

  it('finishes a reboot that starts while its link is down and it waits to retry', async () => {
    const f = await fleet({ terminals: 1 });
    const [a] = f.agents;
    await broker.restart();
    await until(() => a.state === 'offline', 'offline, waiting to retry');
    const rebooted = a.reboot('update'); // an install that finished over HTTP while MQTT was down
    await advanceUntil(() => a.state === 'online', 'online after the reboot');
    await rebooted;
    expect(a.state).toBe('online');
  });

  it('lets a reboot asked for during another join it, and resolves both once online', async () => {
    const f = await fleet({ terminals: 1 });
    const [a] = f.agents;
    const firstBoot = a.bootId;
    const install = a.reboot('update');
    const command = a.reboot('remote');
    await advanceUntil(() => a.state === 'online', 'online after the reboot');
    await Promise.all([install, command]);
    expect(f.counters.reboots).toBe(1);
    expect(a.bootId).not.toBe(firstBoot);
  });

  it('still resolves an install’s reboot when the terminal reboots again before it is back online', async () => {
    const f = await fleet({ terminals: 1 });
    const [a] = f.agents;
    let installed = false;
    void a.reboot('update').then(() => {
      installed = true;
    });
    await broker.close();
    await advanceUntil(() => a.state === 'offline', 'booted, not back online');
    void a.reboot('crash'); // e.g. a flat battery as it comes back
    broker = await startTestBroker({ port: broker.port, authenticate: (u, p) => enroll?.devices.get(u) === p });
    await advanceUntil(() => installed && a.state === 'online', 'the install’s reboot resolved');
    expect(f.counters.reboots).toBe(2);
  });

  it('enrols again when the server no longer knows its credentials, and connects with the new ones', async () => {
    const f = await fleet({ terminals: 1 });
    const [a] = f.agents;
    enroll.devices.set(a.deviceId!, 'forgotten'); // the server no longer accepts its password
    a.dropConnection();
    await advanceUntil(() => enroll.requests.length === 2 && a.state === 'online', 'online on new credentials');
    expect(f.counters.errors.mqtt_refused).toBeGreaterThanOrEqual(1);
    expect(f.counters.enrolled).toBe(2);
  });

  it('keeps its identity in the state file across a simulator restart', async () => {
    const first = await fleet({ terminals: 2 });
    const ids = first.agents.map((a) => a.deviceId);
    await first.stop();
    fleets = [];
    const second = await fleet({ terminals: 2 });
    expect(second.agents.map((a) => a.deviceId)).toEqual(ids);
    expect(enroll.requests).toHaveLength(2);
  });

  it('installs an update over MQTT and reports the new version before success', async () => {
    const payload = Buffer.from('firmware 2.0.0 '.repeat(1000));
    const artifact = http.createServer((_req, res) => res.end(payload));
    await new Promise<void>((r) => artifact.listen(0, '127.0.0.1', r));
    const keys = generateKeyPairSync('ed25519');
    try {
      const f = await fleet({
        terminals: 1,
        models: ['T2'],
        installMs: 10,
        publicKey: keys.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      });
      const a = f.agents[0];
      const manifest: Manifest = {
        v: 1,
        component: 'firmware',
        version: '2.0.0',
        models: ['T2'],
        requires: {},
        size: payload.length,
        sha256: createHash('sha256').update(payload).digest('hex'),
        createdAt: '2026-01-01T00:00:00.000Z',
        keyId: '0123456789abcdef',
      };
      const signature = sign(null, Buffer.from(canonicalJson(manifest)), keys.privateKey).toString('base64');
      const url = `http://127.0.0.1:${(artifact.address() as AddressInfo).port}/a`;
      await command(a.deviceId!, 'c-up', 'update', {
        jobId: 'job-1',
        component: 'firmware',
        version: '2.0.0',
        url,
        sha256: manifest.sha256,
        size: manifest.size,
        signature,
        manifest,
      });
      // Install time runs on the terminal's clock: move it on once installing starts.
      await until(() => a.lastOta?.state === 'installing', 'installing');
      await clock.advance(100);
      await until(() => a.state === 'rebooting', 'update reboot');
      await advanceUntil(() => a.lastOta?.state === 'succeeded', 'succeeded');
      const order = broker.published.filter((p) => p.topic.endsWith('/heartbeat') || p.topic.endsWith('/ota'));
      const newVersionAt = order.findIndex((p) => (p.payload as any).firmware === '2.0.0');
      const succeededAt = order.findIndex((p) => (p.payload as any).state === 'succeeded');
      expect(newVersionAt).toBeGreaterThan(-1);
      expect(succeededAt).toBeGreaterThan(newVersionAt);
      expect(messages('reply', a.deviceId)[0]).toMatchObject({ commandId: 'c-up', status: 'ok' });
    } finally {
      artifact.closeAllConnections();
      artifact.close();
    }
  });
});
