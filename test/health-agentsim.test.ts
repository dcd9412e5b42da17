// Health rules against agent-sim terminals with failure profiles: the faults a
// POS estate really has (tamper, reboot loops, printer failures) raise the
// matching alerts end to end over MQTT.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../agent-sim/clock.ts';
import { startFleet, type FleetHandle } from '../agent-sim/fleet.ts';
import { randomChars } from '../server/lib/ids.ts';
import { startTestApp, type TestApp } from './helpers/app.ts';
import { dbKind } from './helpers/db.ts';

// Fixed seeds: the same fleet (and the same faults) every run.
const CASES = [
  { profile: 'tamper@1', rules: ['rule_tamper'], severity: 'critical', seed: 9101 },
  { profile: 'reboot-loop@1', rules: ['rule_reboot_loop'], severity: undefined, seed: 9102 },
  {
    profile: 'failing-printer@1',
    rules: ['rule_printer_fault', 'rule_printer_paper'],
    severity: undefined,
    seed: 9103,
  },
] as const;

describe(`health rules with agent-sim failure profiles (${dbKind()})`, { timeout: 120_000 }, () => {
  let t: TestApp;
  const fleets: FleetHandle[] = [];
  const simClock = manualClock(Date.UTC(2026, 0, 5, 9, 0, 0));
  const merchants = new Map<string, string>();

  beforeAll(async () => {
    t = await startTestApp();
    for (const c of CASES) {
      const m = await t.api('POST', '/api/v1/merchants', { name: `${c.profile} ${randomChars(4)}`, timezone: 'UTC' });
      merchants.set(c.profile, m.body.id);
      const tok = await t.api('POST', '/api/v1/enrollment-tokens', { merchantId: m.body.id });
      const f = await startFleet({
        server: t.app.baseUrl,
        enrollToken: tok.body.token,
        terminals: 2,
        models: ['T1'],
        seed: c.seed,
        clock: simClock,
        stateDir: null,
        rampPerSecond: 0,
        profiles: c.profile,
      });
      fleets.push(f);
      await f.started;
      await f.waitForOnline(2, 30_000);
    }
  }, 120_000);
  afterAll(async () => {
    for (const f of fleets) await f.stop();
    await t.stop();
  });

  it('raises the alert each failure profile should cause, for the terminals that have it', async () => {
    const seen = new Map<string, { ruleId: string; severity: string }[]>();
    const pending = () =>
      CASES.filter((c) => !(seen.get(c.profile) ?? []).some((a) => (c.rules as readonly string[]).includes(a.ruleId)));
    for (let step = 0; step < 1_500 && pending().length > 0; step++) {
      await simClock.advance(60_000);
      await new Promise((r) => setTimeout(r, 5));
      if (step % 20 !== 19) continue;
      await t.app.health.drain();
      for (const c of pending()) {
        const res = await t.api('GET', `/api/v1/alerts?merchant=${merchants.get(c.profile)}&state=active&limit=100`);
        seen.set(c.profile, res.body.items);
      }
    }
    for (const c of CASES) {
      const alerts = seen.get(c.profile) ?? [];
      const hit = alerts.find((a) => (c.rules as readonly string[]).includes(a.ruleId));
      expect(
        hit,
        `${c.profile} → ${c.rules.join('|')} (saw ${alerts.map((a) => a.ruleId).join(', ') || 'nothing'})`,
      ).toBeDefined();
      if (c.severity) expect(hit!.severity).toBe(c.severity);
    }
    // A healthy merchant's terminals raise no tamper: alerts stay with the profile that causes them.
    const tamperElsewhere = [...seen.entries()]
      .filter(([p]) => p !== 'tamper@1')
      .flatMap(([, a]) => a)
      .filter((a) => a.ruleId === 'rule_tamper');
    expect(tamperElsewhere).toEqual([]);
  });
});
