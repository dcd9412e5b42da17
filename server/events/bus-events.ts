// The fleet's domain events on the in-process bus. Modules emit after their
// transaction commits; bus-metrics.ts counts them for /metrics. What leaves
// the process (webhooks) goes through the outbox, written in the transaction.
import type { TypedBus } from '../lib/bus.ts';

export interface FleetEvents extends Record<string, unknown> {
  'device.enrolled': { deviceId: string; merchantId: string | null; status: string };
  'device.updated': { deviceId: string; changes: string[] };
  'device.status_changed': { deviceId: string; from: string; to: string };
  'device.decommissioned': { deviceId: string };
  'device.credentials_rotated': { deviceId: string };
  'device.config_changed': { deviceId: string; revision: number };
  'device.connected': { deviceId: string; at: Date };
  'device.disconnected': { deviceId: string; at: Date };
  'device.presence_changed': { deviceId: string; from: string | null; to: string; at: Date };
  'command.created': { commandId: string; deviceId: string; type: string };
  'command.replied': { commandId: string; deviceId: string; state: string };
  'command.failed': { commandId: string; deviceId: string; type: string; state: string; error?: unknown };
}

export type FleetBus = TypedBus<FleetEvents>;
