// Webhook delivery state machine (HOUSE-RULES §6).
//   pending ──► delivering ──► delivered
//                  │  ▲  └───► exhausted   (the last scheduled retry failed)
//                  ▼  │
//                 failed                   (a retry is scheduled at next_attempt_at)
// `delivering` → `delivering`: a worker died mid-request; its lease expired and another claims it.
// `cancelled`: the endpoint was disabled while the delivery was open.
// A finished delivery goes back to `pending` only by manual redelivery.
export const DELIVERY_STATES = ['pending', 'delivering', 'failed', 'delivered', 'exhausted', 'cancelled'] as const;
export type DeliveryState = (typeof DELIVERY_STATES)[number];

export const DELIVERY_TRANSITIONS: Readonly<Record<DeliveryState, readonly DeliveryState[]>> = {
  pending: ['delivering', 'cancelled'],
  delivering: ['delivered', 'failed', 'exhausted', 'delivering', 'cancelled'],
  failed: ['delivering', 'cancelled'],
  delivered: ['pending'],
  exhausted: ['pending'],
  cancelled: ['pending'],
};

/** States in which the worker still owes an attempt. */
export const OPEN_DELIVERY_STATES = ['pending', 'delivering', 'failed'] as const satisfies readonly DeliveryState[];

export function canTransition(from: DeliveryState, to: DeliveryState): boolean {
  return DELIVERY_TRANSITIONS[from].includes(to);
}

/** Finished: no attempt is owed (a manual redelivery may reopen it). */
export function isFinished(state: DeliveryState): boolean {
  return !(OPEN_DELIVERY_STATES as readonly DeliveryState[]).includes(state);
}

/** Retry delays after the 1st, 2nd… failed attempt; after the last one the delivery is exhausted. */
export const RETRY_SCHEDULE_MS = [
  5_000,
  5 * 60_000,
  30 * 60_000,
  2 * 3_600_000,
  5 * 3_600_000,
  10 * 3_600_000,
  10 * 3_600_000,
] as const;

/** State and next attempt after a failed attempt; `attemptsInRound` counts the one just made. */
export function afterFailure(
  attemptsInRound: number,
  nowMs: number,
): { state: DeliveryState; nextAttemptAt: number | null } {
  const delay = RETRY_SCHEDULE_MS[attemptsInRound - 1];
  return delay === undefined
    ? { state: 'exhausted', nextAttemptAt: null }
    : { state: 'failed', nextAttemptAt: nowMs + delay };
}

export function assertTransition(from: string, to: DeliveryState): void {
  if (!canTransition(from as DeliveryState, to)) throw new Error(`delivery cannot go from ${from} to ${to}`);
}
