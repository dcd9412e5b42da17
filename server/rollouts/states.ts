// The two state machines of the OTA engine, as data (HOUSE-RULES §6).

export const ROLLOUT_STATES = ['draft', 'scheduled', 'running', 'paused', 'completed', 'cancelled', 'failed'] as const;
export type RolloutState = (typeof ROLLOUT_STATES)[number];

export const ROLLOUT_TRANSITIONS: Readonly<Record<RolloutState, readonly RolloutState[]>> = {
  draft: ['scheduled', 'running', 'cancelled'],
  scheduled: ['running', 'paused', 'cancelled'],
  running: ['paused', 'completed', 'cancelled', 'failed'],
  paused: ['running', 'cancelled', 'failed'],
  completed: [],
  cancelled: [],
  failed: [],
};

export const canRollout = (from: RolloutState, to: RolloutState) => ROLLOUT_TRANSITIONS[from].includes(to);
export const isRolloutFinal = (s: RolloutState) => ROLLOUT_TRANSITIONS[s].length === 0;
/** Rollouts whose devices count as "in an active rollout" for their component. */
export const ACTIVE_ROLLOUT_STATES: readonly RolloutState[] = ['draft', 'scheduled', 'running', 'paused'];

export const DEVICE_STATES = [
  'pending',
  'waiting_window',
  'queued',
  'sent',
  'accepted',
  'deferred',
  'downloading',
  'installing',
  'rebooting',
  'verifying',
  'succeeded',
  'failed',
  'timed_out',
  'skipped',
  'cancelled',
] as const;
export type RolloutDeviceState = (typeof DEVICE_STATES)[number];

/** The terminal holds the job: counted against maxInFlight and the timeout. */
export const IN_FLIGHT: readonly RolloutDeviceState[] = ['sent', 'accepted', 'downloading', 'installing', 'rebooting'];
/** Not yet sent; may be dispatched when its wave, window and rate allow. */
export const WAITING: readonly RolloutDeviceState[] = ['pending', 'waiting_window', 'queued', 'deferred'];
export const FINISHED: readonly RolloutDeviceState[] = ['succeeded', 'failed', 'timed_out'];

const CLOSE: RolloutDeviceState[] = ['failed', 'timed_out', 'cancelled', 'skipped'];
const PROGRESS: RolloutDeviceState[] = ['accepted', 'deferred', 'downloading', 'installing', 'rebooting', 'verifying'];

// `queued` from an in-flight state is a retry after a transient failure;
// `deferred` is a busy terminal and never counts as a failure.
export const DEVICE_TRANSITIONS: Readonly<Record<RolloutDeviceState, readonly RolloutDeviceState[]>> = {
  pending: ['waiting_window', 'queued', 'skipped', 'cancelled'],
  waiting_window: ['queued', 'skipped', 'cancelled'],
  queued: ['sent', 'waiting_window', 'skipped', 'cancelled'],
  sent: [...PROGRESS, 'queued', ...CLOSE],
  accepted: [...PROGRESS.filter((s) => s !== 'accepted'), 'queued', ...CLOSE],
  deferred: ['queued', 'sent', 'accepted', 'downloading', 'installing', 'rebooting', 'verifying', ...CLOSE],
  downloading: ['deferred', 'installing', 'rebooting', 'verifying', 'queued', ...CLOSE],
  installing: ['rebooting', 'verifying', 'queued', ...CLOSE],
  rebooting: ['verifying', 'queued', ...CLOSE],
  verifying: ['succeeded', 'failed', 'cancelled'],
  succeeded: [],
  failed: [],
  timed_out: [],
  skipped: [],
  cancelled: [],
};

export const canDevice = (from: RolloutDeviceState, to: RolloutDeviceState) => DEVICE_TRANSITIONS[from].includes(to);
export const isDeviceFinal = (s: RolloutDeviceState) => DEVICE_TRANSITIONS[s].length === 0;

/** Where an OTA report (`fleet/{id}/ota` state) moves a rollout device. */
export const OTA_TO_DEVICE: Readonly<Record<string, RolloutDeviceState>> = {
  accepted: 'accepted',
  deferred: 'deferred',
  downloading: 'downloading',
  downloaded: 'downloading',
  verifying: 'downloading', // the terminal checks the package; our `verifying` is the post-install soak
  installing: 'installing',
  rebooting: 'rebooting',
};

/** Error codes that retrying cannot fix: the job fails at once. */
export const PERMANENT_ERRORS = new Set([
  'incompatible_model',
  'downgrade_refused',
  'bad_signature',
  'bad_manifest',
  'manifest_mismatch',
  'requirements_not_met',
  'expired_command',
]);
