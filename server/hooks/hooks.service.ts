// Webhook subscriptions: create (the secret is shown once), read, delete,
// rotate the secret with an overlap, re-enable after a disable.
import type { Audit } from '../access/audit.service.ts';
import { json, type Db } from '../db/index.ts';
import type { Principal } from '../http/types.ts';
import type { Clock } from '../lib/clock.ts';
import { decodeCursor, pageOf } from '../lib/cursor.ts';
import { conflict, notFound, unprocessable } from '../lib/errors.ts';
import { newId } from '../lib/ids.ts';
import type { HookPatch, NewHook } from './hooks.schemas.ts';
import type { HookSubscription } from './hooks.tables.ts';
import { newWebhookSecret, type SecretBox } from './secrets.ts';
import { assertDeliverableUrl } from './ssrf.ts';

const DEFAULT_OVERLAP_S = 24 * 3600;

function mask(config: Record<string, unknown>): Record<string, unknown> {
  const key = typeof config.routingKey === 'string' ? config.routingKey : undefined;
  return key ? { ...config, routingKey: `…${key.slice(-4)}` } : config;
}

export function hookView(s: HookSubscription, nowMs: number) {
  const iso = (x: Date | null) => x?.toISOString() ?? null;
  const prevValid = s.prev_secret_until && s.prev_secret_until.getTime() > nowMs ? s.prev_secret_until : null;
  return {
    id: s.id,
    url: s.url,
    events: s.events,
    format: s.format,
    filter: s.filter,
    config: mask(s.config),
    description: s.description,
    state: s.state as 'active' | 'disabled',
    failingSince: iso(s.failing_since),
    disabledAt: iso(s.disabled_at),
    disabledReason: s.disabled_reason,
    previousSecretValidUntil: iso(prevValid),
    createdAt: s.created_at.toISOString(),
    updatedAt: s.updated_at.toISOString(),
  };
}

export function createHookSubscriptions(deps: {
  db: Db;
  clock: Clock;
  audit: Audit;
  box: SecretBox;
  allowPrivate: boolean;
}) {
  const { db, clock, audit, box } = deps;

  async function require(id: string): Promise<HookSubscription> {
    const s = await db.selectFrom('hook_subscriptions').selectAll().where('id', '=', id).executeTakeFirst();
    if (!s) throw notFound('hook', id);
    return s;
  }

  async function create(actor: Principal, input: NewHook) {
    if (input.format === 'pagerduty' && !input.config?.routingKey)
      throw unprocessable('routing_key_required', 'format pagerduty needs config.routingKey');
    await assertDeliverableUrl(input.url, deps.allowPrivate);
    const now = clock.now();
    const id = newId('hk', now.getTime());
    const secret = newWebhookSecret();
    const sealed = await box.seal(secret, id);
    await db.transaction().execute(async (trx) => {
      const top = await trx
        .selectFrom('outbox_events')
        .select((eb) => eb.fn.max('seq').as('seq'))
        .executeTakeFirst();
      await trx
        .insertInto('hook_subscriptions')
        .values({
          id,
          url: input.url,
          events: json(input.events),
          format: input.format,
          filter: json(input.filter ?? {}),
          config: json(input.config ?? {}),
          description: input.description ?? null,
          secret_sealed: sealed,
          state: 'active',
          start_seq: Number(top?.seq ?? 0),
          created_at: now,
          created_by: actor.keyId,
          updated_at: now,
        })
        .execute();
      await audit.record(trx, actor, {
        action: 'hook.created',
        targetType: 'hook',
        targetId: id,
        details: { url: input.url, events: input.events, format: input.format },
      });
    });
    return { ...hookView(await require(id), clock.nowMs()), secret };
  }

  async function list(q: { limit: number; cursor?: string }) {
    let query = db
      .selectFrom('hook_subscriptions')
      .selectAll()
      .orderBy('id')
      .limit(q.limit + 1);
    const after = decodeCursor(q.cursor);
    if (after) query = query.where('id', '>', after);
    const { rows, nextCursor } = pageOf(await query.execute(), q.limit, (r) => r.id);
    return { items: rows.map((r) => hookView(r, clock.nowMs())), nextCursor };
  }

  async function remove(actor: Principal, id: string): Promise<void> {
    await db.transaction().execute(async (trx) => {
      const res = await trx.deleteFrom('hook_subscriptions').where('id', '=', id).executeTakeFirst();
      if (Number(res.numDeletedRows) === 0) throw notFound('hook', id);
      await audit.record(trx, actor, { action: 'hook.deleted', targetType: 'hook', targetId: id });
    });
  }

  /** A new secret signs at once; the old one keeps signing beside it for the overlap. */
  async function rotateSecret(actor: Principal, id: string, overlapSeconds = DEFAULT_OVERLAP_S) {
    const s = await require(id);
    const now = clock.now();
    const secret = newWebhookSecret();
    const until = overlapSeconds > 0 ? new Date(now.getTime() + overlapSeconds * 1000) : null;
    await db.transaction().execute(async (trx) => {
      await trx
        .updateTable('hook_subscriptions')
        .set({
          secret_sealed: await box.seal(secret, id),
          prev_secret_sealed: until ? s.secret_sealed : null,
          prev_secret_until: until,
          updated_at: now,
        })
        .where('id', '=', id)
        .execute();
      await audit.record(trx, actor, {
        action: 'hook.secret_rotated',
        targetType: 'hook',
        targetId: id,
        details: { overlapSeconds },
      });
    });
    return { id, secret, previousSecretValidUntil: until?.toISOString() ?? null };
  }

  async function enable(actor: Principal, id: string) {
    const s = await require(id);
    if (s.state === 'active') throw conflict('hook_active', `hook ${id} is already active`);
    await db.transaction().execute(async (trx) => {
      await trx
        .updateTable('hook_subscriptions')
        .set({
          state: 'active',
          failing_since: null,
          disabled_at: null,
          disabled_reason: null,
          updated_at: clock.now(),
        })
        .where('id', '=', id)
        .execute();
      await audit.record(trx, actor, { action: 'hook.enabled', targetType: 'hook', targetId: id });
    });
    return hookView(await require(id), clock.nowMs());
  }

  /**
   * Changes an endpoint in place: its secret, state and delivery log stay.
   * Events not yet fanned out use the new events, filter and format; deliveries
   * already queued go to the new URL.
   */
  async function update(actor: Principal, id: string, patch: HookPatch) {
    const s = await require(id);
    const format = patch.format ?? s.format;
    const config = patch.config ?? (patch.format && patch.format !== s.format ? {} : s.config);
    if (format === 'pagerduty' && !(config as { routingKey?: string }).routingKey)
      throw unprocessable('routing_key_required', 'format pagerduty needs config.routingKey');
    if (patch.url !== undefined && patch.url !== s.url) await assertDeliverableUrl(patch.url, deps.allowPrivate);
    await db.transaction().execute(async (trx) => {
      await trx
        .updateTable('hook_subscriptions')
        .set({
          ...(patch.url !== undefined && { url: patch.url }),
          ...(patch.events !== undefined && { events: json(patch.events) }),
          ...(patch.filter !== undefined && { filter: json(patch.filter) }),
          ...(patch.description !== undefined && { description: patch.description }),
          format,
          config: json(config),
          updated_at: clock.now(),
        })
        .where('id', '=', id)
        .execute();
      await audit.record(trx, actor, {
        action: 'hook.updated',
        targetType: 'hook',
        targetId: id,
        details: { fields: Object.keys(patch) },
      });
    });
    return hookView(await require(id), clock.nowMs());
  }

  return {
    require,
    create,
    list,
    get: async (id: string) => hookView(await require(id), clock.nowMs()),
    update,
    remove,
    rotateSecret,
    enable,
  };
}

export type HookSubscriptions = ReturnType<typeof createHookSubscriptions>;
