// What terminals tell us about their update: OTA reports, heartbeats that show
// the new version, and the health gate during the soak time. A whole fleet
// reports at once during a rollout, so the common moves are batched
// (progress-batch.ts); the rare ones (failures, deferrals, crash loops) go row
// by row through `move` and `fail`.
import type { Heartbeat, OtaReport } from '../../protocol/messages.ts';
import { isTransientDbError, json, type Db } from '../db/index.ts';
import type { Commands } from '../devices/commands.service.ts';
import { Batcher } from '../lib/batcher.ts';
import type { Clock } from '../lib/clock.ts';
import { inRounds } from '../lib/batcher.ts';
import {
  addOwn,
  advanceMany,
  moveMany,
  recordOutcome,
  verifyMany,
  type OwnOutcome,
  type ProgressMove,
} from './progress-batch.ts';
import type { RolloutSpec } from './rollouts.schemas.ts';
import type { RolloutDeviceRow } from './rollouts.tables.ts';
import { IN_FLIGHT, OTA_TO_DEVICE, PERMANENT_ERRORS, canDevice, type RolloutDeviceState } from './states.ts';

/** A terminal that reboots this many more times during its soak is crash-looping. */
export const CRASH_LOOP_BOOTS = 2;
const DEFER_RETRY_MS = 60_000;

/** OTA reports that need the row and the rollout's policy (retries, deferral); the others are plain progress or nothing. */
export const POLICY_REPORTS: ReadonlySet<string> = new Set(['failed', 'rejected', 'deferred']);

/** The health of terminals whose soak ends: a problem for each device that has one. */
export type HealthGate = (checks: { deviceId: string; since: Date }[]) => Promise<Map<string, string>>;

/** What a heartbeat tells about one rollout device; an error is recorded on `item`, the heartbeat's. */
export interface HeartbeatCheck {
  row: RolloutDeviceRow;
  spec: RolloutSpec;
  target: string;
  version: string | null;
  hb: Heartbeat;
  item: OwnOutcome;
}

/** An OTA report in its batch: a progress move, or a policy report handled row by row in its place. */
type ReportItem = (ProgressMove | { deviceId: string; jobId: string; handle: () => Promise<void> }) & OwnOutcome;

/** The reported version is the target while the update is out: installed, the soak starts. */
const isInstall = (state: RolloutDeviceState, target: string, version: string | null) =>
  (IN_FLIGHT.includes(state) || state === 'deferred') && version === target;

const jobKey = (i: { deviceId: string; jobId: string }) => `${i.deviceId}\n${i.jobId}`;

/**
 * Drops a progress report that repeats the job's previous one (downloading at
 * 25, 50, 75 %): the first moved the row or could not, and so cannot the repeat.
 */
function withoutRepeats(items: readonly ReportItem[]): ReportItem[] {
  const last = new Map<string, ReportItem>();
  return items.filter((item) => {
    const prev = last.get(jobKey(item));
    last.set(jobKey(item), item);
    return !(prev && 'to' in prev && 'to' in item && prev.to === item.to);
  });
}

export function createDeviceProgress(deps: { db: Db; clock: Clock; commands: Commands; onChange: () => void }) {
  const { db, clock } = deps;
  // Group commit of OTA reports: the PUBACK waits for the batch, up to 10 ms.
  const reports = new Batcher<ReportItem>({
    maxItems: 2_000,
    maxDelayMs: 10,
    flush: writeReports,
    retryable: isTransientDbError,
  });

  async function move(
    row: RolloutDeviceRow,
    to: RolloutDeviceState,
    extra: Record<string, unknown> = {},
  ): Promise<boolean> {
    if (!canDevice(row.state as RolloutDeviceState, to)) return false;
    const res = await db
      .updateTable('rollout_devices')
      .set({ state: to, updated_at: clock.now(), ...extra })
      .where('rollout_id', '=', row.rollout_id)
      .where('device_id', '=', row.device_id)
      .where('state', '=', row.state)
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
    await move(row, code === 'timeout' ? 'timed_out' : 'failed', {
      failures,
      last_error: error,
      finished_at: clock.now(),
    });
  }

  /**
   * A progress report moves its job forward from any state the table allows, in
   * one statement for the whole batch; resolves once that is committed. True
   * when the report was of that kind (whether or not it moved).
   */
  async function advance(deviceId: string, report: OtaReport): Promise<boolean> {
    const to = OTA_TO_DEVICE[report.state];
    if (!to || to === 'deferred') return false;
    // Within one job a row only moves forward, so a report repeating the job's
    // last committed target (downloading at 25, 50, 75 %, downloaded,
    // verifying) cannot move it: no statement. Half of a terminal's reports.
    if (reported.get(report.jobId) === to) return true;
    await reports.add({ deviceId, jobId: report.jobId, to });
    remember(report.jobId, to);
    return true;
  }

  // The last target committed per job, for the repeats above; a bounded memory (a miss costs one no-op statement).
  const reported = new Map<string, RolloutDeviceState>();
  function remember(jobId: string, to: RolloutDeviceState): void {
    reported.delete(jobId);
    reported.set(jobId, to);
    if (reported.size <= 50_000) return;
    for (const oldest of reported.keys()) {
      reported.delete(oldest);
      if (reported.size <= 45_000) break;
    }
  }

  /**
   * Runs `handle` (a policy report of the job) in the report batch, after the
   * job's reports that came before it: a failure read before an earlier progress
   * move is written would be guarded by a stale state and lost.
   */
  function inOrder(deviceId: string, jobId: string, handle: () => Promise<void>): Promise<void> {
    return addOwn(reports, { deviceId, jobId, handle });
  }

  async function writeReports(items: ReportItem[]): Promise<void> {
    for (const item of items) delete item.failure; // from an attempt the batcher is repeating
    let moved = 0;
    for (const round of inRounds(withoutRepeats(items), jobKey)) {
      moved += await advanceMany(
        db,
        clock.now(),
        round.filter((i): i is ProgressMove & OwnOutcome => 'to' in i),
      );
      for (const item of round) if ('handle' in item) await recordOutcome(item, item.handle);
    }
    if (moved > 0) deps.onChange();
  }

  async function onOta(row: RolloutDeviceRow, spec: RolloutSpec, report: OtaReport): Promise<void> {
    if (report.state === 'failed' || report.state === 'rejected') {
      return fail(
        row,
        spec,
        report.error?.code ?? report.state,
        report.error?.message ?? `terminal reported ${report.state}`,
      );
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

  /**
   * Heartbeats of distinct rows: installs start their soak in one statement;
   * the rest (version reverted, reboots in the soak) row by row, each keeping
   * its own error.
   */
  async function onHeartbeats(checks: readonly HeartbeatCheck[]): Promise<void> {
    const installs = new Set(checks.filter((c) => isInstall(c.row.state as RolloutDeviceState, c.target, c.version)));
    const moved = await verifyMany(
      db,
      clock.now(),
      [...installs].map((c) => ({
        row: c.row,
        bootId: c.hb.bootId,
        soakUntil: new Date(clock.nowMs() + c.spec.soakMinutes * 60_000),
      })),
    );
    if (moved > 0) deps.onChange();
    for (const c of checks) {
      if (!installs.has(c)) await recordOutcome(c.item, () => onHeartbeat(c.row, c.spec, c.target, c.version, c.hb));
    }
  }

  /** A heartbeat: the new version means installed; extra boots in the soak mean a crash loop. */
  async function onHeartbeat(
    row: RolloutDeviceRow,
    spec: RolloutSpec,
    target: string,
    version: string | null,
    hb: Heartbeat,
  ): Promise<void> {
    const state = row.state as RolloutDeviceState;
    if (isInstall(state, target, version)) {
      const soakUntil = new Date(clock.nowMs() + spec.soakMinutes * 60_000);
      await move(row, 'verifying', {
        installed_at: clock.now(),
        install_boot_id: hb.bootId,
        soak_until: soakUntil,
        boots_in_soak: 0,
      });
      return;
    }
    if (state !== 'verifying') return;
    if (version !== target)
      return fail(row, spec, 'version_reverted', `terminal reports ${version ?? 'nothing'} instead of ${target}`);
    if (hb.bootId !== row.install_boot_id) {
      const boots = row.boots_in_soak + 1;
      if (boots >= CRASH_LOOP_BOOTS) return fail(row, spec, 'crash_loop', `${boots} reboots during the soak time`);
      await db
        .updateTable('rollout_devices')
        .set({ boots_in_soak: boots, install_boot_id: hb.bootId, updated_at: clock.now() })
        .where('rollout_id', '=', row.rollout_id)
        .where('device_id', '=', row.device_id)
        .where('state', '=', 'verifying')
        .execute();
    }
  }

  /**
   * End of soak for rows of one rollout: healthy → succeeded, all in one
   * statement; offline or a health gate failure fails the device (and counts for
   * thresholds).
   */
  async function settleSoaks(
    rows: readonly RolloutDeviceRow[],
    spec: RolloutSpec,
    gate: HealthGate,
    isConnected: (deviceId: string) => boolean,
  ): Promise<void> {
    const connected = rows.map((r) => isConnected(r.device_id));
    const online = rows.filter((_, i) => connected[i]);
    const offline = rows.filter((_, i) => !connected[i]);
    for (const row of offline)
      await fail(row, spec, 'offline_during_soak', 'terminal was offline at the end of its soak time');
    const problems = await gate(online.map((r) => ({ deviceId: r.device_id, since: r.installed_at ?? r.updated_at })));
    for (const row of online) {
      const problem = problems.get(row.device_id);
      if (problem) await fail(row, spec, 'health_gate', problem);
    }
    const healthy = online.filter((r) => !problems.has(r.device_id));
    if ((await moveMany(db, clock.now(), healthy, 'succeeded', { finished_at: clock.now() })) > 0) deps.onChange();
  }

  return { fail, advance, inOrder, onOta, onHeartbeats, settleSoaks, drain: () => reports.drain() };
}

export type DeviceProgress = ReturnType<typeof createDeviceProgress>;
