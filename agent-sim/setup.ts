// Admin-token mode: the simulator creates its own merchants (one per timezone
// spread) and one enrolment token per merchant. A merchant the server already
// has under the same name is reused (a simulator restarted without its state
// dir, a recreated container), so runs never make duplicates.
import { z } from 'zod';
import type { CreateEnrollmentToken, CreateMerchant } from '../protocol/index.ts';
import { apiCall } from './identity.ts';
import type { SimMerchant } from './merchants.ts';

const createdSchema = z.looseObject({ id: z.string() });
const merchantPageSchema = z.looseObject({
  items: z.array(z.looseObject({ id: z.string(), name: z.string() })),
  nextCursor: z.string().nullable(),
});

/** Every merchant the server has, by name (the first made wins when names repeat). */
async function merchantsByName(server: string, adminToken: string): Promise<Map<string, string>> {
  const byName = new Map<string, string>();
  let cursor: string | null = null;
  do {
    const query: string = `/merchants?limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const page = merchantPageSchema.parse(await apiCall(server, query, adminToken));
    for (const m of page.items) if (!byName.has(m.name)) byName.set(m.name, m.id);
    cursor = page.nextCursor;
  } while (cursor);
  return byName;
}
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
  const known = await merchantsByName(o.server, o.adminToken);
  for (const m of o.merchants) {
    m.id = known.get(m.name);
    if (m.id) continue;
    const body: CreateMerchant = {
      name: m.name,
      timezone: m.timezone,
      tradingHours: m.tradingHours,
      externalRef: `agent-sim:${o.seed}:${m.index}`,
    };
    m.id = createdSchema.parse(await apiCall(o.server, '/merchants', o.adminToken, body)).id;
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
