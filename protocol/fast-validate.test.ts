// The fast predicate may only say yes where zod says yes and returns the value
// unchanged: checked on valid heartbeats and on thousands of mutations of them.
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { compileValidator } from './fast-validate.ts';
import { heartbeatSchema, uplinkSchemas } from './messages.ts';

/** Deterministic pseudo-random numbers (mulberry32). */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const VALID = [
  { v: 1, seq: 0, bootId: 'b', ts: 0, firmware: '0.0.0', apps: {} },
  {
    v: 1,
    seq: 42,
    bootId: 'boot-7f3a',
    ts: 1_764_000_000_000,
    firmware: '2.4.1-rc.1+build.7',
    apps: { payment: '5.0.0', loyalty: '1.2.3' },
    battery: { pct: 87.5, charging: false, healthPct: 91, cycles: 312, tempC: 31 },
    printer: { state: 'paper_low', headTempC: 44, linesPrinted: 120_334 },
    reader: { swipeOk: 3, swipeErr: 0, chipOk: 20, chipErr: 1, tapOk: 41, tapErr: 0 },
    net: { type: 'lte', signalDbm: -93, latencyMs: 120 },
    sys: { cpuPct: 14, memFreePct: 40, storageFreePct: 71, uptimeS: 86_400, rebootReason: 'ota' },
    security: { tamper: false, patchLevel: '2026-10-05' },
    tx: { count: 12, failed: 1, queued: 0 },
    geo: { lat: 52.52, lon: 13.4 },
    modem: { imei: '356938035643809' }, // unknown keys are kept
  },
];

const POOL: unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1,
  1.5,
  100,
  101,
  -61,
  151,
  -151,
  600_001,
  2 ** 53,
  -0,
  1e300,
  '',
  'x',
  'ok',
  'jam',
  'lte',
  '5g',
  '1.0.0',
  '01.0.0',
  '1.0',
  '2026-13-01',
  '2026-01-01',
  'a'.repeat(65),
  [],
  [1],
  {},
  { pct: 5 },
  { ['__proto__']: { polluted: true } },
];

function mutate(value: unknown, r: () => number, depth = 0): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || depth > 2)
    return POOL[Math.floor(r() * POOL.length)];
  const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  const keys = Object.keys(out);
  const pick = r();
  const key = keys[Math.floor(r() * keys.length)];
  if (pick < 0.15 && key) delete out[key];
  else if (pick < 0.25) {
    // An own key, "__proto__" included (as JSON.parse makes it), not a prototype change.
    Object.defineProperty(out, ['extra', 'pct', 'state', 'v', 'seq', '__proto__'][Math.floor(r() * 6)], {
      value: POOL[Math.floor(r() * POOL.length)],
      enumerable: true,
      writable: true,
      configurable: true,
    });
  } else if (key) out[key] = mutate(out[key], r, depth + 1);
  return out;
}

describe('compileValidator', () => {
  it('compiles the heartbeat schema and accepts valid heartbeats as they are', () => {
    const fast = compileValidator(heartbeatSchema)!;
    expect(fast).not.toBeNull();
    for (const hb of VALID) {
      expect(fast(JSON.parse(JSON.stringify(hb)))).toBe(true);
      expect(heartbeatSchema.parse(hb)).toEqual(hb);
    }
  });

  it('says yes only where zod accepts and returns the value unchanged, over many mutations of every uplink kind', () => {
    const r = rng(20261126);
    let yes = 0,
      no = 0;
    for (const [kind, schema] of Object.entries(uplinkSchemas)) {
      const fast = compileValidator(schema);
      if (!fast) continue;
      const seeds = kind === 'heartbeat' ? VALID : [{}];
      for (let n = 0; n < 3000; n++) {
        let v: unknown = seeds[n % seeds.length];
        for (let k = Math.floor(r() * 3); k >= 0; k--) v = mutate(v, r);
        v = JSON.parse(JSON.stringify(v)); // as it arrives: parsed JSON
        const zod = schema.safeParse(v);
        if (fast(v)) {
          yes++;
          expect(zod.success, JSON.stringify(v)).toBe(true);
          expect(isDeepStrictEqual(zod.data, v), JSON.stringify(v)).toBe(true);
        } else no++;
      }
    }
    expect(yes).toBeGreaterThan(100); // the mutations did reach both answers
    expect(no).toBeGreaterThan(100);
  });

  it('gives null for what it cannot promise: stripping objects, refinements, transforms', () => {
    expect(compileValidator(z.object({ a: z.string() }))).toBeNull();
    expect(compileValidator(z.looseObject({ a: z.string().refine((s) => s !== 'b') }))).toBeNull();
    expect(compileValidator(z.looseObject({ a: z.string().transform((s) => s.length) }))).toBeNull();
    expect(compileValidator(z.looseObject({ a: z.number().default(3) }))).toBeNull();
  });
});
