// Metrics a rule can judge, derived from one heartbeat and a little state:
// the vitals as reported, plus clock drift, patch age, reboots in the last
// hour, the card-reader error rate over recent transactions and the hottest
// temperature reported.
import { sql, type RawBuilder } from 'kysely';
import type { Heartbeat } from '../../protocol/messages.ts';

const DAY_MS = 86_400_000;
/** Below this many recent card reads the error rate says nothing. */
export const READER_MIN_READS = 20;
/** Weight kept per heartbeat in the decayed reader sums (~ the last 10 heartbeats). */
export const READER_DECAY = 0.9;

const ENVELOPE = new Set(['v', 'seq', 'bootId', 'ts', 'firmware', 'apps']);

/** The vitals part of a heartbeat: everything but the envelope, unknown keys kept. */
export function vitalsOf(hb: Heartbeat): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k in hb) if (!ENVELOPE.has(k)) out[k] = (hb as Record<string, unknown>)[k];
  return out;
}

/** The card reads `readerCounts` sums, in SQL, over a stored heartbeat's vitals (`vitals`: the column, e.g. "h.vitals"). */
export function readerCountSql(vitals: string, side: 'Ok' | 'Err'): RawBuilder<number> {
  return sql.raw(
    ['swipe', 'chip', 'tap'].map((k) => `coalesce((${vitals} #>> '{reader,${k}${side}}')::float8, 0)`).join(' + '),
  );
}

export function readerCounts(hb: Heartbeat): { ok: number; err: number } {
  const r = hb.reader ?? {};
  return {
    ok: (r.swipeOk ?? 0) + (r.chipOk ?? 0) + (r.tapOk ?? 0),
    err: (r.swipeErr ?? 0) + (r.chipErr ?? 0) + (r.tapErr ?? 0),
  };
}

export interface DeriveContext {
  receivedAt: Date;
  readerOk: number;
  readerErr: number;
  bootsLastHour: number;
}

export function deriveMetrics(hb: Heartbeat, ctx: DeriveContext): Record<string, unknown> {
  // Built in place: this runs for every heartbeat, and spreads cost garbage.
  const m = vitalsOf(hb) as Record<string, unknown>;
  const v = m as Record<string, Record<string, unknown> | undefined>;
  const reads = ctx.readerOk + ctx.readerErr;
  const patch = hb.security?.patchLevel ? Date.parse(`${hb.security.patchLevel}T00:00:00Z`) : NaN;
  m.presence = 'online';
  m.reader = { ...v.reader, ...(reads >= READER_MIN_READS && { errorRate: ctx.readerErr / reads }) };
  m.sys = { ...v.sys, bootsLastHour: ctx.bootsLastHour };
  m.security = {
    ...v.security,
    ...(Number.isFinite(patch) && { patchAgeDays: Math.floor((ctx.receivedAt.getTime() - patch) / DAY_MS) }),
  };
  m.clock = { driftS: Math.abs(ctx.receivedAt.getTime() - hb.ts) / 1000 };
  const battery = hb.battery?.tempC,
    head = hb.printer?.headTempC;
  if (typeof battery === 'number' || typeof head === 'number') {
    m.temp = {
      maxC: Math.max(typeof battery === 'number' ? battery : -Infinity, typeof head === 'number' ? head : -Infinity),
    };
  }
  return m;
}
