// Progress for people: cli-progress bars on a terminal (stderr), plain lines
// elsewhere (CI logs), nothing on stdout, so --json output stays clean.
import { MultiBar, Presets, SingleBar } from 'cli-progress';
import type { CliIo } from './io.ts';

export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

export interface ByteProgress {
  update(done: number): void;
  stop(): void;
}

/** Bytes, rate and ETA of a transfer of `total` bytes. */
export function byteProgress(io: CliIo, label: string, total: number, colour: boolean): ByteProgress {
  const started = Date.now();
  const rate = (done: number) => `${humanBytes(done / Math.max(0.001, (Date.now() - started) / 1000))}/s`;
  if (!io.stderr.isTTY) {
    // A line at every quarter: enough for a CI log, and the last one says 100 %.
    let shown = -1;
    const show = (done: number) => {
      const quarter = total === 0 ? 4 : Math.floor((done / total) * 4);
      if (quarter === shown) return;
      shown = quarter;
      io.stderr.write(
        `${label}: ${Math.round((quarter / 4) * 100)}% ${humanBytes(done)} of ${humanBytes(total)} ${rate(done)}\n`,
      );
    };
    show(0);
    return { update: show, stop: () => undefined };
  }
  const bar = new SingleBar(
    {
      stream: io.stderr as NodeJS.WritableStream,
      format: `${label} {bar} {percentage}% | {done} of {size} | {rate} | ETA {eta_formatted}`,
      barsize: 30,
      hideCursor: true,
      etaBuffer: 50,
      forceRedraw: false,
    },
    colour ? Presets.shades_classic : Presets.legacy,
  );
  bar.start(Math.max(total, 1), 0, { done: humanBytes(0), size: humanBytes(total), rate: rate(0) });
  return {
    update: (done) => bar.update(total === 0 ? 1 : done, { done: humanBytes(done), rate: rate(done) }),
    stop: () => bar.stop(),
  };
}

export interface WaveView {
  index: number;
  percent: number;
  state: string;
  size: number;
  counts: Record<string, number>;
}

export interface WaveProgress {
  update(state: string, waves: WaveView[]): void;
  stop(): void;
}

/** Device states that end a terminal's part in a rollout. */
export const DONE_STATES = ['succeeded', 'failed', 'timed_out', 'skipped', 'cancelled'];

export function waveDone(w: WaveView): number {
  return DONE_STATES.reduce((n, s) => n + (w.counts[s] ?? 0), 0);
}

function countsText(counts: Record<string, number>): string {
  return Object.entries(counts)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${s} ${n}`)
    .join(', ');
}

/** One bar per wave, redrawn in place; on a log, one line whenever something changed. */
export function waveProgress(io: CliIo, title: string, colour: boolean): WaveProgress {
  if (!io.stderr.isTTY) {
    let last = '';
    return {
      update(state, waves) {
        const text = waves
          .map((w) => `wave ${w.index + 1} (${w.percent}%) ${w.state} ${waveDone(w)}/${w.size}`)
          .join(' | ');
        const line = `${title}: ${state} | ${text}`;
        if (line !== last) io.stderr.write(`${line}\n`);
        last = line;
      },
      stop: () => undefined,
    };
  }
  const multi = new MultiBar(
    {
      stream: io.stderr as NodeJS.WritableStream,
      format: 'wave {wave} {bar} {value}/{total} {state} {counts}',
      barsize: 30,
      hideCursor: true,
      clearOnComplete: false,
    },
    colour ? Presets.shades_classic : Presets.legacy,
  );
  const bars = new Map<number, ReturnType<MultiBar['create']>>();
  return {
    update(_state, waves) {
      for (const w of waves) {
        const payload = { wave: `${w.index + 1} (${w.percent}%)`, state: w.state, counts: countsText(w.counts) };
        const bar = bars.get(w.index);
        if (bar) {
          bar.setTotal(Math.max(1, w.size));
          bar.update(waveDone(w), payload);
        } else bars.set(w.index, multi.create(Math.max(1, w.size), waveDone(w), payload));
      }
    },
    stop: () => multi.stop(),
  };
}
