import { describe, expect, it } from 'vitest';
import {
  DELIVERY_STATES,
  DELIVERY_TRANSITIONS,
  OPEN_DELIVERY_STATES,
  RETRY_SCHEDULE_MS,
  afterFailure,
  canTransition,
  isFinished,
  type DeliveryState,
} from './delivery.states.ts';

describe('webhook delivery states', () => {
  it('allows exactly the transitions in the table', () => {
    for (const from of DELIVERY_STATES) {
      for (const to of DELIVERY_STATES) {
        expect(canTransition(from, to), `${from} → ${to}`).toBe(DELIVERY_TRANSITIONS[from].includes(to));
      }
    }
  });

  it('reaches every state from pending and can finish from every open state', () => {
    const seen = new Set<DeliveryState>(['pending']);
    const queue: DeliveryState[] = ['pending'];
    while (queue.length)
      for (const next of DELIVERY_TRANSITIONS[queue.shift()!])
        if (!seen.has(next)) {
          seen.add(next);
          queue.push(next);
        }
    expect([...seen].sort()).toEqual([...DELIVERY_STATES].sort());
    for (const s of OPEN_DELIVERY_STATES) expect(isFinished(s)).toBe(false);
    for (const s of ['delivered', 'exhausted', 'cancelled'] as const) {
      expect(isFinished(s)).toBe(true);
      expect(DELIVERY_TRANSITIONS[s]).toEqual(['pending']); // only a manual redelivery reopens it
    }
  });

  it('walks the retry schedule, then exhausts', () => {
    let now = 0;
    const delays: number[] = [];
    for (let attempt = 1; ; attempt++) {
      const next = afterFailure(attempt, now);
      if (next.state === 'exhausted') {
        expect(attempt).toBe(RETRY_SCHEDULE_MS.length + 1);
        break;
      }
      expect(next.state).toBe('failed');
      delays.push(next.nextAttemptAt! - now);
      now = next.nextAttemptAt!;
    }
    expect(delays).toEqual([5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000]);
  });
});
