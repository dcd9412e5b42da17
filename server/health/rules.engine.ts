// Rule evaluation, pure: one observation of one device against one rule moves
// the persisted per-(device, rule) state and says what happens to the alert.
// Debounce: N consecutive breaching observations or a breach lasting a
// duration. Hysteresis: the alert clears only past the clear threshold.
// Flapping: after FLAP_OPENS openings within an hour the alert is held open
// until the clear condition has lasted FLAP_HOLD_MS.
export const COMPARISONS = ['<', '<=', '>', '>=', '==', '!=', 'in', 'not_in'] as const;
export type Comparison = (typeof COMPARISONS)[number];

export interface Condition {
  metric: string;
  comparison: Comparison;
  value: unknown;
}

export interface RuleSpec {
  id: string;
  metric: string;
  comparison: Comparison;
  threshold: unknown;
  clearThreshold: unknown;
  conditions: Condition[];
  forCount: number;
  forSeconds: number | null;
}

export interface RuleState {
  firing: boolean;
  breachCount: number;
  breachSince: number | null;
  clearCount: number;
  clearSince: number | null;
  /** Times the alert opened within the last hour, for flap detection. */
  opens: number[];
}

export type Effect = 'open' | 'touch' | 'resolve' | null;

export const FLAP_OPENS = 3;
export const FLAP_WINDOW_MS = 3600_000;
export const FLAP_HOLD_MS = 30 * 60_000;

export const initialRuleState = (): RuleState => ({
  firing: false,
  breachCount: 0,
  breachSince: null,
  clearCount: 0,
  clearSince: null,
  opens: [],
});

export function isDefaultState(s: RuleState): boolean {
  return !s.firing && s.breachCount === 0 && s.opens.length === 0;
}

/** Reads `a.b.c` from nested metrics; undefined when any part is missing. */
// Rule paths are few and evaluated for every heartbeat: split each once (a pure memo).
const splitPaths = new Map<string, string[]>();
function pathParts(path: string): string[] {
  let parts = splitPaths.get(path);
  if (!parts) {
    parts = path.split('.');
    if (splitPaths.size < 10_000) splitPaths.set(path, parts);
  }
  return parts;
}

export function metricAt(metrics: Record<string, unknown>, path: string): unknown {
  let cur: unknown = metrics;
  for (const key of pathParts(path)) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

export function compare(value: unknown, cmp: Comparison, threshold: unknown): boolean {
  switch (cmp) {
    case '<':
      return typeof value === 'number' && value < Number(threshold);
    case '<=':
      return typeof value === 'number' && value <= Number(threshold);
    case '>':
      return typeof value === 'number' && value > Number(threshold);
    case '>=':
      return typeof value === 'number' && value >= Number(threshold);
    case '==':
      return value === threshold;
    case '!=':
      return value !== threshold;
    case 'in':
      return Array.isArray(threshold) && threshold.includes(value);
    case 'not_in':
      return Array.isArray(threshold) && !threshold.includes(value);
  }
}

function conditionsHold(rule: RuleSpec, metrics: Record<string, unknown>): boolean {
  for (const c of rule.conditions) if (!compare(metricAt(metrics, c.metric), c.comparison, c.value)) return false;
  return true;
}

/** True when an opening recorded in `opens` has left the flap window. */
function hasExpired(opens: number[], at: number): boolean {
  for (const t of opens) if (at - t >= FLAP_WINDOW_MS) return true;
  return false;
}

function debounced(rule: RuleSpec, count: number, since: number, at: number): boolean {
  return rule.forSeconds !== null ? at - since >= rule.forSeconds * 1000 : count >= rule.forCount;
}

export function isFlapping(s: RuleState, at: number): boolean {
  return s.opens.filter((t) => at - t < FLAP_WINDOW_MS).length >= FLAP_OPENS;
}

/** True when the rule can judge these metrics (its metric is reported). */
export function applies(rule: RuleSpec, metrics: Record<string, unknown>): boolean {
  return metricAt(metrics, rule.metric) !== undefined;
}

/** Field-by-field equality of two states (cheaper than comparing their JSON on every heartbeat). */
export function sameState(a: RuleState, b: RuleState): boolean {
  return (
    a.firing === b.firing &&
    a.breachCount === b.breachCount &&
    a.breachSince === b.breachSince &&
    a.clearCount === b.clearCount &&
    a.clearSince === b.clearSince &&
    a.opens.length === b.opens.length &&
    a.opens.every((t, i) => t === b.opens[i])
  );
}

/**
 * One observation moves the state. A quiet observation of a quiet rule (the
 * common case on a healthy fleet) returns `prev` itself, so callers can tell
 * "nothing changed" without comparing.
 */
export function step(
  rule: RuleSpec,
  prev: RuleState,
  metrics: Record<string, unknown>,
  at: number,
): { state: RuleState; effect: Effect } {
  const value = metricAt(metrics, rule.metric);
  const guard = conditionsHold(rule, metrics);
  const expired = hasExpired(prev.opens, at);
  // The quiet path (every rule of a healthy device, every heartbeat) allocates no state.
  const breaching = !prev.firing && guard && compare(value, rule.comparison, rule.threshold);
  if (!prev.firing && !breaching && !expired && prev.breachCount === 0 && prev.breachSince === null)
    return { state: prev, effect: null };
  const opens = expired ? prev.opens.filter((t) => at - t < FLAP_WINDOW_MS) : prev.opens;
  const s: RuleState = { ...prev, opens };
  if (!s.firing) {
    if (!breaching) return { state: { ...s, breachCount: 0, breachSince: null }, effect: null };
    s.breachCount += 1;
    s.breachSince ??= at;
    if (!debounced(rule, s.breachCount, s.breachSince, at)) return { state: s, effect: null };
    return { state: { ...s, firing: true, clearCount: 0, clearSince: null, opens: [...s.opens, at] }, effect: 'open' };
  }
  const stillBad = guard && compare(value, rule.comparison, rule.clearThreshold ?? rule.threshold);
  if (stillBad) {
    const pastThreshold = guard && compare(value, rule.comparison, rule.threshold);
    return { state: { ...s, clearCount: 0, clearSince: null }, effect: pastThreshold ? 'touch' : null };
  }
  s.clearCount += 1;
  s.clearSince ??= at;
  const cleared =
    debounced(rule, s.clearCount, s.clearSince, at) && (!isFlapping(s, at) || at - s.clearSince >= FLAP_HOLD_MS);
  if (!cleared) return { state: s, effect: null };
  return {
    state: { ...s, firing: false, breachCount: 0, breachSince: null, clearCount: 0, clearSince: null },
    effect: 'resolve',
  };
}
