import { describe, expect, it } from 'vitest';
import { heartbeatSchema } from '../protocol/index.ts';
import { isTrading, localTime, planMerchants, type SimMerchant } from './merchants.ts';
import { modelSpec } from './models.ts';
import { healthyProfile, type TerminalProfile } from './profiles.ts';
import { streamRng } from './rng.ts';
import { VitalsModel, type VitalsEvent } from './vitals.ts';

const HOUR = 3_600_000;
// Monday 2026-01-05 00:00 in Berlin.
const MONDAY_BERLIN = Date.UTC(2026, 0, 4, 23, 0, 0);
const shop: SimMerchant = {
  index: 0,
  name: 'shop',
  timezone: 'Europe/Berlin',
  lat: 52.5,
  lon: 13.4,
  tradingHours: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], open: '08:00', close: '20:00' }],
};

function model(name: string, profile: Partial<TerminalProfile> = {}, seed = 1, merchant = shop): VitalsModel {
  return new VitalsModel({
    model: modelSpec(name),
    merchant,
    profile: { ...healthyProfile(), ...profile },
    rng: streamRng(seed, 'v'),
    startMs: MONDAY_BERLIN,
  });
}

/** Runs `hours` of simulated time in heartbeat-sized steps, collecting snapshots and events. */
function run(v: VitalsModel, hours: number, stepMs = 30 * 60_000) {
  const snaps = [];
  const events: VitalsEvent[] = [];
  for (let t = 0; t < hours * HOUR; t += stepMs) {
    v.advance(stepMs);
    snaps.push(v.snapshot());
    events.push(...v.drainEvents());
  }
  return { snaps, events };
}

describe('trading hours', () => {
  it('reads local time in the merchant timezone', () => {
    expect(localTime('Europe/Berlin', MONDAY_BERLIN + 9 * HOUR)).toEqual({ day: 0, minutes: 9 * 60 });
    expect(localTime('America/New_York', MONDAY_BERLIN + 9 * HOUR)).toEqual({ day: 0, minutes: 3 * 60 });
    expect(localTime('America/New_York', MONDAY_BERLIN + 2 * HOUR)).toEqual({ day: 6, minutes: 20 * 60 });
  });

  it('handles spans that close after midnight', () => {
    const bar = [{ days: ['fri' as const], open: '18:00', close: '02:00' }];
    expect(isTrading(bar, { day: 4, minutes: 23 * 60 })).toBe(true);
    expect(isTrading(bar, { day: 5, minutes: 60 })).toBe(true);
    expect(isTrading(bar, { day: 5, minutes: 3 * 60 })).toBe(false);
    expect(isTrading(bar, { day: 3, minutes: 23 * 60 })).toBe(false);
  });

  it('plans merchants across timezones', () => {
    const zones = new Set(planMerchants(6, 1).map((m) => m.timezone));
    expect(zones.size).toBe(6);
  });
});

describe('vitals model', () => {
  it('reports what each model has, and every snapshot is a valid heartbeat', () => {
    for (const name of ['T1', 'T2', 'T3']) {
      const { snaps } = run(model(name), 24);
      for (const s of snaps) {
        const hb = { v: 1, seq: 0, bootId: 'b', ts: 1, firmware: '1.0.0', apps: {}, ...s };
        expect(heartbeatSchema.safeParse(hb).success).toBe(true);
      }
      const last = snaps.at(-1)!;
      expect(last.battery !== undefined).toBe(name !== 'T2');
      expect(last.printer !== undefined).toBe(name !== 'T3');
      expect(last.geo !== undefined).toBe(name !== 'T2');
      expect(modelSpec(name).nets).toContain(last.net?.type);
      expect(last.net?.signalDbm === undefined).toBe(last.net?.type === 'ethernet');
    }
  });

  it('trades only while the merchant is open', () => {
    const v = model('T2');
    v.advance(6 * HOUR); // 06:00 local, closed
    v.snapshot();
    v.advance(HOUR);
    expect(v.snapshot().tx?.count).toBe(0);
    v.advance(3 * HOUR); // 08:00-10:00 open
    expect(v.snapshot().tx?.count).toBeGreaterThan(20);
  });

  it('drains the battery while trading and charges it overnight', () => {
    const v = model('T1');
    v.advance(8 * HOUR);
    const atOpen = v.batteryPct;
    v.advance(6 * HOUR);
    expect(v.batteryPct).toBeLessThan(atOpen);
    expect(v.charging).toBe(false);
    v.advance(10 * HOUR); // 00:00 next day, docked since 20:00
    expect(v.charging).toBe(true);
    expect(v.batteryPct).toBeGreaterThan(90);
  });

  it('wears a degrading battery much faster than a healthy one', () => {
    const healthy = model('T1');
    const degrading = model('T1', { degradingBattery: true });
    const h0 = healthy.batteryHealthPct;
    const d0 = degrading.batteryHealthPct;
    run(healthy, 24 * 14, HOUR);
    run(degrading, 24 * 14, HOUR);
    expect(h0 - healthy.batteryHealthPct).toBeLessThan(1);
    expect(d0 - degrading.batteryHealthPct).toBeGreaterThan(4);
  });

  it('jams a failing printer and raises an event', () => {
    const { events, snaps } = run(model('T2', { failingPrinter: true }), 24 * 3);
    expect(events.some((e) => e.type === 'printer_jam')).toBe(true);
    expect(snaps.some((s) => s.printer?.state === 'jam')).toBe(true);
    const healthy = run(model('T2'), 24 * 3).events.filter((e) => e.type === 'printer_jam');
    expect(healthy.length).toBeLessThan(2);
  });

  it('raises reader errors on a worn reader', () => {
    const errRate = (v: VitalsModel) => {
      const { snaps } = run(v, 24 * 7, HOUR);
      const sum = (k: 'chipOk' | 'chipErr') => snaps.reduce((n, s) => n + (s.reader?.[k] ?? 0), 0);
      return sum('chipErr') / (sum('chipOk') + sum('chipErr'));
    };
    expect(errRate(model('T2', { readerWear: true }))).toBeGreaterThan(3 * errRate(model('T2')));
  });

  it('fires a tamper event once, and reports it from then on', () => {
    const v = model('T3', { tamperAfterMs: 2 * HOUR });
    const { events, snaps } = run(v, 6);
    expect(events.filter((e) => e.type === 'tamper')).toHaveLength(1);
    expect(snaps.at(-1)?.security?.tamper).toBe(true);
    expect(snaps[0].security?.tamper).toBe(false);
  });

  it('counts uptime from boot and grows storage use', () => {
    const v = model('T3');
    const before = v.storageUsedMb;
    v.advance(5 * HOUR);
    expect(v.snapshot().sys?.uptimeS).toBe(5 * 3600);
    v.onBoot();
    expect(v.snapshot().sys?.uptimeS).toBe(0);
    expect(v.storageUsedMb).toBeGreaterThan(before);
  });

  it('gives the same vitals for the same seed', () => {
    expect(run(model('T1', {}, 42), 48)).toEqual(run(model('T1', {}, 42), 48));
    expect(run(model('T1', {}, 42), 48)).not.toEqual(run(model('T1', {}, 43), 48));
  });
});
