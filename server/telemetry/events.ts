// Device events (fleet/{id}/event): recorded once (a QoS 1 resend carries the
// same device time and type) and turned into rule observations, so a tamper
// event raises the tamper alert without waiting for the next heartbeat.
import { sql } from 'kysely';
import type { DeviceEvent } from '../../protocol/messages.ts';
import { isTransientDbError, json, type Db } from '../db/index.ts';
import { Batcher } from '../lib/batcher.ts';
import type { Observation } from './ingest.ts';

/** Which vitals an event stands for. */
const EVENT_METRICS: Record<string, Record<string, unknown>> = {
  tamper: { security: { tamper: true } },
  printer_jam: { printer: { state: 'jam' } },
};

interface Item {
  deviceId: string;
  receivedAt: Date;
  ts: Date;
  ev: DeviceEvent;
  key: string;
}

const eventKey = (deviceId: string, tsMs: number, type: string) => `${deviceId}\n${tsMs}\n${type}`;

export function createDeviceEvents(deps: { db: Db; observe: (obs: Observation[]) => void }) {
  // Group commit: after an update reboot every terminal sends its `reboot` event
  // at once; the PUBACK waits for the batch, up to 10 ms.
  const batcher = new Batcher<Item>({ maxItems: 2_000, maxDelayMs: 10, flush: write, retryable: isTransientDbError });

  /** Resolves once the event is committed (or was recorded before). */
  function record(deviceId: string, receivedAt: Date, ev: DeviceEvent): Promise<void> {
    const ts = new Date(ev.ts);
    // Refused here, alone: in the batch it would fail the other terminals' events too.
    if (Number.isNaN(ts.getTime())) return Promise.reject(new RangeError(`event time ${ev.ts} out of range`));
    return batcher.add({ deviceId, receivedAt, ts, ev, key: eventKey(deviceId, ts.getTime(), ev.type) });
  }

  /** One statement per batch; an event repeated within the batch is written once. */
  async function write(items: Item[]): Promise<void> {
    const seen = new Set<string>();
    const batch = items.filter((i) => {
      if (seen.has(i.key)) return false;
      seen.add(i.key);
      return true;
    });
    const res = await sql<{ device_id: string; ms: number; type: string }>`
      INSERT INTO device_events (device_id, type, severity, ts, received_at, data)
      SELECT d, t, s, ts, r, data::jsonb
      FROM unnest(${batch.map((i) => i.deviceId)}::text[], ${batch.map((i) => i.ev.type)}::text[], ${batch.map((i) => i.ev.severity ?? null)}::text[],
                  ${batch.map((i) => i.ts.toISOString())}::timestamptz[], ${batch.map((i) => i.receivedAt.toISOString())}::timestamptz[],
                  ${batch.map((i) => json(i.ev.data ?? {}))}::text[])
        AS x(d, t, s, ts, r, data)
      ON CONFLICT (device_id, ts, type) DO NOTHING
      RETURNING device_id, (extract(epoch FROM ts) * 1000)::float8 AS ms, type`.execute(deps.db);
    if (res.rows.length === 0) return;
    const inserted = new Set(res.rows.map((r) => eventKey(r.device_id, Number(r.ms), r.type)));
    deps.observe(
      batch
        .filter((i) => inserted.has(i.key))
        .map(({ deviceId, receivedAt, ev }) => ({
          deviceId,
          at: receivedAt,
          metrics: { ...EVENT_METRICS[ev.type], event: { type: ev.type, severity: ev.severity ?? null } },
        })),
    );
  }

  async function list(deviceId: string, limit: number) {
    const rows = await deps.db
      .selectFrom('device_events')
      .selectAll()
      .where('device_id', '=', deviceId)
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
    return rows.map((r) => ({
      type: r.type,
      severity: r.severity,
      ts: r.ts.toISOString(),
      receivedAt: r.received_at.toISOString(),
      data: r.data,
    }));
  }

  /** Writes the events queued (graceful shutdown). */
  const drain = () => batcher.drain();

  return { record, list, drain };
}

export type DeviceEvents = ReturnType<typeof createDeviceEvents>;
