// Command delivery state machine. `deferred` is a terminal's "busy" reply: the
// command is still owed and is re-sent when the terminal next subscribes.
export const COMMAND_STATES = ['queued', 'sent', 'deferred', 'succeeded', 'failed', 'rejected', 'expired'] as const;
export type CommandState = (typeof COMMAND_STATES)[number];

// A reply may overtake our own bookkeeping of the send (the terminal answers
// before `sent` is written), so a queued command may go straight to a reply state.
export const COMMAND_TRANSITIONS: Readonly<Record<CommandState, readonly CommandState[]>> = {
  queued: ['sent', 'deferred', 'succeeded', 'failed', 'rejected', 'expired'],
  sent: ['sent', 'deferred', 'succeeded', 'failed', 'rejected', 'expired'],
  deferred: ['sent', 'succeeded', 'failed', 'rejected', 'expired'],
  succeeded: [],
  failed: [],
  rejected: [],
  expired: [],
};

/** States in which the terminal still owes an answer. */
export const OPEN_COMMAND_STATES: readonly CommandState[] = ['queued', 'sent', 'deferred'];

/** Open states from which `to` may be reached (a reply races the `sent` mark). */
export function openStatesLeadingTo(to: CommandState): CommandState[] {
  return OPEN_COMMAND_STATES.filter((s) => canTransition(s, to));
}

export function canTransition(from: CommandState, to: CommandState): boolean {
  return COMMAND_TRANSITIONS[from].includes(to);
}

export function isTerminal(state: CommandState): boolean {
  return COMMAND_TRANSITIONS[state].length === 0;
}

/** The state a reply on `fleet/{id}/reply` moves a command to. */
export function stateForReply(status: 'ok' | 'error' | 'rejected' | 'busy'): CommandState {
  return ({ ok: 'succeeded', error: 'failed', rejected: 'rejected', busy: 'deferred' } as const)[status];
}
