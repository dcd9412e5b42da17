// Fan-out: each undispatched outbox event becomes one delivery per active
// subscription whose types and filter match, in the transaction that marks the
// event dispatched. One instance fans out at a time (a transaction-scoped
// advisory lock), so deliveries of a subscription are created in outbox order.
import { sql, type Kysely } from 'kysely';
import type { Db } from '../db/index.ts';
import type { Database } from '../db/schema.ts';
import type { Clock } from '../lib/clock.ts';
import { newId } from '../lib/ids.ts';
import { envelopeOf, eventMatches, type HookEnvelope } from './events.ts';
import { renderBody } from './formats.ts';
import type { HookSubscription } from './hooks.tables.ts';

const FANOUT_LOCK = 7_346_113_901; // arbitrary, constant: "hooks fan-out"
const BATCH = 500;

/** A new delivery row of `env` for `sub`, due now. */
export function deliveryRow(
  sub: Pick<HookSubscription, 'id' | 'format' | 'config'>,
  env: HookEnvelope,
  now: Date,
  ordered: boolean,
) {
  return {
    id: newId('msg', now.getTime()),
    subscription_id: sub.id,
    event_id: env.id,
    event_type: env.type,
    body: renderBody(sub.format, env, sub.config),
    ordered,
    state: 'pending',
    next_attempt_at: now,
    created_at: now,
  };
}

async function fanOutBatch(trx: Kysely<Database>, clock: Clock): Promise<{ events: number; deliveries: number }> {
  const locked = await sql<{ ok: boolean }>`select pg_try_advisory_xact_lock(${FANOUT_LOCK}) as ok`.execute(trx);
  if (!locked.rows[0]?.ok) return { events: 0, deliveries: 0 }; // another instance is fanning out
  const events = await trx
    .selectFrom('outbox_events')
    .selectAll()
    .where('dispatched_at', 'is', null)
    .orderBy('seq')
    .limit(BATCH)
    .execute();
  if (events.length === 0) return { events: 0, deliveries: 0 };
  const subs = await trx.selectFrom('hook_subscriptions').selectAll().where('state', '=', 'active').execute();
  const now = clock.now();
  const rows = [];
  for (const e of events) {
    const env = envelopeOf(e);
    for (const s of subs) if (e.seq > s.start_seq && eventMatches(s, env)) rows.push(deliveryRow(s, env, now, true));
  }
  for (let i = 0; i < rows.length; i += 200)
    await trx
      .insertInto('hook_deliveries')
      .values(rows.slice(i, i + 200))
      .execute();
  await trx
    .updateTable('outbox_events')
    .set({ dispatched_at: now })
    .where(
      'seq',
      'in',
      events.map((e) => e.seq),
    )
    .execute();
  return { events: events.length, deliveries: rows.length };
}

/** Fans out every undispatched event; returns the number of deliveries created. */
export async function fanOut(db: Db, clock: Clock): Promise<number> {
  let total = 0;
  for (;;) {
    const made = await db.transaction().execute((trx) => fanOutBatch(trx, clock));
    total += made.deliveries;
    if (made.events < BATCH) return total;
  }
}
