// Who can take an update, and why not: the rules shared by the dry-run plan
// and by rollout creation.
import semver from 'semver';
import type { TradingHours } from '../../protocol/http.ts';
import type { Device } from '../db/schema.ts';
import type { ArtifactRow } from '../artifacts/artifacts.tables.ts';
import { versionOf } from './cohorts.service.ts';
import { MaintenanceWindow } from './cron-window.ts';
import type { RolloutSpec } from './rollouts.schemas.ts';
import { assignWaves } from './waves.ts';

export type IneligibleReason =
  | 'decommissioned'
  | 'not_active'
  | 'incompatible_model'
  | 'already_on_version'
  | 'downgrade_not_allowed'
  | 'unmet_requirement'
  | 'in_active_rollout';

export interface Verdict {
  deviceId: string;
  fromVersion: string | null;
  reason: IneligibleReason | null;
  detail?: string;
}

export interface Place {
  timezone: string;
  trading: TradingHours;
}

export function judge(
  d: Device,
  artifact: ArtifactRow,
  spec: Pick<RolloutSpec, 'allowDowngrade'>,
  busy: Set<string>,
): Verdict {
  const from = versionOf(d, artifact.component);
  const no = (reason: IneligibleReason, detail?: string): Verdict => ({
    deviceId: d.id,
    fromVersion: from,
    reason,
    detail,
  });
  if (d.status === 'decommissioned') return no('decommissioned');
  if (d.status !== 'active' && d.status !== 'in_repair') return no('not_active', `status ${d.status}`);
  if (!artifact.models.includes(d.model))
    return no('incompatible_model', `model ${d.model} not in ${artifact.models.join(',')}`);
  if (from && semver.valid(from)) {
    if (semver.eq(from, artifact.version)) return no('already_on_version');
    if (semver.gt(from, artifact.version) && !spec.allowDowngrade) return no('downgrade_not_allowed', `on ${from}`);
  }
  const requires = (artifact.manifest.requires ?? {}) as Record<string, string>;
  for (const [component, range] of Object.entries(requires)) {
    const have = versionOf(d, component);
    if (!have || !semver.satisfies(have, range, { includePrerelease: true })) {
      return no('unmet_requirement', `${component} ${range} (has ${have ?? 'none'})`);
    }
  }
  if (busy.has(d.id)) return no('in_active_rollout', `another rollout of ${artifact.component} is active`);
  return { deviceId: d.id, fromVersion: from, reason: null };
}

export interface PlanInput {
  devices: Device[];
  artifact: ArtifactRow;
  spec: RolloutSpec;
  busy: Set<string>;
  seed: string;
  places: (d: Device) => Place;
  now: number;
}

const TYPICAL_INSTALL_MIN = 10;

/** The dry run: verdicts, wave membership, next window per device, a rough completion estimate. */
export function planRollout(input: PlanInput) {
  const { spec, now } = input;
  const verdicts = input.devices.map((d) => judge(d, input.artifact, spec, input.busy));
  const eligible = verdicts.filter((v) => v.reason === null);
  const waves = assignWaves(
    eligible.map((v) => v.deviceId),
    spec.waves.map((w) => w.percent),
    input.seed,
    spec.canaryDeviceIds,
  );
  const window = spec.window ? new MaintenanceWindow(spec.window) : null;
  const start = Math.max(now, spec.startAt ? Date.parse(spec.startAt) : now);
  const nextOpenCache = new Map<string, number | null>();
  const byId = new Map(input.devices.map((d) => [d.id, d]));
  const nextWindow = (d: Device): number | null => {
    if (!window) return start;
    const place = input.places(d);
    const key = `${place.timezone}|${JSON.stringify(place.trading)}`;
    if (!nextOpenCache.has(key)) nextOpenCache.set(key, window.nextOpen(start, place.timezone, place.trading));
    return nextOpenCache.get(key)!;
  };
  const devices = verdicts.map((v) => {
    const d = byId.get(v.deviceId)!;
    const next = v.reason === null ? nextWindow(d) : null;
    return {
      ...v,
      wave: waves.get(v.deviceId) ?? null,
      timezone: input.places(d).timezone,
      nextWindowAt: next === null ? null : new Date(next).toISOString(),
    };
  });
  let t = start;
  const waveList = spec.waves.map((w, index) => {
    const members = devices.filter((d) => d.wave === index);
    const opens = members.map((m) => (m.nextWindowAt ? Date.parse(m.nextWindowAt) : Infinity)).filter(Number.isFinite);
    const waveStart = Math.max(t, opens.length ? Math.min(...opens) : t);
    t = waveStart + (members.length / spec.ratePerMinute + TYPICAL_INSTALL_MIN + spec.soakMinutes) * 60_000;
    return { index, percent: w.percent, size: members.length, opensAt: new Date(waveStart).toISOString() };
  });
  const reasons: Record<string, number> = {};
  for (const v of verdicts) if (v.reason) reasons[v.reason] = (reasons[v.reason] ?? 0) + 1;
  return {
    total: verdicts.length,
    eligible: eligible.length,
    ineligible: verdicts.length - eligible.length,
    reasons,
    waves: waveList,
    devices,
    estimatedCompletionAt: eligible.length ? new Date(t).toISOString() : null,
  };
}
