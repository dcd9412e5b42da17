// Presence: heartbeats bring terminals online (inside the ingest transaction),
// a periodic sweep moves silent or disconnected ones to late, offline and
// missing. Each change is written with its `device.presence_changed` outbox
// event in the same transaction, and becomes a rule observation.
import { sql, type Kysely } from 'kysely';
import type { Db } from '../db/index.ts';
import type { Database } from '../db/schema.ts';
import type { FleetBus } from '../events/bus-events.ts';
import type { Outbox } from '../events/outbox.ts';
import type { Clock } from '../lib/clock.ts';
import type { Observation } from '../telemetry/ingest.ts';
import { LATE_AFTER_INTERVALS, canPresenceTransition, presenceTarget, type PresenceState } from './presence.states.ts';

export interface PresenceChange {
  deviceId: string;
  merchantId: string | null;
  model: string;
  tags: string[];
  from: PresenceState | null;
  to: PresenceState;
  at: Date;
}

export interface PresenceDeps {
  db: Db;
  clock: Clock;
  bus: FleetBus;
  outbox: Outbox;
  defaultIntervalS: number;
  /** How long a dropped MQTT session may stay away before the terminal counts as offline. */
  graceMs: number;
  observe: (obs: Observation[]) => Promise<void> | void;
  /** Brings device_state up to every heartbeat acknowledged (it is written behind). */
  syncState?: () => Promise<void>;
}

export function createPresence(deps: PresenceDeps) {
  const { db, clock, bus, outbox } = deps;
  // Devices this process knows to be online in the database: their heartbeats
  // need no presence write, so most batches skip the transaction altogether.
  // Dropped before the sweep moves a device; a miss only costs a read.
  const online = new Set<string>();
  /** Bumped by every sweep that moves devices: a batch that overlapped one learns nothing. */
  let sweeps = 0;

  /** The devices heard whose presence may need a write (not known to be online). */
  function needsWrite<T extends { deviceId: string }>(seen: T[]): T[] {
    return seen.filter((s) => !online.has(s.deviceId));
  }

  async function write(trx: Kysely<Database>, changes: PresenceChange[]): Promise<void> {
    for (const c of changes) {
      await outbox.add(trx, {
        type: 'device.presence_changed',
        subject: { type: 'device', id: c.deviceId },
        data: {
          deviceId: c.deviceId,
          merchantId: c.merchantId,
          model: c.model,
          tags: c.tags,
          from: c.from,
          to: c.to,
          at: c.at.toISOString(),
        },
      });
    }
  }

  function announce(changes: PresenceChange[]): void {
    if (changes.length === 0) return;
    outbox.notify();
    for (const c of changes)
      bus.emit('device.presence_changed', { deviceId: c.deviceId, from: c.from, to: c.to, at: c.at });
  }

  /** Inside the ingest transaction: the devices heard are online. Returns the after-commit step. */
  async function markOnline(trx: Kysely<Database>, seen: { deviceId: string; at: Date }[]): Promise<() => void> {
    const epoch = sweeps;
    const ids = seen.map((s) => s.deviceId);
    const current = await trx
      .selectFrom('device_presence')
      .select(['device_id', 'state'])
      .where('device_id', 'in', ids)
      .execute();
    const known = new Map(current.map((r) => [r.device_id, r.state as PresenceState]));
    const moving = seen.filter((s) => known.get(s.deviceId) !== 'online');
    const learn = () => {
      if (epoch === sweeps) for (const s of seen) online.add(s.deviceId);
    };
    if (moving.length === 0) return learn;
    await sql`
      INSERT INTO device_presence (device_id, state, since)
      SELECT d, 'online', a FROM unnest(${moving.map((m) => m.deviceId)}::text[], ${moving.map((m) => m.at.toISOString())}::timestamptz[]) AS x(d, a)
      ON CONFLICT (device_id) DO UPDATE SET state = 'online', since = excluded.since`.execute(trx);
    const meta = await trx
      .selectFrom('devices')
      .select(['id', 'merchant_id', 'model', 'tags'])
      .where(
        'id',
        'in',
        moving.map((m) => m.deviceId),
      )
      .execute();
    const byId = new Map(meta.map((m) => [m.id, m]));
    const changes = moving.map((m): PresenceChange => {
      const d = byId.get(m.deviceId);
      return {
        deviceId: m.deviceId,
        merchantId: d?.merchant_id ?? null,
        model: d?.model ?? '',
        tags: d?.tags ?? [],
        from: known.get(m.deviceId) ?? null,
        to: 'online',
        at: m.at,
      };
    });
    await write(trx, changes);
    return () => {
      learn();
      announce(changes);
    };
  }

  interface Candidate {
    device_id: string;
    state: string;
    last_seen_at: Date;
    connected: boolean;
    last_disconnected_at: Date | null;
    interval_s: number;
    merchant_id: string | null;
    model: string;
    tags: string[];
  }

  /** Terminals that may have to move: silent past the late mark, or with a closed session. */
  async function candidates(now: Date): Promise<Candidate[]> {
    const res = await sql<Candidate>`
      SELECT p.device_id, p.state, s.received_at AS last_seen_at, d.connected, d.last_disconnected_at, d.merchant_id, d.model, d.tags,
             coalesce((d.config->>'heartbeatIntervalS')::int, ${deps.defaultIntervalS}) AS interval_s
      FROM device_presence p JOIN devices d ON d.id = p.device_id JOIN device_state s ON s.device_id = p.device_id
      WHERE p.state <> 'missing' AND d.status IN ('active', 'in_repair')
        AND (NOT d.connected OR s.received_at < ${now.toISOString()}::timestamptz
             - make_interval(secs => ${LATE_AFTER_INTERVALS}::float8 * coalesce((d.config->>'heartbeatIntervalS')::int, ${deps.defaultIntervalS})))`.execute(
      db,
    );
    return res.rows;
  }

  /** One pass over the fleet with the injected clock; tests call it directly. Returns the changes made. */
  async function sweep(): Promise<PresenceChange[]> {
    await deps.syncState?.();
    const now = clock.now();
    const moves: PresenceChange[] = [];
    const seenAt = new Map<string, Date>();
    for (const c of await candidates(now)) {
      const from = c.state as PresenceState;
      const to = presenceTarget({
        now: now.getTime(),
        lastSeenAt: c.last_seen_at.getTime(),
        intervalS: Number(c.interval_s),
        connected: c.connected,
        disconnectedAt: c.last_disconnected_at?.getTime() ?? null,
        graceMs: deps.graceMs,
      });
      if (to === from || !canPresenceTransition(from, to)) continue;
      moves.push({ deviceId: c.device_id, merchantId: c.merchant_id, model: c.model, tags: c.tags, from, to, at: now });
      seenAt.set(c.device_id, c.last_seen_at);
    }
    if (moves.length === 0) return [];
    sweeps++;
    for (const m of moves) online.delete(m.deviceId);
    const applied = await db.transaction().execute(async (trx) => {
      const done: PresenceChange[] = [];
      for (const m of moves) {
        // Compare-and-set: a heartbeat committed since the read wins (asked of heartbeats, the
        // record, as device_state is written behind them).
        const res = await sql`
          UPDATE device_presence p SET state = ${m.to}, since = ${now.toISOString()}::timestamptz
          WHERE p.device_id = ${m.deviceId} AND p.state = ${m.from}
            AND NOT EXISTS (SELECT 1 FROM heartbeats h WHERE h.device_id = p.device_id AND h.received_at > ${seenAt.get(m.deviceId)!.toISOString()}::timestamptz)`.execute(
          trx,
        );
        if (Number(res.numAffectedRows ?? 0) > 0) done.push(m);
      }
      await write(trx, done);
      return done;
    });
    announce(applied);
    await deps.observe(applied.map((c) => ({ deviceId: c.deviceId, at: c.at, metrics: { presence: c.to } })));
    return applied;
  }

  async function get(deviceId: string): Promise<{ state: PresenceState; since: string } | null> {
    const row = await db.selectFrom('device_presence').selectAll().where('device_id', '=', deviceId).executeTakeFirst();
    return row ? { state: row.state as PresenceState, since: row.since.toISOString() } : null;
  }

  return { needsWrite, markOnline, sweep, get };
}

export type Presence = ReturnType<typeof createPresence>;
