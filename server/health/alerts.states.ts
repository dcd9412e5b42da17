// Alert lifecycle (HOUSE-RULES §6): open → acknowledged → resolved; an open
// alert may also be resolved directly (auto-clear or by hand).
export const ALERT_STATES = ['open', 'acknowledged', 'resolved'] as const;
export type AlertState = (typeof ALERT_STATES)[number];

export const ALERT_TRANSITIONS = {
  open: ['acknowledged', 'resolved'],
  acknowledged: ['resolved'],
  resolved: [],
} as const satisfies Record<AlertState, readonly AlertState[]>;

export function canAlertTransition(from: AlertState, to: AlertState): boolean {
  return (ALERT_TRANSITIONS[from] as readonly AlertState[]).includes(to);
}

export function isAlertTerminal(state: AlertState): boolean {
  return ALERT_TRANSITIONS[state].length === 0;
}
