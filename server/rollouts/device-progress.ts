// What terminals tell us about their update: OTA reports, heartbeats that show
// the new version, and the health gate during the soak time.
import type { Heartbeat, OtaReport } from '../../protocol/messages.ts';
import { json, type Db } from '../db/index.ts';
import type { Commands } from '../devices/commands.service.ts';
import type { Clock } from '../lib/clock.ts';
import type { RolloutSpec } from './rollouts.schemas.ts';
import type { RolloutDeviceRow } from './rollouts.tables.ts';
import { DEVICE_STATES, IN_FLIGHT, OTA_TO_DEVICE, PERMANENT_ERRORS, canDevice, type RolloutDeviceState } from './states.ts';

/** A terminal that reboots this many more times during its soak is crash-looping. */
export const CRASH_LOOP_BOOTS = 2;
const DEFER_RETRY_MS = 60_000;

export type HealthGate = (deviceId: string, since: Date) => Promise<string | null>;

export function createDeviceProgress(deps: { db: Db; clock: Clock; commands: Commands; onChange: () => void }) {
  const { db, clock } = deps;

  async function move(row: RolloutDeviceRow, to: RolloutDeviceState, extra: Record<string, unknown> = {}): Promise<boolean> {
    if (!canDevice(row.state as RolloutDeviceState, to)) return false;
    const res = await db.updateTable('rollout_devices').set({ state: to, updated_at: clock.now(), ...extra })
      .where('rollout_id', '=', row.rollout_id).where('device_id', '=', row.device_id).where('state', '=', row.state)
      .executeTakeFirst();
    const moved = Number(res.numUpdatedRows) > 0;
    if (moved) deps.onChange();
    return moved;
  }

  /** A failed attempt: retried with backoff while attempts remain and the cause is transient. */
  async function fail(row: RolloutDeviceRow, spec: RolloutSpec, code: string, message: string): Promise<void> {
    const failures = row.failures + 1;
    const error = json({ code, message, attempt: row.sends });
    if (row.command_id) await deps.commands.withdraw(row.command_id);
    if (!PERMANENT_ERRORS.has(code) && failures <= spec.retries && row.state !== 'verifying') {
      const backoff = Math.min(30 * 60_000, 60_000 * 2 ** (failures - 1));
      await move(row, 'queued', { failures, last_error: error, next_attempt_at: new Date(clock.nowMs() + backoff) });
      return;
    }
    await move(row, code === 'timeout' ? 'timed_out' : 'failed', { failures, last_error: error, finished_at: clock.now() });
  }

  /**
   * A progress report moves its job forward in one statement, from any state the
   * table allows; true when the report was of that kind (whether or not it moved).
   */
  async function advance(deviceId: string, report: OtaReport): Promise<boolean> {
    const to = OTA_TO_DEVICE[report.state];
    if (!to || to === 'deferred') return false;
    const from = DEVICE_STATES.filter((s) => s !== to && canDevice(s, to));
    const res = await db.updateTable('rollout_devices').set({ state: to, updated_at: clock.now() })
      .where('device_id', '=', deviceId).where('job_id', '=', report.jobId).where('state', 'in', from).executeTakeFirst();
    if (Number(res.numUpdatedRows) > 0) deps.onChange();
    return true;
  }

  async function onOta(row: RolloutDeviceRow, spec: RolloutSpec, report: OtaReport): Promise<void> {
    if (report.state === 'failed' || report.state === 'rejected') {
      return fail(row, spec, report.error?.code ?? report.state, report.error?.message ?? `terminal reported ${report.state}`);
    }
    if (report.state === 'deferred') {
      // Busy with a payment: try again later, without counting a failure.
      if (row.command_id) await deps.commands.withdraw(row.command_id);
      await move(row, 'deferred', { next_attempt_at: new Date(clock.nowMs() + DEFER_RETRY_MS) });
      return;
    }
    const to = OTA_TO_DEVICE[report.state];
    if (to && to !== row.state) await move(row, to);
  }

  /** A heartbeat: the new version means installed; extra boots in the soak mean a crash loop. */
  async function onHeartbeat(row: RolloutDeviceRow, spec: RolloutSpec, target: string, version: string | null, hb: Heartbeat): Promise<void> {
    const state = row.state as RolloutDeviceState;
    if ((IN_FLIGHT.includes(state) || state === 'deferred') && version === target) {
      const soakUntil = new Date(clock.nowMs() + spec.soakMinutes * 60_000);
      await move(row, 'verifying', { installed_at: clock.now(), install_boot_id: hb.bootId, soak_until: soakUntil, boots_in_soak: 0 });
      return;
    }
    if (state !== 'verifying') return;
    if (version !== target) return fail(row, spec, 'version_reverted', `terminal reports ${version ?? 'nothing'} instead of ${target}`);
    if (hb.bootId !== row.install_boot_id) {
      const boots = row.boots_in_soak + 1;
      if (boots >= CRASH_LOOP_BOOTS) return fail(row, spec, 'crash_loop', `${boots} reboots during the soak time`);
      await db.updateTable('rollout_devices').set({ boots_in_soak: boots, install_boot_id: hb.bootId, updated_at: clock.now() })
        .where('rollout_id', '=', row.rollout_id).where('device_id', '=', row.device_id).where('state', '=', 'verifying').execute();
    }
  }

  /** End of soak: healthy → succeeded; a health gate failure fails the device (and counts for thresholds). */
  async function settleSoak(row: RolloutDeviceRow, spec: RolloutSpec, gate: HealthGate, connected: boolean): Promise<void> {
    if (!connected) return fail(row, spec, 'offline_during_soak', 'terminal was offline at the end of its soak time');
    const problem = await gate(row.device_id, row.installed_at ?? row.updated_at);
    if (problem) return fail(row, spec, 'health_gate', problem);
    await move(row, 'succeeded', { finished_at: clock.now() });
  }

  return { move, fail, advance, onOta, onHeartbeat, settleSoak };
}

export type DeviceProgress = ReturnType<typeof createDeviceProgress>;
