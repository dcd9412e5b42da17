import { describe, expect, it } from 'vitest';
import { TICKET_STATES, TICKET_TRANSITIONS, canTicketTransition, isTicketTerminal } from './tickets.states.ts';

describe('ticket state machine', () => {
  it('walks every transition in the table and refuses the rest', () => {
    for (const from of TICKET_STATES) {
      for (const to of TICKET_STATES) {
        expect(canTicketTransition(from, to), `${from} → ${to}`).toBe(
          (TICKET_TRANSITIONS[from] as readonly string[]).includes(to),
        );
      }
    }
    expect(canTicketTransition('in_progress', 'scheduled')).toBe(false);
    expect(TICKET_STATES.filter(isTicketTerminal)).toEqual(['resolved', 'cancelled']);
  });
});
