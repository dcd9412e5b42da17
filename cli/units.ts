// Parsing of command-line values: durations, key=value pairs, lists.
import { CliError, EXIT } from './exit-codes.ts';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "500ms", "30s", "2m", "1h"; a bare number is seconds. */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new CliError(EXIT.usage, `${flag} "${text}" is not a duration such as 30s, 2m or 500ms`);
  return Math.round(Number(m[1]) * UNIT_MS[m[2] ?? 's']);
}

export function parseList(text: string | undefined): string[] | undefined {
  return text
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** k=v pairs into an object; a value that parses as JSON is taken as JSON (numbers, booleans, objects). */
export function parsePairs(pairs: string[], flag: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new CliError(EXIT.usage, `${flag} "${pair}" is not key=value`);
    const raw = pair.slice(at + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      /* a plain string */
    }
    out[pair.slice(0, at)] = value;
  }
  return out;
}

export function parseIntOption(text: string, flag: string, min: number, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new CliError(EXIT.usage, `${flag} must be a whole number from ${min} to ${max}`);
  return n;
}

export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];
