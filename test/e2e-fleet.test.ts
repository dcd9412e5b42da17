// End to end: the real server in-process and a fleet of agent-sim terminals
// against it, over HTTP enrolment and MQTT only.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../agent-sim/clock.ts';
import { startFleet, type FleetHandle } from '../agent-sim/fleet.ts';
import { planFleet } from '../agent-sim/plan.ts';
import { heartbeatSchema } from '../protocol/messages.ts';
import { eventually, startTestApp, type TestApp } from './helpers/app.ts';
import { dbKind } from './helpers/db.ts';

const TERMINALS = 24;

describe(`agent-sim fleet against the server (${dbKind()})`, () => {
  let t: TestApp;
  let fleet: FleetHandle;
  const clock = manualClock(Date.now());

  beforeAll(async () => {
    t = await startTestApp();
    const m = await t.api('POST', '/api/v1/merchants', { name: 'Fleet shop', timezone: 'Europe/Lisbon' });
    const tok = await t.api('POST', '/api/v1/enrollment-tokens', { merchantId: m.body.id, tags: ['e2e'] });
    fleet = await startFleet({
      server: t.app.baseUrl,
      enrollToken: tok.body.token,
      terminals: TERMINALS,
      seed: 4101,
      clock,
      stateDir: null,
      rampPerSecond: 0,
      profiles: 'failing-printer@0.2',
    });
    await fleet.started;
    await fleet.waitForOnline(TERMINALS, 30_000);
  });
  afterAll(async () => {
    await fleet?.stop();
    await t?.stop();
  });

  it('enrols every terminal and receives valid heartbeats from each', async () => {
    await fleet.heartbeatNow();
    const devices = await eventually(async () => {
      const res = await t.api('GET', '/api/v1/devices?tag=e2e&limit=500');
      return (
        res.body.items.length === TERMINALS &&
        res.body.items.every((d: { lastSeenAt: string | null; connected: boolean }) => d.lastSeenAt && d.connected) &&
        res.body.items
      );
    }, 10_000);
    const serials = new Set(fleet.plan.terminals.map((p) => p.serial));
    for (const d of devices) {
      expect(serials.has(d.serial)).toBe(true);
      expect(d.firmware).toBe('1.0.0');
      expect(d.connected).toBe(true);
    }
    expect(await t.app.metrics.mqttInvalid.get().then((m) => m.values.reduce((a, v) => a + v.value, 0))).toBe(0);
  });

  it('emits heartbeats that satisfy the protocol schema', () => {
    const agent = fleet.agents[0];
    const hb = (agent as unknown as { buildHeartbeat?: () => unknown }).buildHeartbeat?.();
    if (hb) expect(heartbeatSchema.safeParse(hb).success).toBe(true);
    expect(agent.seq).toBeGreaterThan(0);
  });

  it('answers every command type', async () => {
    const agent = fleet.agents[1];
    for (const type of ['ping', 'diagnostics', 'fetch_logs', 'set_config', 'reboot'] as const) {
      const params = type === 'set_config' ? { heartbeatIntervalS: 45 } : type === 'fetch_logs' ? { lines: 5 } : {};
      const sent = await t.api('POST', `/api/v1/devices/${agent.deviceId}/commands`, { type, params });
      expect(sent.status).toBe(202);
      const done = await eventually(async () => {
        const rows = (await t.api('GET', `/api/v1/devices/${agent.deviceId}/commands`)).body.items;
        const row = rows.find((r: { id: string }) => r.id === sent.body.id);
        return row?.state === 'succeeded' && row;
      }, 10_000);
      if (type === 'diagnostics') expect(done.result).toBeTruthy();
      if (type === 'fetch_logs') expect(JSON.stringify(done.result)).toContain('lines');
    }
    await eventually(() => agent.heartbeatIntervalS === 45);
  });

  it('reconnects every terminal after a server restart', async () => {
    const { mqttPort } = t.app;
    await t.stop();
    await fleet.waitFor((f) => f.stats().online === 0, { timeoutMs: 10_000, what: 'all offline' });
    t = await startTestApp({ config: { mqttPort }, adminToken: t.adminToken });
    for (let i = 0; i < 20 && fleet.stats().online < TERMINALS; i++) {
      await clock.advance(5_000);
      await new Promise((r) => setTimeout(r, 50));
    }
    await fleet.waitForOnline(TERMINALS, 20_000);
    const before = (await t.api('GET', '/api/v1/devices?tag=e2e&limit=500')).body.items.map(
      (d: { lastSeenAt: string }) => d.lastSeenAt,
    );
    await fleet.heartbeatNow();
    await eventually(async () => {
      const after = (await t.api('GET', '/api/v1/devices?tag=e2e&limit=500')).body.items.map(
        (d: { lastSeenAt: string }) => d.lastSeenAt,
      );
      return after.every((x: string, i: number) => x && x !== before[i]);
    }, 10_000);
  });

  it('plans the same fleet from the same seed', () => {
    const again = planFleet({ terminals: TERMINALS, seed: 4101, profiles: 'failing-printer@0.2' });
    expect(again.terminals.map((p) => [p.serial, p.model, p.profile.names])).toEqual(
      fleet.plan.terminals.map((p) => [p.serial, p.model, p.profile.names]),
    );
    const other = planFleet({ terminals: TERMINALS, seed: 4102, profiles: 'failing-printer@0.2' });
    expect(other.terminals.map((p) => p.serial)).not.toEqual(fleet.plan.terminals.map((p) => p.serial));
  });
});
