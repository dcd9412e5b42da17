// The delivery log of a subscription, test pings and manual redelivery.
import type { Db } from '../db/index.ts';
import type { Clock } from '../lib/clock.ts';
import { decodeCursor, pageOf } from '../lib/cursor.ts';
import { conflict, notFound } from '../lib/errors.ts';
import { newId } from '../lib/ids.ts';
import { assertTransition, isFinished, type DeliveryState } from './delivery.states.ts';
import { ENVELOPE_VERSION, PING_EVENT, type HookEnvelope } from './events.ts';
import { deliveryRow } from './fanout.ts';
import type { HookAttempt, HookDelivery } from './hooks.tables.ts';
import type { HookSubscriptions } from './hooks.service.ts';

function deliveryView(d: HookDelivery, attempts: HookAttempt[]) {
  const iso = (x: Date | null) => x?.toISOString() ?? null;
  const state = d.state as DeliveryState;
  return {
    id: d.id,
    hookId: d.subscription_id,
    eventId: d.event_id,
    eventType: d.event_type,
    state,
    attempts: d.attempts,
    nextAttemptAt: isFinished(state) ? null : d.next_attempt_at.toISOString(),
    lastStatus: d.last_status,
    lastError: d.last_error,
    lastLatencyMs: d.last_latency_ms,
    createdAt: d.created_at.toISOString(),
    deliveredAt: iso(d.delivered_at),
    requestBody: d.body,
    attemptLog: attempts.map((a) => ({
      attempt: a.attempt,
      at: a.started_at.toISOString(),
      status: a.status,
      latencyMs: a.latency_ms,
      error: a.error,
      response: a.response,
    })),
  };
}

export function createHookDeliveries(deps: {
  db: Db;
  clock: Clock;
  subscriptions: HookSubscriptions;
  wake: () => void;
}) {
  const { db, clock } = deps;

  async function withAttempts(rows: HookDelivery[]) {
    const ids = rows.map((r) => r.id);
    const attempts = ids.length
      ? await db.selectFrom('hook_attempts').selectAll().where('delivery_id', 'in', ids).orderBy('attempt').execute()
      : [];
    return rows.map((r) =>
      deliveryView(
        r,
        attempts.filter((a) => a.delivery_id === r.id),
      ),
    );
  }

  async function get(id: string) {
    const d = await db.selectFrom('hook_deliveries').selectAll().where('id', '=', id).executeTakeFirst();
    if (!d) throw notFound('delivery', id);
    return (await withAttempts([d]))[0];
  }

  /** Newest first. */
  async function list(hookId: string, q: { limit: number; cursor?: string; state?: string }) {
    await deps.subscriptions.require(hookId);
    let query = db
      .selectFrom('hook_deliveries')
      .selectAll()
      .where('subscription_id', '=', hookId)
      .orderBy('seq', 'desc')
      .limit(q.limit + 1);
    const after = decodeCursor(q.cursor);
    if (after) query = query.where('seq', '<', Number(after));
    if (q.state) query = query.where('state', '=', q.state);
    const { rows, nextCursor } = pageOf(await query.execute(), q.limit, (r) => String(r.seq));
    return { items: await withAttempts(rows), nextCursor };
  }

  /** A `hook.ping` to this subscription only; it does not wait behind pending retries. */
  async function ping(hookId: string) {
    const sub = await deps.subscriptions.require(hookId);
    if (sub.state !== 'active') throw conflict('hook_disabled', `hook ${hookId} is disabled; enable it first`);
    const now = clock.now();
    const env: HookEnvelope = {
      id: newId('evt', now.getTime()),
      type: PING_EVENT,
      version: ENVELOPE_VERSION,
      occurredAt: now.toISOString(),
      subject: { type: 'hook', id: hookId },
      data: { hookId, message: 'test ping from posfleet' },
    };
    const row = deliveryRow(sub, env, now, false);
    await db.insertInto('hook_deliveries').values(row).execute();
    deps.wake();
    return get(row.id);
  }

  /** Sends a finished delivery again, same id, now, with a fresh retry schedule. */
  async function redeliver(id: string) {
    const d = await db.selectFrom('hook_deliveries').selectAll().where('id', '=', id).executeTakeFirst();
    if (!d) throw notFound('delivery', id);
    if (!isFinished(d.state as DeliveryState))
      throw conflict('delivery_open', `delivery ${id} is ${d.state}; it is still being delivered`);
    const sub = await deps.subscriptions.require(d.subscription_id);
    if (sub.state !== 'active') throw conflict('hook_disabled', `hook ${sub.id} is disabled; enable it first`);
    assertTransition(d.state, 'pending');
    const res = await db
      .updateTable('hook_deliveries')
      .set({
        state: 'pending',
        ordered: false,
        retry_base: d.attempts,
        next_attempt_at: clock.now(),
        lease_until: null,
      })
      .where('id', '=', id)
      .where('state', '=', d.state)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0)
      throw conflict('delivery_changed', `delivery ${id} changed meanwhile; try again`);
    deps.wake();
    return get(id);
  }

  return { get, list, ping, redeliver };
}

export type HookDeliveries = ReturnType<typeof createHookDeliveries>;
