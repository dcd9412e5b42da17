// Connection bookkeeping: connect/disconnect times and the last will, written
// in batches so a reconnect storm costs a few statements, not one per terminal.
import { sql } from 'kysely';
import type { Logger } from 'pino';
import { isTransientDbError, type Db } from '../db/index.ts';
import type { FleetBus } from '../events/bus-events.ts';
import type { Clock } from '../lib/clock.ts';
import { Batcher } from '../lib/batcher.ts';

type SessionEvent = { deviceId: string; at: Date; kind: 'connected' | 'disconnected' | 'will' };

export function createSessions(deps: { db: Db; clock: Clock; bus: FleetBus; log: Logger }) {
  async function flush(events: SessionEvent[]): Promise<void> {
    // Events of one device are applied in order; for the row only the last of each kind matters.
    const ids = events.map((e) => e.deviceId);
    const kinds = events.map((e) => e.kind);
    const ats = events.map((e) => e.at.toISOString());
    const ords = events.map((_, i) => i);
    await sql`
      WITH ev AS (
        SELECT id, kind, at, ord FROM unnest(${ids}::text[], ${kinds}::text[], ${ats}::timestamptz[], ${ords}::int[]) AS t(id, kind, at, ord)
      ), agg AS (
        SELECT id,
          max(at) FILTER (WHERE kind = 'connected') AS connected_at,
          max(at) FILTER (WHERE kind = 'disconnected') AS disconnected_at,
          max(at) FILTER (WHERE kind = 'will') AS will_at,
          (array_agg(kind ORDER BY ord DESC) FILTER (WHERE kind <> 'will'))[1] AS last_kind
        FROM ev GROUP BY id
      )
      UPDATE devices AS d SET
        last_connected_at = coalesce(agg.connected_at, d.last_connected_at),
        last_disconnected_at = coalesce(agg.disconnected_at, d.last_disconnected_at),
        last_will_at = coalesce(agg.will_at, d.last_will_at),
        connected = CASE agg.last_kind WHEN 'connected' THEN true WHEN 'disconnected' THEN false ELSE d.connected END
      FROM agg WHERE d.id = agg.id`.execute(deps.db);
  }

  const batcher = new Batcher<SessionEvent>({ maxItems: 1_000, maxDelayMs: 50, flush, retryable: isTransientDbError });

  function record(deviceId: string, kind: SessionEvent['kind']): Promise<void> {
    const at = deps.clock.now();
    if (kind === 'connected') deps.bus.emit('device.connected', { deviceId, at });
    if (kind === 'disconnected') deps.bus.emit('device.disconnected', { deviceId, at });
    return batcher.add({ deviceId, at, kind });
  }

  return {
    connected: (id: string) =>
      void record(id, 'connected').catch((err: unknown) =>
        deps.log.error({ err, deviceId: id }, 'session write failed'),
      ),
    disconnected: (id: string) =>
      void record(id, 'disconnected').catch((err: unknown) =>
        deps.log.error({ err, deviceId: id }, 'session write failed'),
      ),
    /** The last will on `presence`: durable before the broker goes on. */
    will: (id: string) => record(id, 'will'),
    drain: () => batcher.drain(),
  };
}

export type Sessions = ReturnType<typeof createSessions>;
