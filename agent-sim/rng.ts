// Seeded randomness: the same seed must give the same fleet, so nothing in the
// simulator calls Math.random. Each terminal gets independent named streams, so
// drawing a jitter value never shifts its vitals sequence.

/** 32-bit FNV-1a over a string: turns (seed, terminal, stream) into a generator seed. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Uniform in [0, 1). */
export type Rng = () => number;

/** mulberry32: tiny, fast and good enough for simulation. */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function streamRng(seed: number | string, ...parts: Array<string | number>): Rng {
  return mulberry32(hash32([seed, ...parts].join('/')));
}

export const between = (rng: Rng, lo: number, hi: number): number => lo + (hi - lo) * rng();
export const intBetween = (rng: Rng, lo: number, hi: number): number => Math.floor(between(rng, lo, hi + 1));
export const chance = (rng: Rng, p: number): boolean => rng() < p;
export const pick = <T>(rng: Rng, items: readonly T[]): T => items[Math.floor(rng() * items.length)];

/** Roughly normal (sum of three uniforms): cheap and bounded. */
export const normalish = (rng: Rng, mean: number, spread: number): number =>
  mean + spread * (rng() + rng() + rng() - 1.5) * 1.15;

/** Count of events for an expected value: Poisson for small means, normal beyond. */
export function poisson(rng: Rng, mean: number): number {
  if (mean <= 0) return 0;
  if (mean > 30) return Math.max(0, Math.round(normalish(rng, mean, Math.sqrt(mean) * 2)));
  const limit = Math.exp(-mean);
  let k = 0;
  for (let p = rng(); p > limit; p *= rng()) k++;
  return k;
}

/** A delay of `base` ms spread by ±`fraction`: nothing periodic runs in step across a fleet. */
export const jitter = (rng: Rng, base: number, fraction = 0.1): number =>
  Math.max(0, Math.round(base * (1 + fraction * (2 * rng() - 1))));
