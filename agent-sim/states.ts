// The states of one simulated terminal and the moves between them, as data
// (docs/agent-sim.md, "States"). Every state change of a TerminalAgent goes
// through `canTransition`; a move the table does not list is a bug in agent-sim.

export const AGENT_STATES = [
  'idle',
  'enrolling',
  'connecting',
  'online',
  'offline',
  'rebooting',
  'failed',
  'stopped',
] as const;
export type AgentState = (typeof AGENT_STATES)[number];

// `failed` (enrolment refused for good) is not final: a reboot tries again.
// A reboot of a terminal that was never started has nothing to restart, so
// `idle` does not lead to `rebooting`.
export const AGENT_TRANSITIONS = {
  idle: ['enrolling', 'connecting', 'stopped'],
  enrolling: ['connecting', 'failed', 'rebooting', 'stopped'],
  connecting: ['online', 'offline', 'rebooting', 'stopped'],
  online: ['offline', 'rebooting', 'stopped'],
  offline: ['enrolling', 'connecting', 'rebooting', 'stopped'],
  rebooting: ['enrolling', 'connecting', 'stopped'],
  failed: ['rebooting', 'stopped'],
  stopped: [],
} as const satisfies Record<AgentState, readonly AgentState[]>;

export function canTransition(from: AgentState, to: AgentState): boolean {
  return (AGENT_TRANSITIONS[from] as readonly AgentState[]).includes(to);
}

/** A state nothing leaves (named so, not `isTerminal`, because here a terminal is the device). */
export function isFinal(state: AgentState): boolean {
  return AGENT_TRANSITIONS[state].length === 0;
}

/**
 * The state after moving from `from` to `to`. Staying put (a second enrolment
 * attempt, a second stop) is not a move; a move the table does not list throws.
 */
export function transition(from: AgentState, to: AgentState, who: string): AgentState {
  if (from !== to && !canTransition(from, to)) throw new Error(`${who}: state cannot go from ${from} to ${to}`);
  return to;
}
