// Remote commands: stored first, published after the commit, re-sent while
// owed, expired after their deadline; replies recorded (DESIGN.md §7).
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { PROTOCOL_VERSION, type Command, type CommandReply, type CommandType } from '../../protocol/messages.ts';
import type { Audit } from '../access/audit.service.ts';
import { json, type Db } from '../db/index.ts';
import type { CommandRow, Device } from '../db/schema.ts';
import type { FleetBus } from '../events/bus-events.ts';
import type { Outbox, OutboxEvent } from '../events/outbox.ts';
import type { Principal } from '../http/types.ts';
import type { Clock } from '../lib/clock.ts';
import { decodeCursor, pageOf } from '../lib/cursor.ts';
import { conflict, notFound } from '../lib/errors.ts';
import { newId } from '../lib/ids.ts';
import { createLoader, groupBy } from '../lib/loader.ts';
import type { Logger } from 'pino';
import { OPEN_COMMAND_STATES, canTransition, openStatesLeadingTo, stateForReply, type CommandState } from './commands.states.ts';
import { deviceFacts, type Devices } from './devices.service.ts';
import type { DeviceLink } from './link.ts';

export interface NewCommand {
  type: CommandType;
  params?: Record<string, unknown>;
  ttlSeconds?: number;
}

export function commandView(r: CommandRow) {
  const iso = (x: Date | null) => x?.toISOString() ?? null;
  return {
    id: r.id, deviceId: r.device_id, type: r.type, params: r.params, state: r.state,
    createdAt: r.created_at.toISOString(), createdBy: r.created_by, expiresAt: r.expires_at.toISOString(),
    sentAt: iso(r.sent_at), sendCount: r.send_count, repliedAt: iso(r.replied_at), result: r.result, error: r.error,
  };
}

function wire(r: CommandRow): Command {
  return { v: PROTOCOL_VERSION, id: r.id, type: r.type as CommandType, params: r.params, expiresAt: r.expires_at.getTime() };
}

/** The `command.failed` outbox event (webhooks); carries the device facts filters match on. */
function commandFailedEvent(r: Pick<CommandRow, 'id' | 'type'>, device: Device, state: string, error?: unknown): OutboxEvent {
  return {
    type: 'command.failed', subject: { type: 'command', id: r.id },
    data: { ...deviceFacts(device), commandId: r.id, commandType: r.type, state, error: error ?? null },
  };
}

export function createCommands(deps: { db: Db; clock: Clock; audit: Audit; bus: FleetBus; outbox: Outbox; link: DeviceLink; devices: Devices; log: Logger; defaultTtlS: number }) {
  const { db, clock, link, bus } = deps;

  /** Publishes a stored command and records the send; false when the terminal is offline. */
  async function deliver(row: CommandRow, opts: { recorded?: boolean } = {}): Promise<boolean> {
    if (row.expires_at.getTime() <= clock.nowMs()) return false;
    const sent = await link.sendCommand(row.device_id, wire(row));
    if (!sent || opts.recorded) return sent;
    await db.updateTable('commands')
      .set((eb) => ({ state: 'sent', sent_at: clock.now(), send_count: eb('send_count', '+', 1) }))
      .where('id', '=', row.id).where('state', 'in', ['queued', 'sent', 'deferred']).execute();
    return true;
  }

  /** Stores a command for a device (in `trx` when given), returns the row; publish with `deliver`. */
  async function enqueue(actor: Principal | null, deviceId: string, input: NewCommand): Promise<CommandRow> {
    const device = await deps.devices.require(deviceId);
    if (device.status === 'decommissioned') throw conflict('decommissioned', `device ${deviceId} is decommissioned`);
    const now = clock.now();
    const row = {
      id: newId('cmd', now.getTime()), device_id: deviceId, type: input.type, params: json(input.params ?? {}),
      state: 'queued', created_at: now, created_by: actor?.keyId ?? null,
      expires_at: new Date(now.getTime() + (input.ttlSeconds ?? deps.defaultTtlS) * 1000),
    };
    await db.transaction().execute(async (trx) => {
      await trx.insertInto('commands').values(row).execute();
      if (actor) await deps.audit.record(trx, actor, { action: 'command.created', targetType: 'device', targetId: deviceId, details: { commandId: row.id, type: input.type } });
    });
    bus.emit('command.created', { commandId: row.id, deviceId, type: input.type });
    return db.selectFrom('commands').selectAll().where('id', '=', row.id).executeTakeFirstOrThrow();
  }

  /**
   * Writes a command inside the caller's transaction (the rollout engine's
   * claim), so the decision and the command commit together; publish with
   * `deliver` after the commit.
   */
  async function insertInTx(trx: Kysely<Database>, items: { deviceId: string; input: NewCommand }[], opts: { asSent?: boolean } = {}): Promise<CommandRow[]> {
    if (items.length === 0) return [];
    const now = clock.now();
    // asSent: the caller publishes right after its commit (deliver with `recorded`),
    // so the send is recorded here and costs no second statement per command.
    const rows = items.map(({ deviceId, input }) => ({
      id: newId('cmd', now.getTime()), device_id: deviceId, type: input.type, params: json(input.params ?? {}),
      state: opts.asSent ? 'sent' : 'queued', created_at: now, created_by: null,
      expires_at: new Date(now.getTime() + (input.ttlSeconds ?? deps.defaultTtlS) * 1000),
      sent_at: opts.asSent ? now : null, send_count: opts.asSent ? 1 : 0,
    }));
    for (let i = 0; i < rows.length; i += 500) await trx.insertInto('commands').values(rows.slice(i, i + 500)).execute();
    return rows.map((row, i) => ({ ...row, params: items[i].input.params ?? {}, replied_at: null, result: null, error: null }));
  }

  /** Stops re-sending a command that is no longer wanted (a newer attempt replaced it). */
  async function withdraw(ids: string | string[], trx: Kysely<Database> = db): Promise<void> {
    const list = Array.isArray(ids) ? ids : [ids];
    if (list.length === 0) return;
    await trx.updateTable('commands').set({ state: 'expired' }).where('id', 'in', list).where('state', 'in', [...OPEN_COMMAND_STATES]).execute();
  }

  async function send(actor: Principal, deviceId: string, input: NewCommand) {
    // set_config changes the desired configuration first; the command tells the terminal.
    if (input.type === 'set_config') {
      const { heartbeatIntervalS, ...rest } = (input.params ?? {}) as { heartbeatIntervalS?: number };
      await deps.devices.update(actor, deviceId, { config: rest, ...(heartbeatIntervalS !== undefined && { heartbeatIntervalS }) });
    }
    const row = await enqueue(actor, deviceId, input);
    await deliver(row);
    return commandView(await get(row.id));
  }

  async function get(id: string): Promise<CommandRow> {
    const row = await db.selectFrom('commands').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('command', id);
    return row;
  }

  async function list(deviceId: string, q: { limit: number; cursor?: string; state?: string }) {
    await deps.devices.require(deviceId);
    let query = db.selectFrom('commands').selectAll().where('device_id', '=', deviceId).orderBy('id', 'desc').limit(q.limit + 1);
    const after = decodeCursor(q.cursor);
    if (after) query = query.where('id', '<', after);
    if (q.state) query = query.where('state', '=', q.state);
    const { rows, nextCursor } = pageOf(await query.execute(), q.limit, (r) => r.id);
    return { items: rows.map(commandView), nextCursor };
  }

  /** A reply from the terminal; idempotent, ignores replies for other devices or closed commands. */
  async function recordReply(deviceId: string, reply: CommandReply): Promise<void> {
    const row = await db.selectFrom('commands').selectAll().where('id', '=', reply.commandId).where('device_id', '=', deviceId).executeTakeFirst();
    if (!row) return deps.log.warn({ deviceId, commandId: reply.commandId }, 'reply for unknown command');
    const next = stateForReply(reply.status);
    if (!canTransition(row.state as CommandState, next)) return;
    const failed = next === 'failed' || next === 'rejected';
    const device = failed ? await deps.devices.require(deviceId) : undefined;
    const changed = await db.transaction().execute(async (trx) => {
      const res = await trx.updateTable('commands').set({
        state: next, replied_at: clock.now(),
        result: reply.result === undefined ? null : json(reply.result),
        error: reply.error === undefined ? null : json(reply.error),
      }).where('id', '=', row.id).where('state', 'in', openStatesLeadingTo(next)).executeTakeFirst();
      // 0 rows: a duplicate reply won the race (the send mark may change under us; that is fine).
      if (Number(res.numUpdatedRows) === 0) return false;
      if (device) await deps.outbox.add(trx, commandFailedEvent(row, device, next, reply.error));
      return true;
    });
    if (!changed) return;
    if (device) deps.outbox.notify();
    bus.emit('command.replied', { commandId: row.id, deviceId, state: next });
    if (next === 'failed' || next === 'rejected') bus.emit('command.failed', { commandId: row.id, deviceId, type: row.type, state: next, error: reply.error });
  }

  /** Open, unexpired commands of many devices in one query, each device's in id order. */
  async function owedBy(deviceIds: string[]): Promise<Map<string, CommandRow[]>> {
    const rows = await db.selectFrom('commands').selectAll().where(sql<boolean>`device_id = any(${deviceIds}::text[])`)
      .where('state', 'in', [...OPEN_COMMAND_STATES]).where('expires_at', '>', clock.now()).orderBy('id').execute();
    return groupBy(rows, (r) => r.device_id);
  }
  // A reconnecting fleet subscribes all at once: one query per few ms, not per terminal.
  const owedLoader = createLoader(owedBy);

  /** The terminal (re)subscribed to its command topic: send what it still owes. */
  async function resendOwed(deviceId: string): Promise<number> {
    const rows = (await owedLoader.load(deviceId)) ?? [];
    let sent = 0;
    for (const row of rows) if (await deliver(row)) sent++;
    return sent;
  }

  /** Periodic: commands past their deadline become `expired` (idempotent). */
  async function expireDue(): Promise<number> {
    const rows = await db.transaction().execute(async (trx) => {
      const expired = await trx.updateTable('commands').set({ state: 'expired' })
        .where('state', 'in', [...OPEN_COMMAND_STATES]).where('expires_at', '<=', clock.now())
        .returning(['id', 'device_id', 'type']).execute();
      if (expired.length === 0) return expired;
      const devices = await trx.selectFrom('devices').selectAll().where('id', 'in', [...new Set(expired.map((r) => r.device_id))]).execute();
      const byId = new Map(devices.map((d) => [d.id, d]));
      for (const r of expired) if (byId.has(r.device_id)) await deps.outbox.add(trx, commandFailedEvent(r, byId.get(r.device_id)!, 'expired'));
      return expired;
    });
    if (rows.length) deps.outbox.notify();
    for (const r of rows) bus.emit('command.failed', { commandId: r.id, deviceId: r.device_id, type: r.type, state: 'expired' });
    return rows.length;
  }

  return { send, enqueue, insertInTx, withdraw, deliver, get: async (id: string) => commandView(await get(id)), list, recordReply, resendOwed, expireDue };
}

export type Commands = ReturnType<typeof createCommands>;
