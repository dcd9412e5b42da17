// Alerts: one open alert per (device, rule), counted and touched instead of
// duplicated; every change written with its outbox event in one transaction.
import { sql, type Kysely } from 'kysely';
import type { Audit } from '../access/audit.service.ts';
import { json, type Db } from '../db/index.ts';
import type { Database } from '../db/schema.ts';
import type { Outbox } from '../events/outbox.ts';
import type { Principal } from '../http/types.ts';
import type { Clock } from '../lib/clock.ts';
import { decodeCursor, pageOf } from '../lib/cursor.ts';
import { notFound, unprocessable } from '../lib/errors.ts';
import { newId } from '../lib/ids.ts';
import { canAlertTransition, type AlertState } from './alerts.states.ts';
import type { AlertRow } from './health.tables.ts';
import type { AlertQuery } from './rules.schemas.ts';
import type { Rule } from './rules.service.ts';

export interface DeviceMeta {
  id: string;
  model: string;
  merchantId: string | null;
  tags: string[];
  status: string;
}

export function alertView(a: AlertRow) {
  const iso = (d: Date | null) => d?.toISOString() ?? null;
  return {
    id: a.id,
    deviceId: a.device_id,
    ruleId: a.rule_id,
    ruleName: a.rule_name,
    severity: a.severity,
    state: a.state,
    merchantId: a.merchant_id,
    model: a.model,
    message: a.message,
    remediation: a.remediation,
    value: a.value,
    count: a.count,
    flapping: a.flapping,
    muted: a.muted,
    ticketId: a.ticket_id,
    openedAt: a.opened_at.toISOString(),
    lastSeenAt: a.last_seen_at.toISOString(),
    acknowledgedAt: iso(a.acknowledged_at),
    acknowledgedBy: a.acknowledged_by,
    resolvedAt: iso(a.resolved_at),
    resolvedBy: a.resolved_by,
    resolution: a.resolution,
  };
}

/** What webhook filters need: severity, merchant, model, tags (issue 7). */
function eventData(a: AlertRow, tags: string[]) {
  return {
    alertId: a.id,
    deviceId: a.device_id,
    ruleId: a.rule_id,
    ruleName: a.rule_name,
    severity: a.severity,
    state: a.state,
    merchantId: a.merchant_id,
    model: a.model,
    tags,
    message: a.message,
    value: a.value,
    count: a.count,
    ticketId: a.ticket_id,
    remediation: a.remediation,
  };
}

export function createAlerts(deps: {
  db: Db;
  clock: Clock;
  audit: Audit;
  outbox: Outbox;
  /** Told after rule states were deleted here (the evaluator caches them). */
  statesCleared?: (deviceId: string | null, ruleId: string | null) => void;
}) {
  const { db, clock, audit, outbox } = deps;

  async function emit(trx: Kysely<Database>, type: string, a: AlertRow, tags: string[]) {
    if (a.muted) return; // a device in repair does not page anyone
    await outbox.add(trx, { type, subject: { type: 'alert', id: a.id }, data: eventData(a, tags) });
  }

  async function open(
    trx: Kysely<Database>,
    d: DeviceMeta,
    rule: Rule,
    value: unknown,
    at: Date,
    flapping: boolean,
  ): Promise<AlertRow> {
    const row = {
      id: newId('alr', at.getTime()),
      device_id: d.id,
      rule_id: rule.id,
      rule_name: rule.name,
      severity: rule.severity,
      state: 'open',
      merchant_id: d.merchantId,
      model: d.model,
      message: `${rule.name}: ${rule.metric} = ${JSON.stringify(value)}`,
      remediation: rule.remediation,
      value: json(value ?? null),
      flapping,
      muted: d.status === 'in_repair',
      ticket_id: null,
      opened_at: at,
      last_seen_at: at,
    };
    const inserted = await trx.insertInto('alerts').values(row).returningAll().executeTakeFirstOrThrow();
    await emit(trx, 'alert.opened', inserted, d.tags);
    return inserted;
  }

  /**
   * Many touches in one statement: count + n, last seen, latest value. Touches
   * of one alert are folded first: an UPDATE ... FROM applies one source row per
   * target row, so three touches in a batch must count three.
   */
  async function touchMany(
    trx: Kysely<Database>,
    touches: { alertId: string; at: Date; value: unknown; flapping: boolean }[],
  ) {
    if (touches.length === 0) return;
    const folded = new Map<string, { n: number; at: Date; value: unknown; flapping: boolean }>();
    for (const t of touches) {
      const f = folded.get(t.alertId);
      if (!f) folded.set(t.alertId, { n: 1, at: t.at, value: t.value, flapping: t.flapping });
      else {
        f.n++;
        f.flapping ||= t.flapping;
        if (t.at >= f.at) Object.assign(f, { at: t.at, value: t.value });
      }
    }
    const rows = [...folded];
    await sql`
      UPDATE alerts AS a SET count = a.count + v.n, last_seen_at = greatest(a.last_seen_at, v.at), value = v.value::jsonb,
        flapping = a.flapping OR v.flapping
      FROM unnest(${rows.map(([id]) => id)}::text[], ${rows.map(([, f]) => f.n)}::int[], ${rows.map(([, f]) => f.at.toISOString())}::timestamptz[],
                  ${rows.map(([, f]) => json(f.value ?? null))}::text[], ${rows.map(([, f]) => f.flapping)}::boolean[]) AS v(id, n, at, value, flapping)
      WHERE a.id = v.id`.execute(trx);
  }

  async function close(trx: Kysely<Database>, alertId: string, by: string | null, resolution: string, tags: string[]) {
    const row = await trx
      .updateTable('alerts')
      .set({ state: 'resolved', resolved_at: clock.now(), resolved_by: by, resolution })
      .where('id', '=', alertId)
      .where('state', '<>', 'resolved')
      .returningAll()
      .executeTakeFirst();
    if (row) await emit(trx, 'alert.resolved', row, tags);
    return row;
  }

  /**
   * Resolves many active alerts in one statement with their events in one
   * insert (a fleet fixed by a rollout resolves thousands at once); `tags`
   * gives each alert's device tags for the events.
   */
  async function closeMany(trx: Kysely<Database>, closes: { alertId: string; tags: string[] }[], resolution: string) {
    if (closes.length === 0) return [];
    const tags = new Map(closes.map((c) => [c.alertId, c.tags]));
    const rows = await trx
      .updateTable('alerts')
      .set({ state: 'resolved', resolved_at: clock.now(), resolved_by: null, resolution })
      .where(sql<boolean>`id = any(${[...tags.keys()]}::text[])`)
      .where('state', '<>', 'resolved')
      .returningAll()
      .execute();
    rows.sort((a, b) => (a.id < b.id ? -1 : 1));
    await outbox.addMany(
      trx,
      rows
        .filter((a) => !a.muted)
        .map((a) => ({
          type: 'alert.resolved',
          subject: { type: 'alert', id: a.id },
          data: eventData(a, tags.get(a.id) ?? []),
        })),
    );
    return rows;
  }

  async function tagsOf(trx: Kysely<Database>, deviceId: string): Promise<string[]> {
    const d = await trx.selectFrom('devices').select('tags').where('id', '=', deviceId).executeTakeFirst();
    return d?.tags ?? [];
  }

  async function require(id: string): Promise<AlertRow> {
    const row = await db.selectFrom('alerts').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('alert', id);
    return row;
  }

  async function transition(actor: Principal, id: string, to: AlertState) {
    const before = await require(id);
    if (!canAlertTransition(before.state as AlertState, to)) {
      throw unprocessable('invalid_transition', `an ${before.state} alert cannot become ${to}`);
    }
    await db.transaction().execute(async (trx) => {
      const tags = await tagsOf(trx, before.device_id);
      if (to === 'resolved') {
        await close(trx, id, actor.name, 'manual', tags);
        // Start the rule afresh: a condition that persists must debounce again to re-open.
        await trx
          .deleteFrom('rule_state')
          .where('device_id', '=', before.device_id)
          .where('rule_id', '=', before.rule_id)
          .execute();
      } else {
        const row = await trx
          .updateTable('alerts')
          .set({ state: 'acknowledged', acknowledged_at: clock.now(), acknowledged_by: actor.name })
          .where('id', '=', id)
          .where('state', '=', 'open')
          .returningAll()
          .executeTakeFirstOrThrow();
        await emit(trx, 'alert.acknowledged', row, tags);
      }
      await audit.record(trx, actor, { action: `alert.${to}`, targetType: 'alert', targetId: id });
    });
    if (to === 'resolved') deps.statesCleared?.(before.device_id, before.rule_id);
    outbox.notify();
    return alertView(await require(id));
  }

  async function list(q: AlertQuery & { limit: number; cursor?: string }) {
    let query = db
      .selectFrom('alerts')
      .selectAll()
      .orderBy('id', 'desc')
      .limit(q.limit + 1);
    const after = decodeCursor(q.cursor);
    if (after) query = query.where('id', '<', after);
    if (q.state === 'active') query = query.where('state', '<>', 'resolved');
    else if (q.state) query = query.where('state', '=', q.state);
    if (q.severity) query = query.where('severity', '=', q.severity);
    if (q.rule) query = query.where('rule_id', '=', q.rule);
    if (q.merchant) query = query.where('merchant_id', '=', q.merchant);
    if (q.model) query = query.where('model', '=', q.model);
    if (q.device) query = query.where('device_id', '=', q.device);
    const { rows, nextCursor } = pageOf(await query.execute(), q.limit, (r) => r.id);
    return { items: rows.map(alertView), nextCursor };
  }

  /**
   * The newest critical alert of each device seen since the given time (the
   * rollouts' soak health gate), for many devices in one query.
   */
  async function criticalSince(checks: { deviceId: string; since: Date }[]): Promise<Map<string, string>> {
    if (checks.length === 0) return new Map();
    const { rows } = await sql<{ device_id: string; rule_name: string }>`
      SELECT DISTINCT ON (a.device_id) a.device_id, a.rule_name
      FROM alerts AS a
      JOIN unnest(${checks.map((c) => c.deviceId)}::text[], ${checks.map((c) => c.since.toISOString())}::timestamptz[]) AS c(device_id, since)
        ON a.device_id = c.device_id AND a.last_seen_at >= c.since
      WHERE a.severity = 'critical'
      ORDER BY a.device_id, a.id DESC`.execute(db);
    return new Map(rows.map((r) => [r.device_id, r.rule_name]));
  }

  /** A device's alerts stay recorded but notify nobody while it is in repair. */
  async function setMuted(trx: Kysely<Database>, deviceId: string, muted: boolean) {
    await trx
      .updateTable('alerts')
      .set({ muted })
      .where('device_id', '=', deviceId)
      .where('state', '<>', 'resolved')
      .execute();
  }

  /** Resolves every active alert of a rule (deleted) or of a device (retired), and forgets their rule state. */
  async function resolveWhere(column: 'rule_id' | 'device_id', id: string, resolution: string) {
    const open = await db
      .selectFrom('alerts')
      .select(['id', 'device_id'])
      .where(column, '=', id)
      .where('state', '<>', 'resolved')
      .execute();
    await db.transaction().execute(async (trx) => {
      for (const a of open) await close(trx, a.id, null, resolution, await tagsOf(trx, a.device_id));
      await trx.deleteFrom('rule_state').where(column, '=', id).execute();
    });
    deps.statesCleared?.(column === 'device_id' ? id : null, column === 'rule_id' ? id : null);
    outbox.notify();
  }

  return {
    open,
    touchMany,
    close,
    closeMany,
    setMuted,
    list,
    criticalSince,
    resolveForRule: (ruleId: string) => resolveWhere('rule_id', ruleId, 'rule_deleted'),
    resolveForDevice: (deviceId: string, resolution: string) => resolveWhere('device_id', deviceId, resolution),
    get: async (id: string) => alertView(await require(id)),
    ack: (actor: Principal, id: string) => transition(actor, id, 'acknowledged'),
    resolve: (actor: Principal, id: string) => transition(actor, id, 'resolved'),
  };
}

export type Alerts = ReturnType<typeof createAlerts>;
