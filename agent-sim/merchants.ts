// Simulated merchants: a timezone and weekly trading hours each. Terminals trade
// (payments, paper, reader use, battery drain) only while their merchant is open.
import { WEEKDAYS, type TradingHours, type Weekday } from '../protocol/index.ts';
import { pick, streamRng } from './rng.ts';

export interface SimMerchant {
  index: number;
  name: string;
  timezone: string;
  tradingHours: TradingHours;
  /** Where its terminals are, for models that report geo. */
  lat: number;
  lon: number;
  /** Set once the merchant exists on the server (admin-token mode). */
  id?: string;
}

// Spread over the day so some part of a fleet is always trading.
const TIMEZONES: ReadonlyArray<[string, number, number]> = [
  ['Europe/Berlin', 52.52, 13.4],
  ['America/New_York', 40.71, -74.0],
  ['Asia/Tokyo', 35.68, 139.69],
  ['Europe/London', 51.5, -0.12],
  ['America/Los_Angeles', 34.05, -118.24],
  ['Australia/Sydney', -33.87, 151.21],
  ['Asia/Kolkata', 19.07, 72.88],
  ['America/Sao_Paulo', -23.55, -46.63],
  ['Africa/Johannesburg', -26.2, 28.05],
  ['Asia/Singapore', 1.35, 103.82],
  ['Europe/Madrid', 40.42, -3.7],
  ['America/Chicago', 41.88, -87.63],
];

const WEEKDAYS_ONLY: Weekday[] = ['mon', 'tue', 'wed', 'thu', 'fri'];
const HOURS_TEMPLATES: ReadonlyArray<{ kind: string; hours: TradingHours }> = [
  { kind: 'shop', hours: [{ days: [...WEEKDAYS_ONLY, 'sat'], open: '09:00', close: '19:00' }] },
  { kind: 'grocer', hours: [{ days: [...WEEKDAYS], open: '07:00', close: '22:00' }] },
  {
    kind: 'cafe',
    hours: [
      { days: WEEKDAYS_ONLY, open: '07:30', close: '17:00' },
      { days: ['sat', 'sun'], open: '09:00', close: '15:00' },
    ],
  },
  { kind: 'bar', hours: [{ days: ['wed', 'thu', 'fri', 'sat'], open: '18:00', close: '02:00' }] },
];

const round4 = (n: number): number => Math.round(n * 1e4) / 1e4;

export function planMerchants(count: number, seed: number | string): SimMerchant[] {
  const rng = streamRng(seed, 'merchants');
  return Array.from({ length: Math.max(1, count) }, (_, index) => {
    const [timezone, lat, lon] = TIMEZONES[index % TIMEZONES.length];
    const template = pick(rng, HOURS_TEMPLATES);
    const city = timezone.split('/')[1].replace(/_/g, ' ');
    return {
      index,
      name: `Sim ${template.kind} ${city} #${index + 1}`,
      timezone,
      tradingHours: template.hours,
      lat: round4(lat + (rng() - 0.5) * 0.2),
      lon: round4(lon + (rng() - 0.5) * 0.2),
    };
  });
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatterFor(timezone: string): Intl.DateTimeFormat {
  let f = formatters.get(timezone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-GB', {
      timeZone: timezone,
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    formatters.set(timezone, f);
  }
  return f;
}

export interface LocalTime {
  day: number;
  minutes: number;
}

/** Weekday (0 = mon) and minute of day in the merchant's timezone. */
export function localTime(timezone: string, epochMs: number): LocalTime {
  let weekday = 'Mon';
  let hour = 0;
  let minute = 0;
  for (const part of formatterFor(timezone).formatToParts(epochMs)) {
    if (part.type === 'weekday') weekday = part.value;
    else if (part.type === 'hour') hour = Number(part.value);
    else if (part.type === 'minute') minute = Number(part.value);
  }
  const day = WEEKDAYS.indexOf(weekday.slice(0, 3).toLowerCase() as Weekday);
  return { day: Math.max(0, day), minutes: hour * 60 + minute };
}

const toMinutes = (hhmm: string): number => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/** True while any span is open; a span whose close is before its open runs past midnight. */
export function isTrading(hours: TradingHours, local: LocalTime): boolean {
  const today = WEEKDAYS[local.day];
  const yesterday = WEEKDAYS[(local.day + 6) % 7];
  return hours.some((span) => {
    const open = toMinutes(span.open);
    const close = toMinutes(span.close);
    if (close > open) return span.days.includes(today) && local.minutes >= open && local.minutes < close;
    return (
      (span.days.includes(today) && local.minutes >= open) || (span.days.includes(yesterday) && local.minutes < close)
    );
  });
}
