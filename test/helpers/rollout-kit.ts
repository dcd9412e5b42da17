// Shared set-up for rollout tests: a publisher key trusted by the server,
// signed releases uploaded over the API, and a loop that drives the engine,
// the server clock and the simulated terminals' clock together.
import { mkdtempSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair, type GeneratedKeyPair } from '../../firmware/keys.ts';
import { buildSampleRelease } from '../../firmware/samples.ts';
import type { ManualClock as SimClock } from '../../agent-sim/clock.ts';
import type { ManualClock } from '../../server/lib/clock.ts';
import { randomChars } from '../../server/lib/ids.ts';
import type { TestApp } from './app.ts';

export interface Kit {
  keys: GeneratedKeyPair;
  publicKeyPem: string;
  release: (
    version: string,
    models: string[],
    opts?: { component?: string },
  ) => Promise<{ id: string; version: string }>;
}

export async function rolloutKit(t: TestApp): Promise<Kit> {
  const dir = mkdtempSync(join(tmpdir(), 'posfleet-rel-'));
  const keys = await generateKeyPair(join(dir, 'keys'));
  const publicKeyPem = await readFile(keys.publicKeyPath, 'utf8');
  const trusted = await t.api('POST', '/api/v1/signing-keys', {
    name: `test ${randomChars(6)}`,
    publicKey: publicKeyPem,
  });
  if (trusted.status !== 201) throw new Error(`signing key: ${trusted.status} ${JSON.stringify(trusted.body)}`);
  async function release(version: string, models: string[], opts: { component?: string } = {}) {
    const r = await buildSampleRelease({
      dir,
      component: opts.component ?? 'firmware',
      version,
      models,
      sizeBytes: 64 * 1024,
      key: keys.privateKeyPath,
    });
    const res = await fetch(`${t.app.baseUrl}/api/v1/artifacts`, {
      method: 'POST',
      body: await readFile(r.out),
      headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/octet-stream' },
    });
    const body = (await res.json()) as { id: string; version: string };
    if (res.status !== 201) throw new Error(`upload ${version}: ${res.status} ${JSON.stringify(body)}`);
    return body;
  }
  return { keys, publicKeyPem, release };
}

/** Unique firmware versions per test run: runs share one database. */
export function versionBase(): number {
  return 100 + Math.floor(Math.random() * 1_000_000);
}

/**
 * Steps the world until `done` holds: engine tick, server clock +serverStepMs,
 * terminals' clock +simStepMs, a short real pause for sockets to carry it, and
 * the server's pending batches written.
 */
export async function drive(opts: {
  t: () => TestApp;
  serverClock: ManualClock;
  simClock: SimClock;
  done: () => Promise<boolean>;
  serverStepMs?: number;
  simStepMs?: number;
  maxSteps?: number;
  onStep?: (i: number) => Promise<void>;
}): Promise<number> {
  const max = opts.maxSteps ?? 200;
  for (let i = 0; i < max; i++) {
    await opts.t().app.rollouts.engine.tick();
    if (await opts.done()) return i;
    await opts.onStep?.(i);
    opts.serverClock.advance(opts.serverStepMs ?? 30_000);
    await opts.simClock.advance(opts.simStepMs ?? 2_000);
    await new Promise((r) => setTimeout(r, 40));
    // What the terminals said in that pause is written before the next tick, however long the server's batch windows.
    const app = opts.t().app;
    await Promise.all([app.rollouts.engine.settle(), app.commands.drain(), app.health.drain(), app.sessions.drain()]);
  }
  throw new Error(`not done after ${max} steps`);
}
