// Device events (fleet/{id}/event): recorded once (a QoS 1 resend carries the
// same device time and type) and turned into rule observations, so a tamper
// event raises the tamper alert without waiting for the next heartbeat.
import type { DeviceEvent } from '../../protocol/messages.ts';
import { json, type Db } from '../db/index.ts';
import type { Observation } from './ingest.ts';

/** Which vitals an event stands for. */
const EVENT_METRICS: Record<string, Record<string, unknown>> = {
  tamper: { security: { tamper: true } },
  printer_jam: { printer: { state: 'jam' } },
};

export function createDeviceEvents(deps: { db: Db; observe: (obs: Observation[]) => void }) {
  async function record(deviceId: string, receivedAt: Date, ev: DeviceEvent): Promise<void> {
    const inserted = await deps.db.insertInto('device_events').values({
      device_id: deviceId, type: ev.type, severity: ev.severity ?? null, ts: new Date(ev.ts), received_at: receivedAt, data: json(ev.data ?? {}),
    }).onConflict((oc) => oc.columns(['device_id', 'ts', 'type']).doNothing()).returning('id').executeTakeFirst();
    if (!inserted) return;
    deps.observe([{ deviceId, at: receivedAt, metrics: { ...EVENT_METRICS[ev.type], event: { type: ev.type, severity: ev.severity ?? null } } }]);
  }

  async function list(deviceId: string, limit: number) {
    const rows = await deps.db.selectFrom('device_events').selectAll().where('device_id', '=', deviceId).orderBy('id', 'desc').limit(limit).execute();
    return rows.map((r) => ({ type: r.type, severity: r.severity, ts: r.ts.toISOString(), receivedAt: r.received_at.toISOString(), data: r.data }));
  }

  return { record, list };
}

export type DeviceEvents = ReturnType<typeof createDeviceEvents>;
