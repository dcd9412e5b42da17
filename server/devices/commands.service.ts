// Remote commands: stored first, published after the commit, re-sent while
// owed, expired after their deadline; replies recorded (DESIGN.md §7).
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import {
  PROTOCOL_VERSION,
  REPLY_STATUSES,
  type Command,
  type CommandReply,
  type CommandType,
} from '../../protocol/messages.ts';
import type { Audit } from '../access/audit.service.ts';
import { isTransientDbError, json, type Db } from '../db/index.ts';
import type { CommandRow, Device } from '../db/schema.ts';
import type { FleetBus } from '../events/bus-events.ts';
import type { Outbox, OutboxEvent } from '../events/outbox.ts';
import type { Principal } from '../http/types.ts';
import { Batcher, inRounds } from '../lib/batcher.ts';
import type { Clock } from '../lib/clock.ts';
import { decodeCursor, pageOf } from '../lib/cursor.ts';
import { conflict, notFound } from '../lib/errors.ts';
import { newId } from '../lib/ids.ts';
import { createLoader, groupBy } from '../lib/loader.ts';
import type { Logger } from 'pino';
import {
  OPEN_COMMAND_STATES,
  canTransition,
  openStatesLeadingTo,
  stateForReply,
  type CommandState,
} from './commands.states.ts';
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
    id: r.id,
    deviceId: r.device_id,
    type: r.type,
    params: r.params,
    state: r.state,
    createdAt: r.created_at.toISOString(),
    createdBy: r.created_by,
    expiresAt: r.expires_at.toISOString(),
    sentAt: iso(r.sent_at),
    sendCount: r.send_count,
    repliedAt: iso(r.replied_at),
    result: r.result,
    error: r.error,
  };
}

function wire(r: CommandRow): Command {
  return {
    v: PROTOCOL_VERSION,
    id: r.id,
    type: r.type as CommandType,
    params: r.params,
    expiresAt: r.expires_at.getTime(),
  };
}

/** The `command.failed` outbox event (webhooks); carries the device facts filters match on. */
function commandFailedEvent(
  r: Pick<CommandRow, 'id' | 'type'>,
  device: Device,
  state: string,
  error?: unknown,
): OutboxEvent {
  return {
    type: 'command.failed',
    subject: { type: 'command', id: r.id },
    data: { ...deviceFacts(device), commandId: r.id, commandType: r.type, state, error: error ?? null },
  };
}

/** A terminal's reply waiting in the reply batch. */
interface ReplyItem {
  deviceId: string;
  reply: CommandReply;
}

/** A reply to a command of its own device, and the state it asks for. */
interface ReplyMove {
  row: Pick<CommandRow, 'id' | 'device_id' | 'type' | 'state'>;
  next: CommandState;
  reply: CommandReply;
}

const isFailure = (s: CommandState) => s === 'failed' || s === 'rejected';

// The open states each reply state may be reached from, as one comma-separated text per state (`unnest` takes no nested arrays).
const REACHED_FROM = new Map(REPLY_STATUSES.map(stateForReply).map((to) => [to, openStatesLeadingTo(to).join(',')]));

/**
 * Replies to distinct commands in one statement, each row moving only from a
 * state the table allows towards its reply state; returns the ids moved.
 */
async function moveReplied(db: Kysely<Database>, now: Date, moves: readonly ReplyMove[]): Promise<Set<string>> {
  if (moves.length === 0) return new Set();
  const opt = (v: unknown) => (v === undefined ? null : json(v));
  const res = await sql<{ id: string }>`
    UPDATE commands AS c SET state = v.state, replied_at = ${now.toISOString()}::timestamptz, result = v.result::jsonb, error = v.error::jsonb
    FROM unnest(${moves.map((m) => m.row.id)}::text[], ${moves.map((m) => m.next)}::text[], ${moves.map((m) => REACHED_FROM.get(m.next))}::text[],
                ${moves.map((m) => opt(m.reply.result))}::text[], ${moves.map((m) => opt(m.reply.error))}::text[])
      AS v(id, state, from_states, result, error)
    WHERE c.id = v.id AND c.state = ANY(string_to_array(v.from_states, ','))
    RETURNING c.id`.execute(db);
  return new Set(res.rows.map((r) => r.id));
}

export function createCommands(deps: {
  db: Db;
  clock: Clock;
  audit: Audit;
  bus: FleetBus;
  outbox: Outbox;
  link: DeviceLink;
  devices: Devices;
  log: Logger;
  defaultTtlS: number;
}) {
  const { db, clock, link, bus } = deps;

  /** Publishes a stored command and records the send; false when the terminal is offline. */
  async function deliver(row: CommandRow, opts: { recorded?: boolean } = {}): Promise<boolean> {
    if (row.expires_at.getTime() <= clock.nowMs()) return false;
    const sent = await link.sendCommand(row.device_id, wire(row));
    if (!sent || opts.recorded) return sent;
    await db
      .updateTable('commands')
      .set((eb) => ({ state: 'sent', sent_at: clock.now(), send_count: eb('send_count', '+', 1) }))
      .where('id', '=', row.id)
      .where('state', 'in', ['queued', 'sent', 'deferred'])
      .execute();
    return true;
  }

  /** Stores a command for a device (in `trx` when given), returns the row; publish with `deliver`. */
  async function enqueue(actor: Principal | null, deviceId: string, input: NewCommand): Promise<CommandRow> {
    const device = await deps.devices.require(deviceId);
    if (device.status === 'decommissioned') throw conflict('decommissioned', `device ${deviceId} is decommissioned`);
    const now = clock.now();
    const row = {
      id: newId('cmd', now.getTime()),
      device_id: deviceId,
      type: input.type,
      params: json(input.params ?? {}),
      state: 'queued',
      created_at: now,
      created_by: actor?.keyId ?? null,
      expires_at: new Date(now.getTime() + (input.ttlSeconds ?? deps.defaultTtlS) * 1000),
    };
    await db.transaction().execute(async (trx) => {
      await trx.insertInto('commands').values(row).execute();
      if (actor)
        await deps.audit.record(trx, actor, {
          action: 'command.created',
          targetType: 'device',
          targetId: deviceId,
          details: { commandId: row.id, type: input.type },
        });
    });
    bus.emit('command.created', { commandId: row.id, deviceId, type: input.type });
    return db.selectFrom('commands').selectAll().where('id', '=', row.id).executeTakeFirstOrThrow();
  }

  /**
   * Writes a command inside the caller's transaction (the rollout engine's
   * claim), so the decision and the command commit together; publish with
   * `deliver` after the commit.
   */
  async function insertInTx(
    trx: Kysely<Database>,
    items: { deviceId: string; input: NewCommand }[],
    opts: { asSent?: boolean } = {},
  ): Promise<CommandRow[]> {
    if (items.length === 0) return [];
    const now = clock.now();
    // asSent: the caller publishes right after its commit (deliver with `recorded`),
    // so the send is recorded here and costs no second statement per command.
    const rows = items.map(({ deviceId, input }) => ({
      id: newId('cmd', now.getTime()),
      device_id: deviceId,
      type: input.type,
      params: json(input.params ?? {}),
      state: opts.asSent ? 'sent' : 'queued',
      created_at: now,
      created_by: null,
      expires_at: new Date(now.getTime() + (input.ttlSeconds ?? deps.defaultTtlS) * 1000),
      sent_at: opts.asSent ? now : null,
      send_count: opts.asSent ? 1 : 0,
    }));
    for (let i = 0; i < rows.length; i += 500)
      await trx
        .insertInto('commands')
        .values(rows.slice(i, i + 500))
        .execute();
    return rows.map((row, i) => ({
      ...row,
      params: items[i].input.params ?? {},
      replied_at: null,
      result: null,
      error: null,
    }));
  }

  /** Stops re-sending a command that is no longer wanted (a newer attempt replaced it). */
  async function withdraw(ids: string | string[], trx: Kysely<Database> = db): Promise<void> {
    const list = Array.isArray(ids) ? ids : [ids];
    if (list.length === 0) return;
    await trx
      .updateTable('commands')
      .set({ state: 'expired' })
      .where('id', 'in', list)
      .where('state', 'in', [...OPEN_COMMAND_STATES])
      .execute();
  }

  async function send(actor: Principal, deviceId: string, input: NewCommand) {
    // set_config changes the desired configuration first; the command tells the terminal.
    if (input.type === 'set_config') {
      const { heartbeatIntervalS, ...rest } = (input.params ?? {}) as { heartbeatIntervalS?: number };
      await deps.devices.update(actor, deviceId, {
        config: rest,
        ...(heartbeatIntervalS !== undefined && { heartbeatIntervalS }),
      });
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
    let query = db
      .selectFrom('commands')
      .selectAll()
      .where('device_id', '=', deviceId)
      .orderBy('id', 'desc')
      .limit(q.limit + 1);
    const after = decodeCursor(q.cursor);
    if (after) query = query.where('id', '<', after);
    if (q.state) query = query.where('state', '=', q.state);
    const { rows, nextCursor } = pageOf(await query.execute(), q.limit, (r) => r.id);
    return { items: rows.map(commandView), nextCursor };
  }

  // Group commit of replies: a rollout has every terminal answer its update
  // command at once; the PUBACK waits for the batch, up to 10 ms.
  const replies = new Batcher<ReplyItem>({
    maxItems: 2_000,
    maxDelayMs: 10,
    flush: writeReplies,
    retryable: isTransientDbError,
  });

  /** A reply from the terminal; idempotent, ignores replies for other devices or closed commands. Resolves once committed. */
  function recordReply(deviceId: string, reply: CommandReply): Promise<void> {
    return replies.add({ deviceId, reply });
  }

  /**
   * Replies of one batch: one read of their commands, then rounds in which each
   * command appears once, so that a command's replies apply in arrival order
   * (each guarded by the state the previous one left, as one reply at a time).
   */
  async function writeReplies(items: ReplyItem[]): Promise<void> {
    const ids = [...new Set(items.map((i) => i.reply.commandId))];
    const rows = await db
      .selectFrom('commands')
      .select(['id', 'device_id', 'type', 'state'])
      .where(sql<boolean>`id = any(${ids}::text[])`)
      .execute();
    const byId = new Map(rows.map((r) => [r.id, r]));
    const moves: ReplyMove[] = [];
    for (const item of items) {
      const row = byId.get(item.reply.commandId);
      if (!row || row.device_id !== item.deviceId)
        deps.log.warn({ deviceId: item.deviceId, commandId: item.reply.commandId }, 'reply for unknown command');
      else moves.push({ row, next: stateForReply(item.reply.status), reply: item.reply });
    }
    const rounds = inRounds(moves, (m) => m.row.id);
    if (rounds.length === 0) return;
    // The state each command is known to be in; undefined once a guarded move did not
    // happen (changed under us): the next reply's guard alone decides then.
    const known = new Map<string, CommandState | undefined>(rows.map((r) => [r.id, r.state as CommandState]));
    const moved = new Set<ReplyMove>();
    const write = async (trx: Kysely<Database>) => {
      const now = clock.now();
      for (const round of rounds) {
        const due = round.filter((m) => {
          const s = known.get(m.row.id);
          return s === undefined || canTransition(s, m.next);
        });
        const done = await moveReplied(trx, now, due);
        for (const m of due) {
          known.set(m.row.id, done.has(m.row.id) ? m.next : undefined);
          if (done.has(m.row.id)) moved.add(m);
        }
      }
      await addFailedEvents(
        trx,
        [...moved]
          .filter((m) => isFailure(m.next))
          .map((m) => ({
            id: m.row.id,
            type: m.row.type,
            device_id: m.row.device_id,
            state: m.next,
            error: m.reply.error,
          })),
      );
    };
    // One statement is atomic by itself; rounds or outbox events need the transaction.
    if (rounds.length > 1 || moves.some((m) => isFailure(m.next))) await db.transaction().execute(write);
    else await write(db);
    if (moves.some((m) => moved.has(m) && isFailure(m.next))) deps.outbox.notify();
    for (const m of moves) {
      if (!moved.has(m)) continue;
      bus.emit('command.replied', { commandId: m.row.id, deviceId: m.row.device_id, state: m.next });
      if (isFailure(m.next))
        bus.emit('command.failed', {
          commandId: m.row.id,
          deviceId: m.row.device_id,
          type: m.row.type,
          state: m.next,
          error: m.reply.error,
        });
    }
  }

  /** `command.failed` outbox events of commands that just failed, in `trx`; their devices read in one query. */
  async function addFailedEvents(
    trx: Kysely<Database>,
    failed: (Pick<CommandRow, 'id' | 'type' | 'device_id'> & { state: string; error?: unknown })[],
  ): Promise<void> {
    if (failed.length === 0) return;
    const devices = await trx
      .selectFrom('devices')
      .selectAll()
      .where('id', 'in', [...new Set(failed.map((r) => r.device_id))])
      .execute();
    const byId = new Map(devices.map((d) => [d.id, d]));
    for (const r of failed)
      if (byId.has(r.device_id))
        await deps.outbox.add(trx, commandFailedEvent(r, byId.get(r.device_id)!, r.state, r.error));
  }

  /** Open, unexpired commands of many devices in one query, each device's in id order. */
  async function owedBy(deviceIds: string[]): Promise<Map<string, CommandRow[]>> {
    const rows = await db
      .selectFrom('commands')
      .selectAll()
      .where(sql<boolean>`device_id = any(${deviceIds}::text[])`)
      .where('state', 'in', [...OPEN_COMMAND_STATES])
      .where('expires_at', '>', clock.now())
      .orderBy('id')
      .execute();
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
      const expired = await trx
        .updateTable('commands')
        .set({ state: 'expired' })
        .where('state', 'in', [...OPEN_COMMAND_STATES])
        .where('expires_at', '<=', clock.now())
        .returning(['id', 'device_id', 'type'])
        .execute();
      await addFailedEvents(
        trx,
        expired.map((r) => ({ ...r, state: 'expired' })),
      );
      return expired;
    });
    if (rows.length) deps.outbox.notify();
    for (const r of rows)
      bus.emit('command.failed', { commandId: r.id, deviceId: r.device_id, type: r.type, state: 'expired' });
    return rows.length;
  }

  return {
    send,
    enqueue,
    insertInTx,
    withdraw,
    deliver,
    get: async (id: string) => commandView(await get(id)),
    list,
    recordReply,
    resendOwed,
    expireDue,
    /** Writes the replies queued (graceful shutdown). */
    drain: () => replies.drain(),
  };
}

export type Commands = ReturnType<typeof createCommands>;
