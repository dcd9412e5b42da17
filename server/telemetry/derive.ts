// Metrics a rule can judge, derived from one heartbeat and a little state:
// the vitals as reported, plus clock drift, patch age, reboots in the last
// hour, the card-reader error rate over recent transactions and the hottest
// temperature reported.
import type { Heartbeat } from '../../protocol/messages.ts';

const DAY_MS = 86_400_000;
/** Below this many recent card reads the error rate says nothing. */
export const READER_MIN_READS = 20;
/** Weight kept per heartbeat in the decayed reader sums (~ the last 10 heartbeats). */
export const READER_DECAY = 0.9;

const ENVELOPE = new Set(['v', 'seq', 'bootId', 'ts', 'firmware', 'apps']);

/** The vitals part of a heartbeat: everything but the envelope, unknown keys kept. */
export function vitalsOf(hb: Heartbeat): Record<string, unknown> {
  return Object.fromEntries(Object.entries(hb).filter(([k]) => !ENVELOPE.has(k)));
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
  const v = vitalsOf(hb) as Record<string, Record<string, unknown> | undefined>;
  const reads = ctx.readerOk + ctx.readerErr;
  const temps = [hb.battery?.tempC, hb.printer?.headTempC].filter((t): t is number => typeof t === 'number');
  const patch = hb.security?.patchLevel ? Date.parse(`${hb.security.patchLevel}T00:00:00Z`) : NaN;
  return {
    ...v,
    presence: 'online',
    reader: { ...v.reader, ...(reads >= READER_MIN_READS && { errorRate: ctx.readerErr / reads }) },
    sys: { ...v.sys, bootsLastHour: ctx.bootsLastHour },
    security: { ...v.security, ...(Number.isFinite(patch) && { patchAgeDays: Math.floor((ctx.receivedAt.getTime() - patch) / DAY_MS) }) },
    clock: { driftS: Math.abs(ctx.receivedAt.getTime() - hb.ts) / 1000 },
    ...(temps.length > 0 && { temp: { maxC: Math.max(...temps) } }),
  };
}
