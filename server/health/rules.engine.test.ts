import { describe, expect, it } from 'vitest';
import { FLAP_HOLD_MS, initialRuleState, isDefaultState, step, type RuleSpec, type RuleState } from './rules.engine.ts';

const rule = (over: Partial<RuleSpec> = {}): RuleSpec => ({
  id: 'r',
  metric: 'battery.pct',
  comparison: '<',
  threshold: 15,
  clearThreshold: 25,
  conditions: [],
  forCount: 2,
  forSeconds: null,
  ...over,
});

function run(
  r: RuleSpec,
  values: (number | undefined)[],
  startAt = 0,
  stepMs = 60_000,
  extra: Record<string, unknown> = {},
) {
  let s: RuleState = initialRuleState();
  const effects: (string | null)[] = [];
  values.forEach((v, i) => {
    const res = step(r, s, { battery: { pct: v, ...extra } }, startAt + i * stepMs);
    s = res.state;
    effects.push(res.effect);
  });
  return { s, effects };
}

describe('rule engine', () => {
  it('fires after N consecutive breaches and resets on a good reading', () => {
    expect(run(rule(), [10, 30, 10, 10]).effects).toEqual([null, null, null, 'open']);
  });

  it('touches while breaching, holds in the hysteresis band, clears past the clear threshold after N', () => {
    const { effects, s } = run(rule(), [10, 10, 12, 20, 24, 30, 20, 30, 30]);
    expect(effects).toEqual([null, 'open', 'touch', null, null, null, null, null, 'resolve']);
    expect(isDefaultState({ ...s, opens: [] })).toBe(true);
  });

  it('fires on a breach lasting a duration', () => {
    const r = rule({ forCount: 1, forSeconds: 300 });
    expect(run(r, [10, 10, 10, 10, 10, 10]).effects).toEqual([null, null, null, null, null, 'open']);
  });

  it('honours extra conditions (battery low only while not charging)', () => {
    const r = rule({ forCount: 1, conditions: [{ metric: 'battery.charging', comparison: '==', value: false }] });
    expect(run(r, [10], 0, 60_000, { charging: true }).effects).toEqual([null]);
    expect(run(r, [10], 0, 60_000, { charging: false }).effects).toEqual(['open']);
  });

  it('suppresses flapping: after three openings in an hour the alert stays open until clear for the hold time', () => {
    const r = rule({ forCount: 1, clearThreshold: null });
    const flappy = [10, 30, 10, 30, 10, 30, 10, 30];
    const { effects, s } = run(r, flappy);
    expect(effects).toEqual(['open', 'resolve', 'open', 'resolve', 'open', null, 'touch', null]);
    const later = step(r, s, { battery: { pct: 30 } }, 7 * 60_000 + FLAP_HOLD_MS);
    expect(later.effect).toBe('resolve');
  });

  it('does nothing for a healthy reading from the default state', () => {
    const res = step(rule(), initialRuleState(), { battery: { pct: 80 } }, 0);
    expect(res.effect).toBeNull();
    expect(isDefaultState(res.state)).toBe(true);
  });
});
