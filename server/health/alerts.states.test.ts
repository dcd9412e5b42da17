import { describe, expect, it } from 'vitest';
import { ALERT_STATES, ALERT_TRANSITIONS, canAlertTransition, isAlertTerminal } from './alerts.states.ts';

describe('alert state machine', () => {
  it('walks every transition in the table and refuses the rest', () => {
    for (const from of ALERT_STATES) {
      for (const to of ALERT_STATES) {
        expect(canAlertTransition(from, to), `${from} → ${to}`).toBe(
          (ALERT_TRANSITIONS[from] as readonly string[]).includes(to),
        );
      }
    }
    expect(canAlertTransition('open', 'acknowledged')).toBe(true);
    expect(canAlertTransition('acknowledged', 'open')).toBe(false);
    expect(ALERT_STATES.filter(isAlertTerminal)).toEqual(['resolved']);
  });
});
