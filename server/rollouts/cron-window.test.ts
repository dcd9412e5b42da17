import { describe, expect, it } from 'vitest';
import { MaintenanceWindow, isTrading, localTime, parseCron } from './cron-window.ts';

const at = (iso: string) => Date.parse(iso);

describe('maintenance windows', () => {
  const nightly = new MaintenanceWindow({ cron: '0 2 * * *', durationMinutes: 180 });

  it('opens at 02:00 local time for three hours, in each terminal’s own timezone', () => {
    // 01:30 UTC is 02:30 in Berlin (winter, UTC+1) but 20:30 the day before in New York.
    expect(nightly.isOpen(at('2026-01-15T01:30:00Z'), 'Europe/Berlin')).toBe(true);
    expect(nightly.isOpen(at('2026-01-15T01:30:00Z'), 'America/New_York')).toBe(false);
    expect(nightly.isOpen(at('2026-01-15T07:30:00Z'), 'America/New_York')).toBe(true); // 02:30 EST
    expect(nightly.isOpen(at('2026-01-15T04:00:00Z'), 'Europe/Berlin')).toBe(false); // 05:00, closed
    expect(nightly.isOpen(at('2026-01-14T17:10:00Z'), 'Asia/Tokyo')).toBe(true); // 02:10 JST
  });

  it('follows daylight-saving changes', () => {
    // Berlin is UTC+2 in summer: 02:30 local = 00:30 UTC.
    expect(nightly.isOpen(at('2026-07-15T00:30:00Z'), 'Europe/Berlin')).toBe(true);
    expect(nightly.isOpen(at('2026-07-15T01:30:00Z'), 'Europe/Berlin')).toBe(true);
    expect(nightly.isOpen(at('2026-07-15T03:30:00Z'), 'Europe/Berlin')).toBe(false);
    // 2026-03-29: Berlin skips 02:00-03:00; a 02:00 start never fires that day.
    expect(nightly.isOpen(at('2026-03-29T01:30:00Z'), 'Europe/Berlin')).toBe(false); // 03:30 CEST
    const next = nightly.nextOpen(at('2026-03-28T23:00:00Z'), 'Europe/Berlin');
    expect(new Date(next!).toISOString()).toBe('2026-03-30T00:00:00.000Z'); // 02:00 CEST next day
    // 2026-11-01 New York falls back; 02:00 EST exists once.
    const ny = nightly.nextOpen(at('2026-11-01T04:00:00Z'), 'America/New_York');
    expect(new Date(ny!).toISOString()).toBe('2026-11-01T07:00:00.000Z');
  });

  it('finds the next opening and says when it is open now', () => {
    const from = at('2026-01-15T12:00:00Z');
    expect(new Date(nightly.nextOpen(from, 'UTC')!).toISOString()).toBe('2026-01-16T02:00:00.000Z');
    expect(nightly.nextOpen(at('2026-01-16T03:00:00Z'), 'UTC')).toBe(at('2026-01-16T03:00:00Z'));
  });

  it('stays shut during trading hours when asked to', () => {
    const w = new MaintenanceWindow({ cron: '0 * * * *', durationMinutes: 60, outsideTradingHours: true });
    const hours = [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'] as const, open: '08:00', close: '20:00' }].map((h) => ({
      ...h,
      days: [...h.days],
    }));
    expect(w.isOpen(at('2026-01-15T10:30:00Z'), 'UTC', hours)).toBe(false); // Thursday 10:30
    expect(w.isOpen(at('2026-01-15T21:30:00Z'), 'UTC', hours)).toBe(true);
    expect(w.isOpen(at('2026-01-17T10:30:00Z'), 'UTC', hours)).toBe(true); // Saturday
    expect(new Date(w.nextOpen(at('2026-01-15T10:30:00Z'), 'UTC', hours)!).toISOString()).toBe(
      '2026-01-15T20:00:00.000Z',
    );
  });

  it('handles trading spans past midnight', () => {
    const bar = [{ days: ['fri' as const], open: '18:00', close: '02:00' }];
    expect(isTrading(bar, localTime(at('2026-01-16T23:00:00Z'), 'UTC'))).toBe(true); // Fri 23:00
    expect(isTrading(bar, localTime(at('2026-01-17T01:00:00Z'), 'UTC'))).toBe(true); // Sat 01:00
    expect(isTrading(bar, localTime(at('2026-01-17T03:00:00Z'), 'UTC'))).toBe(false);
  });

  it('parses cron lists, ranges and steps and refuses nonsense', () => {
    const c = parseCron('*/15 1-3 * * 1,5');
    expect([...c.minute]).toEqual([0, 15, 30, 45]);
    expect([...c.hour]).toEqual([1, 2, 3]);
    expect(() => parseCron('0 25 * * *')).toThrow();
    expect(() => parseCron('0 2 * *')).toThrow();
  });
});
