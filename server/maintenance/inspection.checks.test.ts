import { describe, expect, it } from 'vitest';
import { inspectDevice, newestVersions, type Vitals } from './inspection.checks.ts';

describe('inspection checks', () => {
  const now = new Date('2026-03-01T06:00:00Z');
  const newest = newestVersions([
    { model: 'T1', firmware: '2.0.0', apps: { payment: '5.1.0' } },
    { model: 'T1', firmware: '1.0.0', apps: { payment: '5.0.0' } },
  ]);
  const healthy: Vitals = {
    battery: { healthPct: 95, pct: 80 },
    printer: { state: 'ok' },
    net: { type: 'lte', signalDbm: -80, latencyMs: 50 },
    security: { patchLevel: '2026-02-15' },
  };
  it('passes a healthy, current terminal', () => {
    const r = inspectDevice(
      {
        model: 'T1',
        firmware: '2.0.0',
        apps: { payment: '5.1.0' },
        vitals: healthy,
        readerErrorRate: 0.01,
        presence: 'online',
        now,
      },
      newest,
    );
    expect(r.verdict).toBe('pass');
  });
  it('asks attention for old software and fails on hardware faults or a stale patch', () => {
    const old = inspectDevice(
      {
        model: 'T1',
        firmware: '1.0.0',
        apps: { payment: '5.0.0' },
        vitals: healthy,
        readerErrorRate: null,
        presence: 'online',
        now,
      },
      newest,
    );
    expect(old.verdict).toBe('attention');
    expect(old.checks.software.detail).toContain('firmware 1.0.0 < 2.0.0');
    const broken = inspectDevice(
      {
        model: 'T1',
        firmware: '2.0.0',
        apps: {},
        vitals: { ...healthy, printer: { state: 'jam' }, security: { patchLevel: '2025-10-01' } },
        readerErrorRate: 0.3,
        presence: 'offline',
        now,
      },
      newest,
    );
    expect(broken.verdict).toBe('fail');
    expect(Object.values(broken.checks).filter((c) => c.verdict === 'fail')).toHaveLength(4);
  });
  it('compares with the newest released in the catalogue, for the models each firmware lists', () => {
    const withCatalogue = newestVersions(
      [{ model: 'T1', firmware: '2.0.0', apps: { payment: '5.1.0' } }],
      [
        { component: 'firmware', version: '2.1.0', models: ['T1'] },
        { component: 'firmware', version: '3.0.0', models: ['T2'] },
        { component: 'app:payment', version: '5.2.0', models: ['T1', 'T2'] },
      ],
    );
    const r = inspectDevice(
      {
        model: 'T1',
        firmware: '2.0.0',
        apps: { payment: '5.1.0' },
        vitals: healthy,
        readerErrorRate: null,
        presence: 'online',
        now,
      },
      withCatalogue,
    );
    expect(r.checks.software).toEqual({
      verdict: 'attention',
      detail: 'firmware 2.0.0 < 2.1.0; payment 5.1.0 < 5.2.0',
    });
    expect(withCatalogue.firmware.get('T2')).toBe('3.0.0');
  });
});
