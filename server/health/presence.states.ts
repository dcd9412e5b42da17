// Presence, one explicit state machine (DESIGN.md §7, HOUSE-RULES §6):
// online → late (one heartbeat missed) → offline (three missed, or an MQTT
// disconnect not followed by a reconnect within the grace period) → missing
// (24 h of silence). Any heartbeat brings a terminal back online. A sweep after
// a long server outage may skip states forward, so skips are allowed too.
export const PRESENCE_STATES = ['online', 'late', 'offline', 'missing'] as const;
export type PresenceState = (typeof PRESENCE_STATES)[number];

export const PRESENCE_TRANSITIONS = {
  online: ['late', 'offline', 'missing'],
  late: ['online', 'offline', 'missing'],
  offline: ['online', 'missing'],
  missing: ['online'],
} as const satisfies Record<PresenceState, readonly PresenceState[]>;

export function canPresenceTransition(from: PresenceState, to: PresenceState): boolean {
  return (PRESENCE_TRANSITIONS[from] as readonly PresenceState[]).includes(to);
}

/** No presence state is final: a missing terminal that speaks again is online. */
export function isPresenceTerminal(state: PresenceState): boolean {
  return (PRESENCE_TRANSITIONS[state] as readonly PresenceState[]).length === 0;
}

/** Heartbeat jitter tolerated before an interval counts as missed. */
export const LATE_AFTER_INTERVALS = 1.5;
export const OFFLINE_AFTER_INTERVALS = 3.5;
export const MISSING_AFTER_MS = 24 * 3600_000;

export interface PresenceInputs {
  now: number;
  lastSeenAt: number;
  intervalS: number;
  connected: boolean;
  /** When the MQTT session last closed, if it has not reopened since. */
  disconnectedAt: number | null;
  graceMs: number;
}

/** The state the terminal should be in now, from its silence and its session. */
export function presenceTarget(p: PresenceInputs): PresenceState {
  const silence = p.now - p.lastSeenAt;
  const interval = p.intervalS * 1000;
  if (silence >= MISSING_AFTER_MS) return 'missing';
  if (silence >= interval * OFFLINE_AFTER_INTERVALS) return 'offline';
  const dropped = !p.connected && p.disconnectedAt !== null && p.disconnectedAt >= p.lastSeenAt;
  if (dropped && p.now - p.disconnectedAt! >= p.graceMs) return 'offline';
  if (silence >= interval * LATE_AFTER_INTERVALS) return 'late';
  return 'online';
}
