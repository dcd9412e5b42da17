// What a fleet looks like right now, and how the CLI prints it.
import type { TerminalAgent } from './agent.ts';
import type { FleetCounters } from './counters.ts';
import type { AgentState } from './states.ts';

export interface FleetStats {
  terminals: number;
  online: number;
  byState: Partial<Record<AgentState, number>>;
  /** Terminals by the state of their latest OTA job. */
  updates: Record<string, number>;
  heartbeats: number;
  events: number;
  reboots: number;
  commands: number;
  errors: number;
  errorsByCode: Record<string, number>;
  otaErrors: Record<string, number>;
  elapsedMs: number;
}

export interface FleetSummary extends FleetStats {
  counters: Record<string, unknown>;
}

export function fleetStats(agents: readonly TerminalAgent[], c: FleetCounters, elapsedMs: number): FleetStats {
  const byState: Partial<Record<AgentState, number>> = {};
  const updates: Record<string, number> = {};
  for (const a of agents) {
    byState[a.state] = (byState[a.state] ?? 0) + 1;
    if (a.lastOta) updates[a.lastOta.state] = (updates[a.lastOta.state] ?? 0) + 1;
  }
  return {
    terminals: agents.length,
    online: byState.online ?? 0,
    byState,
    updates,
    heartbeats: c.heartbeats,
    events: c.events,
    reboots: c.reboots,
    commands: Object.values(c.commands).reduce((a, b) => a + b, 0),
    errors: Object.values(c.errors).reduce((a, b) => a + b, 0),
    errorsByCode: { ...c.errors },
    otaErrors: { ...c.otaErrors },
    elapsedMs,
  };
}

/** Adds the numbers of several workers' stats (the CLI over child processes). */
export function mergeStats(parts: FleetStats[]): FleetStats {
  const out = fleetStats([], emptyCounters(), Math.max(0, ...parts.map((p) => p.elapsedMs)));
  for (const p of parts) {
    for (const k of ['terminals', 'online', 'heartbeats', 'events', 'reboots', 'commands', 'errors'] as const)
      out[k] += p[k];
    addInto(out.byState as Record<string, number>, p.byState as Record<string, number>);
    addInto(out.updates, p.updates);
    addInto(out.errorsByCode, p.errorsByCode);
    addInto(out.otaErrors, p.otaErrors);
  }
  return out;
}

const emptyCounters = (): FleetCounters =>
  ({ heartbeats: 0, events: 0, reboots: 0, commands: {}, errors: {}, otaErrors: {} }) as unknown as FleetCounters;

function addInto(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

const fmtMap = (m: Record<string, number>): string =>
  Object.entries(m)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ') || 'none';

/** One status line: connected, heartbeats per second, updates by state, errors. */
export function statusLine(s: FleetStats, heartbeatsPerS: number): string {
  const waiting = (s.byState.enrolling ?? 0) + (s.byState.connecting ?? 0) + (s.byState.idle ?? 0);
  return [
    `online ${s.online}/${s.terminals}`,
    waiting ? `starting ${waiting}` : '',
    (s.byState.offline ?? 0) + (s.byState.rebooting ?? 0)
      ? `offline ${(s.byState.offline ?? 0) + (s.byState.rebooting ?? 0)}`
      : '',
    s.byState.failed ? `failed ${s.byState.failed}` : '',
    `hb/s ${heartbeatsPerS.toFixed(1)}`,
    `updates: ${fmtMap(s.updates)}`,
    `errors ${s.errors}`,
  ]
    .filter(Boolean)
    .join(' | ');
}

export function summaryText(s: FleetStats): string {
  return [
    `agent-sim summary after ${(s.elapsedMs / 1000).toFixed(0)} s`,
    `  terminals ${s.terminals}, online at stop ${s.online}, failed ${s.byState.failed ?? 0}`,
    `  heartbeats ${s.heartbeats}, events ${s.events}, reboots ${s.reboots}, commands answered ${s.commands}`,
    `  updates by state: ${fmtMap(s.updates)}`,
    `  update errors: ${fmtMap(s.otaErrors)}`,
    `  errors: ${fmtMap(s.errorsByCode)}`,
  ].join('\n');
}
