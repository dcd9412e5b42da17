// Maintenance predictions, pure: from a linear trend over the window, how many
// days until a part reaches its replacement point.
export const PREDICTION_KINDS = ['battery', 'printer_head', 'card_reader'] as const;
export type PredictionKind = (typeof PREDICTION_KINDS)[number];

/** Battery health at which the pack is replaced (the battery-health rule fires at 60 %). */
export const BATTERY_REPLACE_PCT = 60;
/** Card-reader error rate at which the reader is replaced (the reader rule fires at 0.2). */
export const READER_REPLACE_RATE = 0.2;
/** Print head life in lines printed, per model; a model without a printer has none. */
export const HEAD_LIFE_LINES: Record<string, number> = { T1: 3_000_000, T2: 8_000_000 };
export const DEFAULT_HEAD_LIFE_LINES = 5_000_000;
/** Samples needed before a trend is believed. */
export const MIN_SAMPLES = 3;

export interface Trend {
  slopePerDay: number | null;
  current: number | null;
  samples: number;
}

export interface Prediction {
  kind: PredictionKind;
  dueInDays: number | null;
  basis: Record<string, unknown>;
}

/** Days until `current` moving at `slopePerDay` reaches `limit` (in the direction of travel); null when it is not heading there. */
export function daysUntil(current: number, slopePerDay: number, limit: number, rising: boolean): number | null {
  if (rising ? current >= limit : current <= limit) return 0;
  if (rising ? slopePerDay <= 0 : slopePerDay >= 0) return null;
  return Math.max(0, (limit - current) / slopePerDay);
}

export function predictBattery(t: Trend): Prediction {
  const ok = t.samples >= MIN_SAMPLES && t.current !== null && t.slopePerDay !== null;
  return {
    kind: 'battery',
    dueInDays: ok ? daysUntil(t.current!, t.slopePerDay!, BATTERY_REPLACE_PCT, false) : null,
    basis: {
      metric: 'battery.healthPct',
      current: t.current,
      slopePerDay: t.slopePerDay,
      limit: BATTERY_REPLACE_PCT,
      samples: t.samples,
    },
  };
}

export function predictPrinterHead(model: string, t: Trend): Prediction | null {
  if (t.samples === 0) return null; // no printer reported
  const life = HEAD_LIFE_LINES[model] ?? DEFAULT_HEAD_LIFE_LINES;
  const ok = t.samples >= MIN_SAMPLES && t.current !== null && t.slopePerDay !== null;
  return {
    kind: 'printer_head',
    dueInDays: ok ? daysUntil(t.current!, t.slopePerDay!, life, true) : null,
    basis: {
      metric: 'printer.linesPrinted',
      current: t.current,
      linesPerDay: t.slopePerDay,
      headLifeLines: life,
      wearPct: t.current === null ? null : Math.round((t.current / life) * 1000) / 10,
      samples: t.samples,
    },
  };
}

export function predictReader(t: Trend): Prediction {
  const ok = t.samples >= MIN_SAMPLES && t.current !== null && t.slopePerDay !== null;
  return {
    kind: 'card_reader',
    dueInDays: ok ? daysUntil(t.current!, t.slopePerDay!, READER_REPLACE_RATE, true) : null,
    basis: {
      metric: 'reader error rate (daily)',
      current: t.current,
      slopePerDay: t.slopePerDay,
      limit: READER_REPLACE_RATE,
      days: t.samples,
    },
  };
}

/** The ticket a due prediction opens. */
export const PREDICTION_TICKETS: Record<PredictionKind, { kind: string; part: string; title: string }> = {
  battery: { kind: 'battery_replacement', part: 'battery', title: 'Battery replacement due' },
  printer_head: { kind: 'part_replacement', part: 'printer', title: 'Print head replacement due' },
  card_reader: { kind: 'part_replacement', part: 'card_reader', title: 'Card reader replacement due' },
};
