// Output for people (aligned tables, a few colours on a terminal) and for
// scripts (--json: the API's own JSON, one document per command).
import type { CliIo } from './io.ts';

export interface Column<T> {
  header: string;
  value: (row: T) => unknown;
}

const COLOURS = { red: 31, green: 32, yellow: 33, dim: 2, bold: 1 } as const;
type Colour = keyof typeof COLOURS;

/** Words that carry a state get a colour on a terminal. */
const STATE_COLOUR: Record<string, Colour> = {
  completed: 'green',
  succeeded: 'green',
  delivered: 'green',
  online: 'green',
  ok: 'green',
  active: 'green',
  pass: 'green',
  resolved: 'green',
  running: 'yellow',
  paused: 'yellow',
  warning: 'yellow',
  late: 'yellow',
  acknowledged: 'yellow',
  attention: 'yellow',
  in_progress: 'yellow',
  failed: 'red',
  critical: 'red',
  cancelled: 'red',
  offline: 'red',
  missing: 'red',
  fail: 'red',
  disabled: 'red',
  timed_out: 'red',
};

export class Output {
  constructor(
    private readonly io: CliIo,
    readonly json: boolean,
    readonly colour: boolean,
  ) {}

  paint(text: string, colour: Colour): string {
    return this.colour ? `\x1b[${COLOURS[colour]}m${text}\x1b[0m` : text;
  }

  /** Colours a known state word; anything else unchanged. */
  state(text: string): string {
    const c = STATE_COLOUR[text];
    return c ? this.paint(text, c) : text;
  }

  line(text = ''): void {
    this.io.stdout.write(`${text}\n`);
  }

  /** A note for people (stderr): never mixed into what a script reads. */
  note(text: string): void {
    this.io.stderr.write(`${text}\n`);
  }

  data(value: unknown): void {
    this.io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  table<T>(rows: readonly T[], columns: Column<T>[], opts: { stateColumns?: string[] } = {}): void {
    const cells = rows.map((r) => columns.map((c) => cellText(c.value(r))));
    const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((row) => row[i].length)));
    const pad = (text: string, i: number) => text.padEnd(widths[i]);
    this.line(
      this.paint(
        columns
          .map((c, i) => pad(c.header, i))
          .join('  ')
          .trimEnd(),
        'bold',
      ),
    );
    const coloured = new Set(opts.stateColumns ?? ['STATE', 'STATUS', 'SEVERITY', 'PRESENCE', 'VERDICT']);
    for (const row of cells) {
      const parts = row.map((text, i) => {
        const padded = pad(text, i);
        return coloured.has(columns[i].header) ? padded.replace(text, this.state(text)) : padded;
      });
      this.line(parts.join('  ').trimEnd());
    }
    if (rows.length === 0) this.line(this.paint('(none)', 'dim'));
  }

  /** Field: value lines for one object. */
  fields(pairs: [string, unknown][]): void {
    const width = Math.max(...pairs.map(([k]) => k.length));
    for (const [k, v] of pairs) this.line(`${`${k}:`.padEnd(width + 2)}${cellText(v)}`);
  }
}

export function cellText(v: unknown): string {
  if (v === null || v === undefined || v === '') return '-';
  if (Array.isArray(v)) return v.length ? v.map(cellText).join(',') : '-';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** "2026-12-03T13:04:05.123Z" → "2026-12-03 13:04:05" (UTC), '-' for none. */
export function when(iso: unknown): string {
  return typeof iso === 'string' ? iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, '') : '-';
}
