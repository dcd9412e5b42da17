// Device lifecycle (after Verifone VHQ's Active / out-for-repair / swapped-out).
export const DEVICE_STATUSES = ['pending', 'active', 'suspended', 'in_repair', 'decommissioned'] as const;
export type DeviceStatus = (typeof DEVICE_STATUSES)[number];

export const DEVICE_TRANSITIONS: Readonly<Record<DeviceStatus, readonly DeviceStatus[]>> = {
  pending: ['active', 'decommissioned'],
  active: ['suspended', 'in_repair', 'decommissioned'],
  suspended: ['active', 'decommissioned'],
  in_repair: ['active', 'decommissioned'],
  decommissioned: [],
};

export function canTransition(from: DeviceStatus, to: DeviceStatus): boolean {
  return DEVICE_TRANSITIONS[from].includes(to);
}

export function isTerminal(status: DeviceStatus): boolean {
  return DEVICE_TRANSITIONS[status].length === 0;
}

/** Statuses whose terminals may hold an MQTT session. */
export function mayConnect(status: string): boolean {
  return status === 'active' || status === 'in_repair';
}
