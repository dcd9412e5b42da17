// Tables of the telemetry module (migrations/2026-11-25T1400-telemetry.ts).
import type { Generated, Selectable } from 'kysely';
import type { Json, Timestamp } from '../db/schema.ts';

export interface HeartbeatsTable {
  device_id: string;
  boot_id: string;
  seq: number;
  ts: Timestamp;
  received_at: Timestamp;
  drift_ms: number;
  firmware: string;
  vitals: Json<Record<string, unknown>>;
}

export interface HeartbeatHourlyTable {
  device_id: string;
  hour: Timestamp;
  count: number;
  stats: Json<Record<string, number | null>>;
}

export interface DeviceStateTable {
  device_id: string;
  boot_id: string;
  seq: number;
  ts: Timestamp;
  received_at: Timestamp;
  drift_ms: number;
  vitals: Json<Record<string, unknown>>;
  reader_ok: Generated<number>;
  reader_err: Generated<number>;
}

export interface DeviceBootsTable {
  device_id: string;
  boot_id: string;
  at: Timestamp;
  reason: string | null;
}

export interface DeviceEventsTable {
  id: Generated<number>;
  device_id: string;
  type: string;
  severity: string | null;
  ts: Timestamp;
  received_at: Timestamp;
  data: Json<Record<string, unknown>>;
}

export interface TelemetryTables {
  heartbeats: HeartbeatsTable;
  heartbeat_hourly: HeartbeatHourlyTable;
  device_state: DeviceStateTable;
  device_boots: DeviceBootsTable;
  device_events: DeviceEventsTable;
}

export type HeartbeatRow = Selectable<HeartbeatsTable>;
export type DeviceStateRow = Selectable<DeviceStateTable>;
