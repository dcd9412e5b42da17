// Commands: stored first, published after the commit, re-sent on reconnect,
// replies recorded, expired after their deadline; desired config retained.
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../server/lib/clock.ts';
import { connectDevice, enrollDevice, eventually, startTestApp, type TestApp } from './helpers/app.ts';
import { dbKind } from './helpers/db.ts';

function inbox(client: MqttClient) {
  const messages: { topic: string; body: any; retain: boolean }[] = [];
  client.on('message', (topic, payload, packet) =>
    messages.push({ topic, body: JSON.parse(payload.toString()), retain: packet.retain }),
  );
  return messages;
}

function subscribeOwn(client: MqttClient, deviceId: string): Promise<void> {
  return new Promise((resolve, reject) =>
    client.subscribe([`fleet/${deviceId}/cmd`, `fleet/${deviceId}/config`], { qos: 1 }, (err) =>
      err ? reject(err) : resolve(),
    ),
  );
}

describe(`commands (${dbKind()})`, () => {
  let t: TestApp;
  const clock = new ManualClock(Date.now());
  const clients: MqttClient[] = [];
  beforeAll(async () => {
    t = await startTestApp({ clock });
  });
  afterAll(async () => {
    for (const c of clients) c.end(true);
    await t.stop();
  });

  it('delivers a command sent while the terminal was offline when it reconnects, and records the reply', async () => {
    const d = await enrollDevice(t);
    const sent = await t.api('POST', `/api/v1/devices/${d.deviceId}/commands`, { type: 'diagnostics' });
    expect(sent.status).toBe(202);
    expect(sent.body.state).toBe('queued');

    const c = await connectDevice(t.app, d);
    clients.push(c);
    const got = inbox(c);
    await subscribeOwn(c, d.deviceId);
    const cmd = await eventually(() => got.find((m) => m.topic.endsWith('/cmd')));
    expect(cmd.body).toMatchObject({ v: 1, id: sent.body.id, type: 'diagnostics', params: {} });
    // Config and owed commands go out on subscribe independently: either may arrive first.
    const config = await eventually(() => got.find((m) => m.topic.endsWith('/config')));
    expect(config.body).toMatchObject({ v: 1, revision: 1, heartbeatIntervalS: 60 });
    // The send is recorded just after the publish; the terminal may see the command first.
    await eventually(async () => {
      const row = (await t.api('GET', `/api/v1/devices/${d.deviceId}/commands`)).body.items[0];
      return row.state === 'sent' && row.sendCount === 1;
    });

    c.publish(
      `fleet/${d.deviceId}/reply`,
      JSON.stringify({ v: 1, commandId: sent.body.id, status: 'ok', result: { printer: 'pass' } }),
      { qos: 1 },
    );
    const done = await eventually(async () => {
      const row = (await t.api('GET', `/api/v1/devices/${d.deviceId}/commands`)).body.items[0];
      return row.state === 'succeeded' && row;
    });
    expect(done.result).toEqual({ printer: 'pass' });
  });

  it('sends at once to a connected terminal; a busy reply keeps it owed until the next subscribe', async () => {
    const d = await enrollDevice(t);
    const c = await connectDevice(t.app, d);
    clients.push(c);
    const got = inbox(c);
    await subscribeOwn(c, d.deviceId);
    const sent = await t.api('POST', `/api/v1/devices/${d.deviceId}/commands`, { type: 'reboot' });
    expect(sent.body.state).toBe('sent');
    await eventually(() => got.some((m) => m.body.id === sent.body.id));
    c.publish(`fleet/${d.deviceId}/reply`, JSON.stringify({ v: 1, commandId: sent.body.id, status: 'busy' }), {
      qos: 1,
    });
    await eventually(
      async () => (await t.api('GET', `/api/v1/devices/${d.deviceId}/commands`)).body.items[0].state === 'deferred',
    );
    await subscribeOwn(c, d.deviceId);
    await eventually(() => got.filter((m) => m.body.id === sent.body.id).length === 2);
  });

  it('changes desired config with set_config and publishes it retained', async () => {
    const d = await enrollDevice(t);
    const res = await t.api('POST', `/api/v1/devices/${d.deviceId}/commands`, {
      type: 'set_config',
      params: { heartbeatIntervalS: 15, logLevel: 'debug' },
    });
    expect(res.status).toBe(202);
    const device = (await t.api('GET', `/api/v1/devices/${d.deviceId}`)).body;
    expect(device.config).toEqual({ revision: 2, heartbeatIntervalS: 15, logLevel: 'debug' });
    const c = await connectDevice(t.app, d);
    clients.push(c);
    const got = inbox(c);
    await subscribeOwn(c, d.deviceId);
    const config = await eventually(() => got.find((m) => m.topic.endsWith('/config') && m.retain));
    expect(config.body).toMatchObject({ v: 1, revision: 2, heartbeatIntervalS: 15, logLevel: 'debug' });
  });

  it('expires commands after their deadline and refuses unknown types', async () => {
    const d = await enrollDevice(t);
    const sent = await t.api('POST', `/api/v1/devices/${d.deviceId}/commands`, { type: 'ping', ttlSeconds: 60 });
    clock.advance(61_000);
    expect(await t.app.commands.expireDue()).toBeGreaterThanOrEqual(1);
    const row = (await t.api('GET', `/api/v1/devices/${d.deviceId}/commands`)).body.items[0];
    expect(row).toMatchObject({ id: sent.body.id, state: 'expired' });
    const bad = await t.api('POST', `/api/v1/devices/${d.deviceId}/commands`, { type: 'format_disk' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain("'type'");
  });

  it("applies the replies of one batch in arrival order, each command's from the state the one before left", async () => {
    const a = await enrollDevice(t);
    const b = await enrollDevice(t);
    const c1 = (await t.api('POST', `/api/v1/devices/${a.deviceId}/commands`, { type: 'ping' })).body.id as string;
    const c2 = (await t.api('POST', `/api/v1/devices/${a.deviceId}/commands`, { type: 'diagnostics' })).body
      .id as string;
    const seen: string[] = [];
    const offs = [
      t.app.bus.on(
        'command.replied',
        (e) => void (e.deviceId === a.deviceId && seen.push(`${e.commandId === c1 ? 'c1' : 'c2'} ${e.state}`)),
      ),
      t.app.bus.on(
        'command.failed',
        (e) => void (e.deviceId === a.deviceId && seen.push(`${e.commandId === c1 ? 'c1' : 'c2'} failed event`)),
      ),
    ];
    const reply = (
      deviceId: string,
      commandId: string,
      status: 'ok' | 'error' | 'busy',
      extra: Record<string, unknown> = {},
    ) => t.app.commands.recordReply(deviceId, { v: 1, commandId, status, ...extra });
    // Added in one tick: one batch.
    const replies = () =>
      Promise.all([
        reply(a.deviceId, c1, 'busy'),
        reply(a.deviceId, c2, 'error', { error: { code: 'printer', message: 'no paper' } }),
        reply(a.deviceId, c1, 'ok', { result: { pong: true } }),
        reply(a.deviceId, c2, 'ok'), // too late: the command failed
        reply(a.deviceId, c1, 'error'), // too late: the command succeeded
        reply(b.deviceId, c1, 'error'), // another terminal's command
        reply(a.deviceId, 'cmd_unknown', 'ok'),
      ]);
    await replies();
    await replies(); // resent: changes nothing
    await new Promise((r) => setTimeout(r, 20));
    for (const off of offs) off();
    expect(seen).toEqual(['c1 deferred', 'c2 failed', 'c2 failed event', 'c1 succeeded']);
    const rows = (await t.api('GET', `/api/v1/devices/${a.deviceId}/commands`)).body.items as {
      id: string;
      state: string;
      result: unknown;
      error: unknown;
    }[];
    expect(rows.find((r) => r.id === c1)).toMatchObject({ state: 'succeeded', result: { pong: true }, error: null });
    expect(rows.find((r) => r.id === c2)).toMatchObject({
      state: 'failed',
      result: null,
      error: { code: 'printer', message: 'no paper' },
    });
    const events = await t.app.db
      .selectFrom('outbox_events')
      .select(['type', 'subject_id', 'data'])
      .where('subject_id', 'in', [c1, c2])
      .execute();
    expect(events.map((e) => [e.type, e.subject_id])).toEqual([['command.failed', c2]]);
    expect(events[0].data).toMatchObject({
      deviceId: a.deviceId,
      commandId: c2,
      commandType: 'diagnostics',
      state: 'failed',
      error: { code: 'printer', message: 'no paper' },
    });
  });

  it("ignores a reply for another terminal's command", async () => {
    const a = await enrollDevice(t);
    const b = await enrollDevice(t);
    const sent = await t.api('POST', `/api/v1/devices/${a.deviceId}/commands`, { type: 'ping' });
    const c = await connectDevice(t.app, b);
    clients.push(c);
    await new Promise<void>((r) =>
      c.publish(
        `fleet/${b.deviceId}/reply`,
        JSON.stringify({ v: 1, commandId: sent.body.id, status: 'ok' }),
        { qos: 1 },
        () => r(),
      ),
    );
    expect((await t.api('GET', `/api/v1/devices/${a.deviceId}/commands`)).body.items[0].state).toBe('queued');
  });
});
