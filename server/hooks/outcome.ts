// What an attempt changes: the attempt log row, the delivery's state (by the
// table in delivery.states.ts), the endpoint's failure span and, when that span
// passes the limit, the endpoint is disabled and `hook.disabled` is written to
// the outbox in the same transaction.
import type { Kysely } from 'kysely';
import type { Db } from '../db/index.ts';
import type { Database } from '../db/schema.ts';
import type { Outbox } from '../events/outbox.ts';
import type { Clock } from '../lib/clock.ts';
import { OPEN_DELIVERY_STATES, afterFailure, assertTransition, type DeliveryState } from './delivery.states.ts';
import type { HookDelivery, HookSubscription } from './hooks.tables.ts';
import type { SendResult } from './sender.ts';

interface OutcomeDeps {
  db: Db;
  clock: Clock;
  outbox: Outbox;
  disableAfterMs: number;
}

function failureText(r: SendResult): string {
  return r.error ?? `HTTP ${r.status}`;
}

/** Disables an endpoint: open deliveries are cancelled, `hook.disabled` goes to the outbox. */
export async function disableSubscription(
  trx: Kysely<Database>,
  outbox: Outbox,
  sub: HookSubscription,
  now: Date,
  reason: string,
): Promise<void> {
  await trx
    .updateTable('hook_subscriptions')
    .set({ state: 'disabled', disabled_at: now, disabled_reason: reason, updated_at: now })
    .where('id', '=', sub.id)
    .execute();
  await trx
    .updateTable('hook_deliveries')
    .set({ state: 'cancelled', lease_until: null })
    .where('subscription_id', '=', sub.id)
    .where('state', 'in', [...OPEN_DELIVERY_STATES])
    .execute();
  await outbox.add(trx, {
    type: 'hook.disabled',
    subject: { type: 'hook', id: sub.id },
    data: { hookId: sub.id, url: sub.url, failingSince: sub.failing_since?.toISOString() ?? now.toISOString(), reason },
  });
}

/** Records one attempt; returns true when it disabled the endpoint. */
export async function recordAttempt(
  deps: OutcomeDeps,
  d: HookDelivery,
  sub: HookSubscription,
  startedAt: Date,
  r: SendResult,
): Promise<boolean> {
  const now = deps.clock.now();
  const attempt = d.attempts + 1;
  const next = r.ok
    ? { state: 'delivered' as DeliveryState, nextAttemptAt: null }
    : afterFailure(attempt - d.retry_base, now.getTime());
  assertTransition('delivering', next.state);
  return deps.db.transaction().execute(async (trx) => {
    await trx
      .insertInto('hook_attempts')
      .values({
        delivery_id: d.id,
        attempt,
        started_at: startedAt,
        status: r.status,
        latency_ms: r.latencyMs,
        error: r.ok ? null : failureText(r),
        response: r.response,
      })
      .execute();
    const updated = await trx
      .updateTable('hook_deliveries')
      .set({
        state: next.state,
        attempts: attempt,
        lease_until: null,
        last_status: r.status,
        last_latency_ms: r.latencyMs,
        last_error: r.ok ? null : failureText(r),
        ...(next.nextAttemptAt !== null && { next_attempt_at: new Date(next.nextAttemptAt) }),
        ...(r.ok && { delivered_at: now }),
      })
      .where('id', '=', d.id)
      .where('state', '=', 'delivering')
      .executeTakeFirst();
    if (Number(updated.numUpdatedRows) === 0) return false; // cancelled or deleted meanwhile
    if (r.ok) {
      if (sub.failing_since)
        await trx.updateTable('hook_subscriptions').set({ failing_since: null }).where('id', '=', sub.id).execute();
      return false;
    }
    const fresh = await trx
      .selectFrom('hook_subscriptions')
      .selectAll()
      .where('id', '=', sub.id)
      .forUpdate()
      .executeTakeFirst();
    if (fresh?.state !== 'active') return false;
    const since = fresh.failing_since ?? startedAt;
    if (!fresh.failing_since)
      await trx.updateTable('hook_subscriptions').set({ failing_since: since }).where('id', '=', sub.id).execute();
    if (now.getTime() - since.getTime() < deps.disableAfterMs) return false;
    await disableSubscription(
      trx,
      deps.outbox,
      { ...fresh, failing_since: since },
      now,
      `failing since ${since.toISOString()}: ${failureText(r)}`,
    );
    return true;
  });
}
