// The in-process bus's consumer: every fleet event a module emits after its
// commit is counted, so /metrics shows the fleet moving (enrolments, presence
// changes, command results) without a query. Webhooks read the outbox instead.
import type { Metrics } from '../lib/metrics.ts';
import type { FleetBus, FleetEvents } from './bus-events.ts';

const COUNTED: (keyof FleetEvents)[] = [
  'device.enrolled',
  'device.updated',
  'device.status_changed',
  'device.decommissioned',
  'device.credentials_rotated',
  'device.config_changed',
  'device.connected',
  'device.disconnected',
  'device.presence_changed',
  'command.created',
  'command.replied',
  'command.failed',
];

/** Subscribes the fleet counters to the bus; returns the unsubscribe. */
export function countFleetEvents(bus: FleetBus, metrics: Metrics): () => void {
  const offs = COUNTED.map((type) => bus.on(type, () => metrics.fleetEvents.inc({ type })));
  offs.push(bus.on('device.presence_changed', (e) => metrics.presenceChanges.inc({ to: e.to })));
  offs.push(bus.on('command.replied', (e) => metrics.commandResults.inc({ state: e.state })));
  return () => {
    for (const off of offs) off();
  };
}
