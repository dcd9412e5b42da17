// Merchants: where terminals trade, in which timezone and during which hours.
import type { CreateMerchant, TradingHours } from '../../protocol/http.ts';
import type { Audit } from '../access/audit.service.ts';
import { json, type Db } from '../db/index.ts';
import type { Merchant } from '../db/schema.ts';
import type { Principal } from '../http/types.ts';
import type { Clock } from '../lib/clock.ts';
import { decodeCursor, pageOf } from '../lib/cursor.ts';
import { notFound, unprocessable } from '../lib/errors.ts';
import { newId } from '../lib/ids.ts';
import { isValidTimezone } from './timezones.ts';

export type MerchantPatch = Partial<CreateMerchant>;

export function merchantView(m: Merchant) {
  return {
    id: m.id,
    name: m.name,
    timezone: m.timezone,
    tradingHours: m.trading_hours as TradingHours,
    externalRef: m.external_ref,
    createdAt: m.created_at.toISOString(),
    updatedAt: m.updated_at.toISOString(),
  };
}

function checkTimezone(tz: string | undefined): void {
  if (tz !== undefined && !isValidTimezone(tz)) {
    throw unprocessable('invalid_timezone', `timezone '${tz}' is not an IANA timezone such as Europe/Berlin`);
  }
}

export function createMerchants(deps: { db: Db; clock: Clock; audit: Audit }) {
  const { db, clock, audit } = deps;

  async function get(id: string): Promise<Merchant> {
    const row = await db.selectFrom('merchants').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('merchant', id);
    return row;
  }

  async function create(actor: Principal, input: CreateMerchant) {
    checkTimezone(input.timezone);
    const now = clock.now();
    const row = {
      id: newId('mer', now.getTime()),
      name: input.name,
      timezone: input.timezone,
      trading_hours: json(input.tradingHours ?? []),
      external_ref: input.externalRef ?? null,
      created_at: now,
      updated_at: now,
    };
    await db.transaction().execute(async (trx) => {
      await trx.insertInto('merchants').values(row).execute();
      await audit.record(trx, actor, {
        action: 'merchant.created',
        targetType: 'merchant',
        targetId: row.id,
        details: { name: input.name },
      });
    });
    return merchantView(await get(row.id));
  }

  async function update(actor: Principal, id: string, patch: MerchantPatch) {
    checkTimezone(patch.timezone);
    await db.transaction().execute(async (trx) => {
      const res = await trx
        .updateTable('merchants')
        .set({
          ...(patch.name !== undefined && { name: patch.name }),
          ...(patch.timezone !== undefined && { timezone: patch.timezone }),
          ...(patch.tradingHours !== undefined && { trading_hours: json(patch.tradingHours) }),
          ...(patch.externalRef !== undefined && { external_ref: patch.externalRef }),
          updated_at: clock.now(),
        })
        .where('id', '=', id)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) throw notFound('merchant', id);
      await audit.record(trx, actor, {
        action: 'merchant.updated',
        targetType: 'merchant',
        targetId: id,
        details: { fields: Object.keys(patch) },
      });
    });
    return merchantView(await get(id));
  }

  async function list(q: { limit: number; cursor?: string }) {
    let query = db
      .selectFrom('merchants')
      .selectAll()
      .orderBy('id')
      .limit(q.limit + 1);
    const after = decodeCursor(q.cursor);
    if (after) query = query.where('id', '>', after);
    const { rows, nextCursor } = pageOf(await query.execute(), q.limit, (r) => r.id);
    return { items: rows.map(merchantView), nextCursor };
  }

  return { get: async (id: string) => merchantView(await get(id)), create, update, list, exists: get };
}

export type Merchants = ReturnType<typeof createMerchants>;
