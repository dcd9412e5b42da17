// Maintenance windows: a cron expression (5 fields) plus a duration, evaluated
// in each terminal's own timezone, optionally only outside trading hours.
// Evaluated on instants, so daylight-saving changes need no special casing:
// a 02:30 start that does not exist on a spring-forward day simply never fires.
import { WEEKDAYS, type TradingHours } from '../../protocol/http.ts';

interface CronFields {
  minute: Set<number>;
  hour: Set<number>;
  dom: Set<number>;
  month: Set<number>;
  dow: Set<number>;
  domAny: boolean;
  dowAny: boolean;
}

const RANGES: [number, number][] = [
  [0, 59],
  [0, 23],
  [1, 31],
  [1, 12],
  [0, 7],
];

function parseField(text: string, [lo, hi]: [number, number]): Set<number> {
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(part);
    if (!m) throw new Error(`bad cron field '${text}'`);
    const step = m[4] ? Number(m[4]) : 1;
    const from = m[1] === '*' ? lo : Number(m[2]);
    const to = m[1] === '*' ? hi : m[3] !== undefined ? Number(m[3]) : m[4] ? hi : from;
    if (from < lo || to > hi || from > to || step < 1) throw new Error(`cron field '${text}' out of range ${lo}-${hi}`);
    for (let v = from; v <= to; v += step) out.add(v);
  }
  return out;
}

export function parseCron(expr: string): CronFields {
  const parts = expr.trim().split(/\s+/);
  if (parts.length !== 5) throw new Error('a window cron has 5 fields: minute hour day-of-month month day-of-week');
  const [minute, hour, dom, month, dow] = parts.map((p, i) => parseField(p, RANGES[i]));
  if (dow.has(7)) dow.add(0); // both 0 and 7 mean Sunday
  return { minute, hour, dom, month, dow, domAny: parts[2] === '*', dowAny: parts[4] === '*' };
}

export interface LocalTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  weekday: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
const WD: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };

/** Wall-clock time of an instant in a timezone. */
export function localTime(ms: number, timeZone: string): LocalTime {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      weekday: 'short',
    });
    formatters.set(timeZone, f);
  }
  const p: Record<string, string> = {};
  for (const part of f.formatToParts(ms)) p[part.type] = part.value;
  return { year: +p.year, month: +p.month, day: +p.day, hour: +p.hour % 24, minute: +p.minute, weekday: WD[p.weekday] };
}

/** Vixie-cron semantics: when both day fields are restricted, either may match. */
export function cronMatches(c: CronFields, t: LocalTime): boolean {
  if (!c.minute.has(t.minute) || !c.hour.has(t.hour) || !c.month.has(t.month)) return false;
  const dom = c.dom.has(t.day);
  const dow = c.dow.has(t.weekday);
  if (c.domAny || c.dowAny) return (c.domAny || dom) && (c.dowAny || dow);
  return dom || dow;
}

/** True when `t` falls inside the merchant's weekly trading hours (local time). */
export function isTrading(hours: TradingHours, t: LocalTime): boolean {
  const minuteOfDay = t.hour * 60 + t.minute;
  const today = WEEKDAYS[(t.weekday + 6) % 7];
  const yesterday = WEEKDAYS[(t.weekday + 5) % 7];
  for (const span of hours) {
    const open = toMinutes(span.open);
    const close = toMinutes(span.close);
    if (open < close) {
      if (span.days.includes(today) && minuteOfDay >= open && minuteOfDay < close) return true;
    } else if (open > close) {
      // past midnight
      if (span.days.includes(today) && minuteOfDay >= open) return true;
      if (span.days.includes(yesterday) && minuteOfDay < close) return true;
    }
  }
  return false;
}

const toMinutes = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

export interface WindowSpec {
  cron: string;
  durationMinutes: number;
  outsideTradingHours?: boolean;
}

const MINUTE = 60_000;

export class MaintenanceWindow {
  readonly #cron: CronFields;
  constructor(readonly spec: WindowSpec) {
    this.#cron = parseCron(spec.cron);
  }

  /** Is the window open at `ms` for a terminal in `timeZone` (with these trading hours)? */
  isOpen(ms: number, timeZone: string, trading: TradingHours = []): boolean {
    if (this.spec.outsideTradingHours && isTrading(trading, localTime(ms, timeZone))) return false;
    const now = Math.floor(ms / MINUTE) * MINUTE;
    for (let back = 0; back < this.spec.durationMinutes; back++) {
      if (cronMatches(this.#cron, localTime(now - back * MINUTE, timeZone))) return true;
    }
    return false;
  }

  /** The next instant (minute resolution) at which the window is open, within `horizonDays`. */
  nextOpen(fromMs: number, timeZone: string, trading: TradingHours = [], horizonDays = 8): number | null {
    const start = Math.floor(fromMs / MINUTE) * MINUTE;
    const span = this.spec.durationMinutes * MINUTE;
    let lastStart = -Infinity; // the latest cron match at or before the minute under test
    for (let back = this.spec.durationMinutes - 1; back >= 1; back--) {
      if (cronMatches(this.#cron, localTime(start - back * MINUTE, timeZone))) lastStart = start - back * MINUTE;
    }
    for (let m = 0; m < horizonDays * 1440; m++) {
      const at = start + m * MINUTE;
      const t = localTime(at, timeZone);
      if (cronMatches(this.#cron, t)) lastStart = at;
      const inWindow = at - lastStart < span;
      if (inWindow && !(this.spec.outsideTradingHours && isTrading(trading, t))) return Math.max(at, fromMs);
    }
    return null;
  }
}
