import { describe, expect, it } from 'vitest';
import {
  DEVICE_STATES,
  DEVICE_TRANSITIONS,
  ROLLOUT_STATES,
  ROLLOUT_TRANSITIONS,
  canDevice,
  canRollout,
  isDeviceFinal,
  isRolloutFinal,
  OTA_TO_DEVICE,
} from './states.ts';
import { assignWaves } from './waves.ts';

describe('rollout state machine', () => {
  it('allows exactly the transitions of its table', () => {
    for (const a of ROLLOUT_STATES)
      for (const b of ROLLOUT_STATES) expect(canRollout(a, b), `${a}→${b}`).toBe(ROLLOUT_TRANSITIONS[a].includes(b));
    expect(ROLLOUT_STATES.filter(isRolloutFinal)).toEqual(['completed', 'cancelled', 'failed']);
  });
});

describe('rollout device state machine', () => {
  it('allows exactly the transitions of its table', () => {
    for (const a of DEVICE_STATES)
      for (const b of DEVICE_STATES) expect(canDevice(a, b), `${a}→${b}`).toBe(DEVICE_TRANSITIONS[a].includes(b));
    expect(DEVICE_STATES.filter(isDeviceFinal)).toEqual(['succeeded', 'failed', 'timed_out', 'skipped', 'cancelled']);
  });
  it('reaches succeeded only through verifying, and every state can be cancelled or ends', () => {
    for (const s of DEVICE_STATES) {
      if (s !== 'verifying') expect(canDevice(s, 'succeeded')).toBe(false);
      if (!isDeviceFinal(s)) expect(canDevice(s, 'cancelled')).toBe(true);
    }
  });
  it('walks the happy path and a busy terminal', () => {
    const path = [
      'pending',
      'queued',
      'sent',
      'accepted',
      'downloading',
      'installing',
      'rebooting',
      'verifying',
      'succeeded',
    ] as const;
    for (let i = 1; i < path.length; i++) expect(canDevice(path[i - 1], path[i])).toBe(true);
    expect(canDevice('sent', 'deferred') && canDevice('deferred', 'queued') && canDevice('queued', 'sent')).toBe(true);
    for (const s of Object.values(OTA_TO_DEVICE)) expect(DEVICE_STATES).toContain(s);
  });
});

describe('wave membership', () => {
  const ids = Array.from({ length: 200 }, (_, i) => `dev_${i}`);
  it('fills cumulative waves and is stable for a seed', () => {
    const w = assignWaves(ids, [1, 10, 50, 100], 'seed-a');
    const sizes = [0, 1, 2, 3].map((i) => [...w.values()].filter((v) => v === i).length);
    expect(sizes).toEqual([2, 18, 80, 100]);
    expect(assignWaves([...ids].reverse(), [1, 10, 50, 100], 'seed-a')).toEqual(w);
    const other = assignWaves(ids, [1, 10, 50, 100], 'seed-b');
    expect([...other.entries()].filter(([, v]) => v === 0)).not.toEqual([...w.entries()].filter(([, v]) => v === 0));
  });
  it('puts canaries in the first wave', () => {
    const w = assignWaves(ids, [1, 100], 'x', ['dev_150', 'dev_7']);
    expect(w.get('dev_150')).toBe(0);
    expect(w.get('dev_7')).toBe(0);
  });
  it('keeps a growing cohort’s earlier members in their waves mostly', () => {
    const a = assignWaves(ids.slice(0, 100), [50, 100], 's');
    const b = assignWaves(ids, [50, 100], 's');
    const moved = ids.slice(0, 100).filter((id) => a.get(id) === 0 && b.get(id) !== 0).length;
    expect(moved).toBeLessThan(30);
  });
});
