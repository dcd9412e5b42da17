// Ticket lifecycle (HOUSE-RULES §6): open → scheduled → in_progress →
// resolved | cancelled. Work may start without an appointment, and an open or
// scheduled ticket may be resolved (fixed remotely) or cancelled.
export const TICKET_STATES = ['open', 'scheduled', 'in_progress', 'resolved', 'cancelled'] as const;
export type TicketState = (typeof TICKET_STATES)[number];

export const TICKET_TRANSITIONS = {
  open: ['scheduled', 'in_progress', 'resolved', 'cancelled'],
  scheduled: ['in_progress', 'resolved', 'cancelled'],
  in_progress: ['resolved', 'cancelled'],
  resolved: [],
  cancelled: [],
} as const satisfies Record<TicketState, readonly TicketState[]>;

export function canTicketTransition(from: TicketState, to: TicketState): boolean {
  return (TICKET_TRANSITIONS[from] as readonly TicketState[]).includes(to);
}

export function isTicketTerminal(state: TicketState): boolean {
  return TICKET_TRANSITIONS[state].length === 0;
}

export const TICKET_KINDS = ['repair', 'part_replacement', 'battery_replacement', 'inspection'] as const;
export type TicketKind = (typeof TICKET_KINDS)[number];
export const PARTS = ['printer', 'card_reader', 'pinpad', 'battery', 'display', 'scanner', 'modem'] as const;
export type Part = (typeof PARTS)[number];

/** Time to resolve by severity: the SLA promised to merchants. */
export const SLA_HOURS = { critical: 4, warning: 24, info: 72 } as const;
