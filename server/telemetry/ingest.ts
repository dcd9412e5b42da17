// Heartbeat ingest. Heartbeats are grouped and written in one statement per
// batch; a heartbeat's promise resolves only when its batch is committed, and
// the broker sends PUBACK only then (server/mqtt/broker.ts).
import { sql } from 'kysely';
import type { Heartbeat } from '../../protocol/messages.ts';
import type { Db } from '../db/index.ts';
import type { FleetBus } from '../events/bus-events.ts';
import { Batcher } from '../lib/batcher.ts';

interface Item {
  deviceId: string;
  receivedAt: Date;
  hb: Heartbeat;
}

export function createIngest(deps: { db: Db; bus: FleetBus; maxItems?: number; maxDelayMs?: number }) {
  async function flush(items: Item[]): Promise<void> {
    // Several heartbeats of one device in a batch: the latest wins on the device row.
    const latest = new Map<string, Item>();
    for (const it of items) {
      const prev = latest.get(it.deviceId);
      if (!prev || prev.receivedAt <= it.receivedAt) latest.set(it.deviceId, it);
    }
    const rows = [...latest.values()];
    await sql`
      UPDATE devices AS d
      SET last_seen_at = v.seen, firmware = v.firmware, apps = v.apps::jsonb, updated_at = d.updated_at
      FROM unnest(${rows.map((r) => r.deviceId)}::text[], ${rows.map((r) => r.receivedAt.toISOString())}::timestamptz[],
                  ${rows.map((r) => r.hb.firmware)}::text[], ${rows.map((r) => JSON.stringify(r.hb.apps))}::text[])
        AS v(id, seen, firmware, apps)
      WHERE d.id = v.id AND (d.last_seen_at IS NULL OR d.last_seen_at <= v.seen)`.execute(deps.db);
    for (const r of rows) deps.bus.emit('device.heartbeat', { deviceId: r.deviceId, at: r.receivedAt });
  }

  const batcher = new Batcher<Item>({ maxItems: deps.maxItems ?? 2_000, maxDelayMs: deps.maxDelayMs ?? 20, flush });

  return {
    accept: (deviceId: string, receivedAt: Date, hb: Heartbeat) => batcher.add({ deviceId, receivedAt, hb }),
    drain: () => batcher.drain(),
    close: () => batcher.close(),
  };
}

export type Ingest = ReturnType<typeof createIngest>;
