// Maintenance tickets: opened by rules, predictions or operators, with the
// warranty decided and an SLA by severity. While a ticket is in progress its
// terminal is `in_repair` and its alerts are muted.
import type { Kysely } from 'kysely';
import type { Audit } from '../access/audit.service.ts';
import type { Db } from '../db/index.ts';
import type { Database } from '../db/schema.ts';
import type { Devices } from '../devices/devices.service.ts';
import type { Outbox } from '../events/outbox.ts';
import type { Principal } from '../http/types.ts';
import type { Clock } from '../lib/clock.ts';
import { decodeCursor, pageOf } from '../lib/cursor.ts';
import { notFound, unprocessable } from '../lib/errors.ts';
import { newId } from '../lib/ids.ts';
import type { Alerts } from '../health/alerts.service.ts';
import type { TicketRow } from './maintenance.tables.ts';
import type { NewTicket, TicketPatch, TicketQuery } from './tickets.schemas.ts';
import { SLA_HOURS, canTicketTransition, type TicketState } from './tickets.states.ts';
import { decideWarranty } from './warranty.ts';

export interface OpenTicket {
  deviceId: string;
  kind: string;
  part?: string | null;
  severity: 'info' | 'warning' | 'critical';
  title: string;
  description?: string | null;
  source: 'rule' | 'prediction' | 'operator' | 'inspection';
  alertId?: string | null;
  damage?: boolean;
  damageNote?: string | null;
  createdBy?: string | null;
  scheduledFor?: string | null;
  assignee?: string | null;
}

const ACTIVE: TicketState[] = ['open', 'scheduled', 'in_progress'];

export function ticketView(t: TicketRow, now: Date) {
  const iso = (d: Date | null) => d?.toISOString() ?? null;
  return {
    id: t.id,
    deviceId: t.device_id,
    kind: t.kind,
    part: t.part,
    state: t.state,
    severity: t.severity,
    title: t.title,
    description: t.description,
    source: t.source,
    alertId: t.alert_id,
    merchantId: t.merchant_id,
    model: t.model,
    warranty: { billable: t.billable, reason: t.warranty_reason },
    damage: t.damage,
    damageNote: t.damage_note,
    assignee: t.assignee,
    notes: t.notes,
    slaDueAt: t.sla_due_at.toISOString(),
    slaBreached: (t.closed_at ?? now) > t.sla_due_at && t.state !== 'cancelled',
    scheduledFor: iso(t.scheduled_for),
    openedAt: t.opened_at.toISOString(),
    startedAt: iso(t.started_at),
    closedAt: iso(t.closed_at),
    resolution: t.resolution,
    replacementDeviceId: t.replacement_device_id,
    createdBy: t.created_by,
    updatedAt: t.updated_at.toISOString(),
  };
}

export function createTickets(deps: {
  db: Db;
  clock: Clock;
  audit: Audit;
  outbox: Outbox;
  devices: Devices;
  alerts: Alerts;
}) {
  const { db, clock, audit, outbox, devices, alerts } = deps;

  async function emit(
    trx: Kysely<Database>,
    type: 'ticket.opened' | 'ticket.updated',
    t: TicketRow,
    changes: string[] = [],
  ) {
    const d = await trx.selectFrom('devices').select('tags').where('id', '=', t.device_id).executeTakeFirst();
    await outbox.add(trx, {
      type,
      subject: { type: 'ticket', id: t.id },
      data: {
        ticketId: t.id,
        deviceId: t.device_id,
        merchantId: t.merchant_id,
        model: t.model,
        tags: d?.tags ?? [],
        kind: t.kind,
        part: t.part,
        severity: t.severity,
        state: t.state,
        source: t.source,
        alertId: t.alert_id,
        billable: t.billable,
        warrantyReason: t.warranty_reason,
        slaDueAt: t.sla_due_at.toISOString(),
        replacementDeviceId: t.replacement_device_id,
        changes,
      },
    });
  }

  /**
   * Opens a ticket inside `trx`, or returns the active one for the same device,
   * kind and part (a rule and a prediction about one battery make one ticket).
   */
  async function openInTrx(trx: Kysely<Database>, input: OpenTicket): Promise<{ id: string; created: boolean }> {
    const same = await trx
      .selectFrom('tickets')
      .select('id')
      .where('device_id', '=', input.deviceId)
      .where('kind', '=', input.kind)
      .where('state', 'in', ACTIVE)
      .$if(input.part != null, (q) => q.where('part', '=', input.part!))
      .executeTakeFirst();
    if (same) return { id: same.id, created: false };
    const d = await trx
      .selectFrom('devices')
      .select(['id', 'model', 'merchant_id', 'warranty_until', 'status'])
      .where('id', '=', input.deviceId)
      .executeTakeFirst();
    if (!d) throw notFound('device', input.deviceId);
    if (d.status === 'decommissioned') throw unprocessable('device_decommissioned', `device ${d.id} is decommissioned`);
    const now = clock.now();
    const w = decideWarranty({
      warrantyUntil: d.warranty_until,
      at: now,
      damage: input.damage ?? false,
      damageNote: input.damageNote,
    });
    const row = await trx
      .insertInto('tickets')
      .values({
        id: newId('tkt', now.getTime()),
        device_id: d.id,
        kind: input.kind,
        part: input.part ?? null,
        state: input.scheduledFor ? 'scheduled' : 'open',
        severity: input.severity,
        title: input.title,
        description: input.description ?? null,
        source: input.source,
        alert_id: input.alertId ?? null,
        merchant_id: d.merchant_id,
        model: d.model,
        billable: w.billable,
        warranty_reason: w.reason,
        damage: input.damage ?? false,
        damage_note: input.damageNote ?? null,
        assignee: input.assignee ?? null,
        notes: null,
        sla_due_at: new Date(now.getTime() + SLA_HOURS[input.severity] * 3600_000),
        scheduled_for: input.scheduledFor ? new Date(input.scheduledFor) : null,
        opened_at: now,
        started_at: null,
        closed_at: null,
        resolution: null,
        replacement_device_id: null,
        created_by: input.createdBy ?? null,
        updated_at: now,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    await emit(trx, 'ticket.opened', row);
    return { id: row.id, created: true };
  }

  async function require(id: string): Promise<TicketRow> {
    const t = await db.selectFrom('tickets').selectAll().where('id', '=', id).executeTakeFirst();
    if (!t) throw notFound('ticket', id);
    return t;
  }

  async function create(actor: Principal, input: NewTicket) {
    const { id } = await db.transaction().execute(async (trx) => {
      const res = await openInTrx(trx, {
        ...input,
        severity: input.severity ?? 'warning',
        title: input.title ?? `${input.kind.replace('_', ' ')}${input.part ? ` (${input.part})` : ''}`,
        source: 'operator',
        createdBy: actor.name,
      });
      await audit.record(trx, actor, {
        action: 'ticket.opened',
        targetType: 'ticket',
        targetId: res.id,
        details: { deviceId: input.deviceId, kind: input.kind },
      });
      return res;
    });
    outbox.notify();
    return ticketView(await require(id), clock.now());
  }

  /** The device side of a state change: in repair while work is in progress. */
  async function followDevice(actor: Principal, t: TicketRow, to: TicketState) {
    const d = await devices.require(t.device_id);
    if (to === 'in_progress' && d.status === 'active') await devices.update(actor, d.id, { status: 'in_repair' });
    const leaving = (to === 'resolved' || to === 'cancelled') && t.state === 'in_progress';
    if (leaving && d.status === 'in_repair') await devices.update(actor, d.id, { status: 'active' });
  }

  async function update(
    actor: Principal,
    id: string,
    patch: TicketPatch,
    extra: { replacementDeviceId?: string } = {},
  ) {
    const before = await require(id);
    const to = patch.state as TicketState | undefined;
    if (to && to !== before.state && !canTicketTransition(before.state as TicketState, to)) {
      throw unprocessable('invalid_transition', `a ${before.state} ticket cannot become ${to}`);
    }
    if (to === 'in_progress' && before.state !== 'in_progress') {
      const d = await devices.require(before.device_id);
      if (d.status !== 'active' && d.status !== 'in_repair')
        throw unprocessable('device_not_repairable', `a ${d.status} device cannot go into repair`);
    }
    const now = clock.now();
    const damage = patch.damage ?? before.damage;
    const damageNote = patch.damageNote !== undefined ? patch.damageNote : before.damage_note;
    const d = await devices.require(before.device_id);
    const w = decideWarranty({ warrantyUntil: d.warranty_until, at: before.opened_at, damage, damageNote });
    const changing = to !== undefined && to !== before.state;
    await db.transaction().execute(async (trx) => {
      const row = await trx
        .updateTable('tickets')
        .set({
          ...(changing && { state: to }),
          ...(changing && to === 'in_progress' && { started_at: now }),
          ...(changing && (to === 'resolved' || to === 'cancelled') && { closed_at: now }),
          ...(patch.scheduledFor !== undefined && {
            scheduled_for: patch.scheduledFor ? new Date(patch.scheduledFor) : null,
          }),
          ...(patch.assignee !== undefined && { assignee: patch.assignee }),
          ...(patch.notes !== undefined && { notes: patch.notes }),
          ...(patch.resolution !== undefined && { resolution: patch.resolution }),
          ...(patch.severity !== undefined && { severity: patch.severity }),
          ...(extra.replacementDeviceId && { replacement_device_id: extra.replacementDeviceId }),
          damage,
          damage_note: damageNote,
          billable: w.billable,
          warranty_reason: w.reason,
          updated_at: now,
        })
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow();
      if (changing && to === 'in_progress') await alerts.setMuted(trx, row.device_id, true);
      if (changing && before.state === 'in_progress') await alerts.setMuted(trx, row.device_id, false);
      await emit(trx, 'ticket.updated', row, Object.keys(patch));
      await audit.record(trx, actor, {
        action: 'ticket.updated',
        targetType: 'ticket',
        targetId: id,
        details: { fields: Object.keys(patch), to },
      });
    });
    outbox.notify();
    if (changing) await followDevice(actor, before, to);
    return ticketView(await require(id), clock.now());
  }

  async function list(q: TicketQuery & { limit: number; cursor?: string }) {
    let query = db
      .selectFrom('tickets')
      .selectAll()
      .orderBy('id', 'desc')
      .limit(q.limit + 1);
    const after = decodeCursor(q.cursor);
    if (after) query = query.where('id', '<', after);
    if (q.state === 'active') query = query.where('state', 'in', ACTIVE);
    else if (q.state) query = query.where('state', '=', q.state);
    if (q.device) query = query.where('device_id', '=', q.device);
    if (q.kind) query = query.where('kind', '=', q.kind);
    if (q.part) query = query.where('part', '=', q.part);
    if (q.merchant) query = query.where('merchant_id', '=', q.merchant);
    if (q.source) query = query.where('source', '=', q.source);
    const { rows, nextCursor } = pageOf(await query.execute(), q.limit, (r) => r.id);
    const now = clock.now();
    return { items: rows.map((r) => ticketView(r, now)), nextCursor };
  }

  return {
    openInTrx,
    create,
    update,
    list,
    require,
    get: async (id: string) => ticketView(await require(id), clock.now()),
  };
}

export type Tickets = ReturnType<typeof createTickets>;
