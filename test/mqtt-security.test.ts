// The broker's per-terminal security (DESIGN.md §4), with real MQTT.js clients
// against the embedded aedes broker on an ephemeral loopback port.
import { connect as netConnect } from 'node:net';
import mqttPacket from 'mqtt-packet';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connectDevice,
  connectMqtt,
  enrollDevice,
  eventually,
  heartbeat,
  startTestApp,
  type EnrolledDevice,
  type TestApp,
} from './helpers/app.ts';
import { dbKind } from './helpers/db.ts';

const refusal = (p: Promise<unknown>) =>
  p.then(
    () => 'connected',
    (err: { code?: number }) => err.code,
  );

function subscribe(client: MqttClient, topic: string): Promise<number> {
  // MQTT.js reports a 0x80 grant as an error carrying the SUBACK packet.
  return new Promise((resolve, reject) =>
    client.subscribe(topic, { qos: 1 }, (err, granted) => {
      const suback = (err as { packet?: { granted?: number[] } } | null)?.packet;
      if (suback?.granted) return resolve(suback.granted[0]);
      return err ? reject(err) : resolve(granted?.[0]?.qos ?? -1);
    }),
  );
}

function publish(client: MqttClient, topic: string, payload: string | Buffer): Promise<void> {
  return new Promise((resolve, reject) =>
    client.publish(topic, payload, { qos: 1 }, (err) => (err ? reject(err) : resolve())),
  );
}

const closed = (client: MqttClient) => new Promise<void>((resolve) => client.once('close', () => resolve()));

describe(`MQTT security (${dbKind()})`, () => {
  let t: TestApp;
  let a: EnrolledDevice;
  let b: EnrolledDevice;
  const clients: MqttClient[] = [];
  const track = async (p: Promise<MqttClient>) => {
    const c = await p;
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    t = await startTestApp();
    a = await enrollDevice(t);
    b = await enrollDevice(t, { merchantId: a.merchantId });
  });
  afterAll(async () => {
    for (const c of clients) c.end(true);
    await t.stop();
  });

  it('connects a terminal with its own credentials', async () => {
    const c = await track(connectDevice(t.app, a));
    expect(c.connected).toBe(true);
    await eventually(async () => (await t.api('GET', `/api/v1/devices/${a.deviceId}`)).body.connected);
  });

  it('refuses bad credentials at CONNECT with return code 4 or 5', async () => {
    const app = t.app;
    expect(await refusal(connectMqtt(app, { clientId: a.deviceId, username: a.deviceId, password: 'wrong' }))).toBe(4);
    expect(
      await refusal(connectMqtt(app, { clientId: 'dev_unknown00', username: 'dev_unknown00', password: a.password })),
    ).toBe(4);
    expect(await refusal(connectMqtt(app, { clientId: a.deviceId }))).toBe(4);
    expect(await refusal(connectMqtt(app, { clientId: b.deviceId, username: a.deviceId, password: a.password }))).toBe(
      5,
    );
    for (const bad of [`${a.deviceId}/x`, `${a.deviceId}#`, `${a.deviceId}+`, `$${a.deviceId}`]) {
      expect(await refusal(connectMqtt(app, { clientId: bad, username: bad, password: a.password }))).toBe(5);
    }
  });

  it("refuses a publish to another terminal's topic and leaves its data untouched", async () => {
    const before = (await t.api('GET', `/api/v1/devices/${b.deviceId}`)).body;
    const c = await track(connectDevice(t.app, a, { clientId: a.deviceId }));
    const gone = closed(c);
    c.publish(`fleet/${b.deviceId}/heartbeat`, heartbeat(1, { firmware: '9.9.9' }), { qos: 1 });
    await gone; // the broker closes a terminal that breaks the ACL; no PUBACK
    const after = (await t.api('GET', `/api/v1/devices/${b.deviceId}`)).body;
    expect(after.firmware).toBe(before.firmware);
    expect(after.lastSeenAt).toBe(before.lastSeenAt);
    const metrics = (await t.api('GET', '/metrics', undefined, null)).body as string;
    expect(metrics).toMatch(/posfleet_mqtt_messages_rejected_total\{reason="publish_other_device"\} [1-9]/);
  });

  it("answers 0x80 to a subscription on another terminal's topics or wildcards", async () => {
    const c = await track(connectDevice(t.app, a));
    expect(await subscribe(c, `fleet/${b.deviceId}/cmd`)).toBe(128);
    expect(await subscribe(c, 'fleet/#')).toBe(128);
    expect(await subscribe(c, `fleet/+/cmd`)).toBe(128);
    expect(await subscribe(c, `fleet/${a.deviceId}/heartbeat`)).toBe(128);
    expect(await subscribe(c, `fleet/${a.deviceId}/cmd`)).toBe(1);
  });

  it('lets a second connection with the same client id take the session over', async () => {
    const first = await track(connectDevice(t.app, b));
    const firstClosed = closed(first);
    first.options.reconnectPeriod = 0;
    await track(connectDevice(t.app, b));
    await firstClosed;
    expect(t.app.broker.isConnected(b.deviceId)).toBe(true);
    await new Promise((r) => setTimeout(r, 100)); // let the old session's disconnect be written
    await t.app.sessions.drain();
    expect((await t.api('GET', `/api/v1/devices/${b.deviceId}`)).body.connected).toBe(true);
  });

  it('drops malformed payloads, counts them, and keeps other terminals working', async () => {
    const bad = await track(connectDevice(t.app, a));
    const good = await track(connectDevice(t.app, b));
    await publish(bad, `fleet/${a.deviceId}/heartbeat`, '{not json');
    await publish(bad, `fleet/${a.deviceId}/heartbeat`, JSON.stringify({ v: 1, seq: -1 }));
    // Valid JSON the database cannot store (a NUL in a string): dropped like any bad payload, PUBACKed, not retried forever.
    await publish(bad, `fleet/${a.deviceId}/heartbeat`, heartbeat(8, { printer: { state: 'ok', model: 'x\u0000y' } }));
    await publish(
      bad,
      `fleet/${a.deviceId}/event`,
      JSON.stringify({ v: 1, ts: Date.now(), type: 'note', data: { text: '\u0000' } }),
    );
    expect(bad.connected).toBe(true);
    await publish(good, `fleet/${b.deviceId}/heartbeat`, heartbeat(7, { firmware: '1.2.3' }));
    expect((await t.api('GET', `/api/v1/devices/${b.deviceId}`)).body.firmware).toBe('1.2.3');
    const metrics = (await t.api('GET', '/metrics', undefined, null)).body as string;
    expect(metrics).toMatch(/posfleet_mqtt_messages_invalid_total\{kind="heartbeat"\} ([3-9]|\d\d)/);
    expect(metrics).toMatch(/posfleet_mqtt_messages_invalid_total\{kind="event"\} [1-9]/);
    expect(metrics).toMatch(/posfleet_mqtt_messages_in_total\{kind="heartbeat"\} [1-9]/);
    // Fleet events counted from the in-process bus, and connect timings.
    expect(metrics).toMatch(/posfleet_fleet_events_total\{type="device\.connected"\} [1-9]/);
    expect(metrics).toMatch(/posfleet_mqtt_connect_seconds_count [1-9]/);
  });

  it("fans none of a terminal's uplinks out (nothing may subscribe to them); its downlinks still go out", async () => {
    const fannedOut: string[] = [];
    const onPublish = (packet: { topic: string }) => {
      if (!packet.topic.startsWith('$SYS')) fannedOut.push(packet.topic);
    };
    t.app.broker.aedes.on('publish', onPublish);
    try {
      const d = await enrollDevice(t, { merchantId: a.merchantId });
      const c = await track(connectDevice(t.app, d));
      const received: string[] = [];
      c.on('message', (topic) => received.push(topic));
      await new Promise<void>((resolve, reject) =>
        c.subscribe(`fleet/${d.deviceId}/cmd`, { qos: 1 }, (err) => (err ? reject(err) : resolve())),
      );
      await publish(c, `fleet/${d.deviceId}/heartbeat`, heartbeat(1));
      expect((await t.api('GET', `/api/v1/devices/${d.deviceId}/heartbeats`)).body.items).toHaveLength(1);
      expect((await t.api('POST', `/api/v1/devices/${d.deviceId}/commands`, { type: 'diagnostics' })).status).toBe(202);
      await eventually(() => received.includes(`fleet/${d.deviceId}/cmd`));
      expect(fannedOut).toEqual([`fleet/${d.deviceId}/cmd`]);
    } finally {
      t.app.broker.aedes.off('publish', onPublish);
    }
  });

  it('records the last will on presence', async () => {
    const d = await enrollDevice(t, { merchantId: a.merchantId });
    const c = await track(
      connectDevice(t.app, d, {
        will: {
          topic: `fleet/${d.deviceId}/presence`,
          payload: Buffer.from('{"v":1,"state":"offline"}'),
          qos: 1,
          retain: false,
        },
      }),
    );
    c.stream.destroy(); // an unclean drop fires the will
    const row = await eventually(async () => {
      await t.app.sessions.drain();
      const dev = await t.app.db
        .selectFrom('devices')
        .selectAll()
        .where('id', '=', d.deviceId)
        .executeTakeFirstOrThrow();
      return dev.connected === false && dev.last_will_at !== null && dev;
    });
    expect(row.last_will_at).toBeInstanceOf(Date);
    expect(row.last_disconnected_at).not.toBeNull();
  });

  it('cuts a decommissioned terminal off and refuses its reconnects', async () => {
    const d = await enrollDevice(t, { merchantId: a.merchantId });
    const c = await track(connectDevice(t.app, d));
    const gone = closed(c);
    expect((await t.api('DELETE', `/api/v1/devices/${d.deviceId}`)).status).toBe(200);
    await gone;
    expect(await refusal(connectDevice(t.app, d))).toBe(4);
  });

  it('cuts the session when credentials are rotated; only the new token connects', async () => {
    const d = await enrollDevice(t, { merchantId: a.merchantId });
    const c = await track(connectDevice(t.app, d));
    const gone = closed(c);
    const rotated = await t.api('POST', `/api/v1/devices/${d.deviceId}/credentials`);
    await gone;
    expect(await refusal(connectDevice(t.app, d))).toBe(4);
    await track(connectDevice(t.app, { deviceId: d.deviceId, password: rotated.body.mqtt.password }));
  });

  it('refuses a suspended terminal with return code 5', async () => {
    const d = await enrollDevice(t, { merchantId: a.merchantId });
    await t.api('PATCH', `/api/v1/devices/${d.deviceId}`, { status: 'suspended' });
    expect(await refusal(connectDevice(t.app, d))).toBe(5);
  });

  it('cuts a 64 MiB PUBLISH at its header, before buffering it', async () => {
    const socket = netConnect(t.app.mqttPort, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    socket.write(
      mqttPacket.generate({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 4,
        clean: true,
        clientId: a.deviceId,
        keepalive: 30,
        username: a.deviceId,
        password: Buffer.from(a.password),
      }),
    );
    const header = mqttPacket.generate({
      cmd: 'publish',
      topic: `fleet/${a.deviceId}/heartbeat`,
      payload: Buffer.alloc(0),
      qos: 0,
      retain: false,
      dup: false,
    });
    // Rewrite the Remaining Length to announce 64 MiB, then stream zeros.
    const announced = 64 * 1024 * 1024;
    const prefix = Buffer.from([
      header[0],
      0x80 | (announced & 0x7f),
      0x80 | ((announced >> 7) & 0x7f),
      0x80 | ((announced >> 14) & 0x7f),
      (announced >> 21) & 0x7f,
    ]);
    const rssBefore = process.memoryUsage().rss;
    let written = prefix.length;
    let isClosed = false;
    socket.on('close', () => (isClosed = true));
    socket.on('error', () => undefined);
    socket.write(prefix);
    const chunk = Buffer.alloc(256 * 1024);
    while (!isClosed && written < announced) {
      written += chunk.length;
      if (!socket.write(chunk))
        await new Promise((r) => {
          socket.once('drain', r);
          socket.once('close', r);
        });
    }
    expect(isClosed).toBe(true);
    expect(written).toBeLessThan(announced / 4);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(48 * 1024 * 1024);
    const metrics = (await t.api('GET', '/metrics', undefined, null)).body as string;
    expect(metrics).toMatch(/posfleet_mqtt_oversize_packets_total [1-9]/);
  });
});
