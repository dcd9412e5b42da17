import { describe, expect, it } from 'vitest';
import { planFleet } from './plan.ts';
import { parseProfiles, profileFor } from './profiles.ts';

describe('failure profiles', () => {
  it('parses names, arguments and shares', () => {
    expect(parseProfiles('failing-printer@0.1, install-fail:0.3,bad-firmware:2.0.0@0.05')).toEqual([
      { name: 'failing-printer', arg: undefined, fraction: 0.1 },
      { name: 'install-fail', arg: '0.3', fraction: 1 },
      { name: 'bad-firmware', arg: '2.0.0', fraction: 0.05 },
    ]);
    expect(parseProfiles(['tamper', 'busy'])).toHaveLength(2);
    expect(parseProfiles(undefined)).toEqual([]);
  });

  it('refuses what it does not know, with a clear message', () => {
    expect(() => parseProfiles('melting')).toThrow(/unknown profile "melting"/);
    expect(() => parseProfiles('tamper@2')).toThrow(/between 0 and 1/);
    expect(() => parseProfiles('bad-firmware')).toThrow(/needs an argument/);
    expect(() => parseProfiles('install-fail:lots')).toThrow(/rate/);
  });

  it('applies a profile to about its share of the fleet', () => {
    const specs = parseProfiles('failing-printer@0.1');
    const hit = Array.from({ length: 2000 }, (_, i) => profileFor(specs, 7, i)).filter((p) => p.failingPrinter).length;
    expect(hit).toBeGreaterThan(150);
    expect(hit).toBeLessThan(250);
  });

  it('composes profiles on one terminal', () => {
    const p = profileFor(parseProfiles('clock-drift,install-fail:0.5,bad-firmware:2.0.0,busy'), 1, 0);
    expect(p.names).toEqual(['clock-drift', 'install-fail:0.5', 'bad-firmware:2.0.0', 'busy']);
    expect(Math.abs(p.clockOffsetMs)).toBeGreaterThanOrEqual(60_000);
    expect(p.installFailRate).toBe(0.5);
    expect(p.badFirmware).toEqual(['2.0.0']);
    expect(p.busyRate).toBe(0.7);
  });
});

describe('fleet plan', () => {
  const opts = { terminals: 300, merchants: 7, profiles: 'flaky-network@0.2,tamper@0.05,reader-wear@0.3', seed: 7 };

  it('is the same fleet for the same seed', () => {
    expect(planFleet(opts)).toEqual(planFleet(opts));
  });

  it('is another fleet for another seed', () => {
    const a = planFleet(opts);
    const b = planFleet({ ...opts, seed: 8 });
    expect(a.terminals.map((t) => t.model)).not.toEqual(b.terminals.map((t) => t.model));
    expect(a.terminals[0].serial).not.toBe(b.terminals[0].serial);
  });

  it('gives a worker slice exactly the terminals of the whole plan', () => {
    const whole = planFleet(opts);
    const slice = planFleet({ ...opts, range: { from: 100, to: 200 } });
    expect(slice.terminals).toEqual(whole.terminals.slice(100, 200));
  });

  it('uses only the models asked for, spread over merchants', () => {
    const plan = planFleet({ ...opts, models: ['T2', 'T3'] });
    expect(new Set(plan.terminals.map((t) => t.model))).toEqual(new Set(['T2', 'T3']));
    expect(new Set(plan.terminals.map((t) => t.merchantIndex)).size).toBe(7);
    expect(() => planFleet({ terminals: 1, models: ['T9'] })).toThrow(/unknown model T9/);
  });
});
