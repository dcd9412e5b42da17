import { describe, expect, it } from 'vitest';
import {
  PRESENCE_STATES,
  PRESENCE_TRANSITIONS,
  canPresenceTransition,
  isPresenceTerminal,
  presenceTarget,
  type PresenceInputs,
} from './presence.states.ts';

describe('presence state machine', () => {
  it('walks every transition in the table and refuses the rest', () => {
    for (const from of PRESENCE_STATES) {
      for (const to of PRESENCE_STATES) {
        const allowed = (PRESENCE_TRANSITIONS[from] as readonly string[]).includes(to);
        expect(canPresenceTransition(from, to), `${from} → ${to}`).toBe(allowed);
      }
      expect(isPresenceTerminal(from)).toBe(false);
    }
    expect(canPresenceTransition('offline', 'late')).toBe(false);
    expect(canPresenceTransition('missing', 'offline')).toBe(false);
  });

  const base: PresenceInputs = {
    now: 0,
    lastSeenAt: 0,
    intervalS: 60,
    connected: true,
    disconnectedAt: null,
    graceMs: 60_000,
  };
  const at = (ms: number, extra: Partial<PresenceInputs> = {}) => presenceTarget({ ...base, now: ms, ...extra });

  it('derives online, late, offline and missing from silence', () => {
    expect(at(60_000)).toBe('online');
    expect(at(90_000)).toBe('late');
    expect(at(209_000)).toBe('late');
    expect(at(210_000)).toBe('offline');
    expect(at(24 * 3600_000)).toBe('missing');
  });

  it('goes offline after a disconnect only once the grace period has passed', () => {
    const dropped = { connected: false, disconnectedAt: 10_000 };
    expect(at(30_000, dropped)).toBe('online');
    expect(at(70_000, dropped)).toBe('offline');
    // A heartbeat after the disconnect (reconnected elsewhere) outweighs it.
    expect(at(70_000, { ...dropped, lastSeenAt: 20_000 })).toBe('online');
  });

  it('every target the sweep can compute is reachable from every state or equal to it', () => {
    for (const from of PRESENCE_STATES) {
      for (const now of [0, 90_000, 210_000, 24 * 3600_000]) {
        const to = at(now);
        if (to !== from && from !== 'missing' && !(from === 'offline' && to === 'late'))
          expect(canPresenceTransition(from, to)).toBe(true);
      }
    }
  });
});
