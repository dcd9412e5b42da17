// Failure profiles (docs/agent-sim.md, "Failure profiles"): composable, seeded,
// optionally for a share of the fleet. `--profile failing-printer@0.1,install-fail:0.3,bad-firmware:2.0.0@0.05`.
import { between, chance, streamRng } from './rng.ts';

export const PROFILE_NAMES = [
  'flaky-network',
  'failing-printer',
  'degrading-battery',
  'reader-wear',
  'tamper',
  'reboot-loop',
  'clock-drift',
  'download-corrupt',
  'install-fail',
  'bad-firmware',
  'busy',
] as const;
export type ProfileName = (typeof PROFILE_NAMES)[number];

export interface ProfileSpec {
  name: ProfileName;
  arg?: string;
  /** Share of terminals it applies to, 0..1. */
  fraction: number;
}

/** The knobs one terminal's profiles turn; a healthy terminal has all defaults. */
export interface TerminalProfile {
  names: string[];
  flakyNetwork: boolean;
  failingPrinter: boolean;
  degradingBattery: boolean;
  readerWear: boolean;
  /** Simulated ms after start when a tamper event fires, or null. */
  tamperAfterMs: number | null;
  rebootLoop: boolean;
  /** Device clock error: initial offset and rate (ms of drift per ms of time). */
  clockOffsetMs: number;
  clockDriftRate: number;
  downloadCorrupt: boolean;
  installFailRate: number;
  badFirmware: string[];
  /** Probability an update is deferred because a payment runs; null = never busy. */
  busyRate: number | null;
}

export const healthyProfile = (): TerminalProfile => ({
  names: [],
  flakyNetwork: false,
  failingPrinter: false,
  degradingBattery: false,
  readerWear: false,
  tamperAfterMs: null,
  rebootLoop: false,
  clockOffsetMs: 0,
  clockDriftRate: 0,
  downloadCorrupt: false,
  installFailRate: 0,
  badFirmware: [],
  busyRate: null,
});

const NEEDS_ARG: ReadonlySet<ProfileName> = new Set(['bad-firmware']);

/** Parses `name[:arg][@fraction]` items, comma-separated; throws with a clear message on a bad one. */
export function parseProfiles(input: string | readonly string[] | undefined): ProfileSpec[] {
  const items = (Array.isArray(input) ? input : [input ?? ''])
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter(Boolean);
  return items.map((item) => {
    const at = item.lastIndexOf('@');
    const fraction = at >= 0 ? Number(item.slice(at + 1)) : 1;
    const body = at >= 0 ? item.slice(0, at) : item;
    const colon = body.indexOf(':');
    const name = (colon >= 0 ? body.slice(0, colon) : body) as ProfileName;
    const arg = colon >= 0 ? body.slice(colon + 1) : undefined;
    if (!PROFILE_NAMES.includes(name))
      throw new Error(`unknown profile "${name}" (known: ${PROFILE_NAMES.join(', ')})`);
    if (!(fraction >= 0 && fraction <= 1))
      throw new Error(`profile ${item}: the share after @ must be between 0 and 1`);
    if (NEEDS_ARG.has(name) && !arg) throw new Error(`profile ${name} needs an argument, e.g. ${name}:2.0.0`);
    if (arg !== undefined && ['install-fail', 'busy'].includes(name) && !(Number(arg) >= 0 && Number(arg) <= 1)) {
      throw new Error(`profile ${item}: the rate after : must be between 0 and 1`);
    }
    return { name, arg, fraction };
  });
}

/** Which profiles terminal `index` gets, and their seeded parameters. */
export function profileFor(specs: readonly ProfileSpec[], seed: number | string, index: number): TerminalProfile {
  const p = healthyProfile();
  for (const spec of specs) {
    const rng = streamRng(seed, 'profile', spec.name, spec.arg ?? '', index);
    if (!chance(rng, spec.fraction)) continue;
    p.names.push(spec.arg !== undefined ? `${spec.name}:${spec.arg}` : spec.name);
    applyProfile(p, spec, rng);
  }
  return p;
}

function applyProfile(p: TerminalProfile, spec: ProfileSpec, rng: () => number): void {
  switch (spec.name) {
    case 'flaky-network':
      p.flakyNetwork = true;
      break;
    case 'failing-printer':
      p.failingPrinter = true;
      break;
    case 'degrading-battery':
      p.degradingBattery = true;
      break;
    case 'reader-wear':
      p.readerWear = true;
      break;
    case 'tamper':
      p.tamperAfterMs = Math.round(between(rng, 10, 360) * 60_000);
      break;
    case 'reboot-loop':
      p.rebootLoop = true;
      break;
    case 'clock-drift': {
      const sign = rng() < 0.5 ? -1 : 1;
      p.clockOffsetMs = Math.round(sign * between(rng, 60, 600) * 1000);
      p.clockDriftRate = sign * between(rng, 0.002, 0.01);
      break;
    }
    case 'download-corrupt':
      p.downloadCorrupt = true;
      break;
    case 'install-fail':
      p.installFailRate = spec.arg !== undefined ? Number(spec.arg) : 1;
      break;
    case 'bad-firmware':
      p.badFirmware.push(spec.arg!);
      break;
    case 'busy':
      p.busyRate = spec.arg !== undefined ? Number(spec.arg) : 0.7;
      break;
  }
}
