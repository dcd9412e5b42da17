import { describe, expect, it } from 'vitest';
import { isoTime } from './iso-time.ts';

describe('isoTime', () => {
  it('writes what toISOString writes, across seconds, slots, epoch and negative times', () => {
    const samples = [
      0,
      1,
      999,
      1000,
      -1,
      -1001,
      Date.UTC(2026, 10, 26, 23, 59, 59, 999),
      Date.UTC(2026, 10, 27),
      Date.UTC(1969, 11, 31, 23, 59, 59, 500),
    ];
    for (let t = Date.UTC(2026, 0, 1); t < Date.UTC(2026, 0, 1) + 20_000; t += 137) samples.push(t);
    for (let k = 0; k < 2000; k++) samples.push(Math.floor(Math.random() * 4e12) - 1e12);
    for (const ms of samples) expect(isoTime(ms)).toBe(new Date(ms).toISOString());
  });

  it('falls back to toISOString for years it keeps no table for, and refuses what Date refuses', () => {
    const far = Date.UTC(12000, 0, 1, 0, 0, 0, 7);
    expect(isoTime(far)).toBe(new Date(far).toISOString());
    expect(isoTime(1.5)).toBe(new Date(1.5).toISOString());
    expect(() => isoTime(8.64e15 + 1)).toThrow(RangeError);
  });
});
