// Admin-token mode: the simulator creates its own merchants (one per timezone
// spread) and one enrolment token per merchant. Merchant ids are kept in the
// state dir so a restarted simulator does not create the same merchants again.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { CreateEnrollmentToken, CreateMerchant } from '../protocol/index.ts';
import { apiCall, stateDirFor } from './identity.ts';
import type { SimMerchant } from './merchants.ts';

const createdSchema = z.looseObject({ id: z.string() });
const tokenSchema = z.looseObject({ id: z.string(), token: z.string() });

export interface SetupOptions {
  server: string;
  adminToken: string;
  merchants: SimMerchant[];
  terminals: number;
  seed: number;
  stateDir: string | null;
}

/** Returns one enrolment token per merchant, in merchant order; sets `merchant.id`. */
export async function setupMerchants(o: SetupOptions): Promise<string[]> {
  const cacheFile = o.stateDir ? join(stateDirFor(o.stateDir, o.server), `merchants-seed${o.seed}.json`) : null;
  const cached = cacheFile ? await readCache(cacheFile) : {};
  for (const m of o.merchants) {
    m.id = cached[m.name];
    if (m.id) continue;
    const body: CreateMerchant = {
      name: m.name,
      timezone: m.timezone,
      tradingHours: m.tradingHours,
      externalRef: `agent-sim:${o.seed}:${m.index}`,
    };
    m.id = createdSchema.parse(await apiCall(o.server, '/merchants', o.adminToken, body)).id;
    cached[m.name] = m.id;
  }
  if (cacheFile) {
    await mkdir(join(cacheFile, '..'), { recursive: true });
    await writeFile(cacheFile, JSON.stringify(cached, null, 2));
  }
  const tokens: string[] = [];
  for (const m of o.merchants) {
    const body: CreateEnrollmentToken = {
      merchantId: m.id,
      tags: ['agent-sim'],
      maxUses: Math.max(1, o.terminals),
      ttlMinutes: 7 * 24 * 60,
      note: `agent-sim seed ${o.seed}`,
    };
    tokens.push(tokenSchema.parse(await apiCall(o.server, '/enrollment-tokens', o.adminToken, body)).token);
  }
  return tokens;
}

async function readCache(file: string): Promise<Record<string, string>> {
  try {
    return z.record(z.string(), z.string()).parse(JSON.parse(await readFile(file, 'utf8')));
  } catch {
    return {};
  }
}
