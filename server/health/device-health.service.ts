// The device health view: presence, worst active alert, latest vitals and
// drift, recent boots, and when maintenance falls due.
import type { Db } from '../db/index.ts';
import { notFound } from '../lib/errors.ts';
import type { History } from '../telemetry/history.service.ts';
import { alertView } from './alerts.service.ts';
import type { Predictions } from './predictions.service.ts';
import type { Presence } from './presence.service.ts';

export const HEALTH_LEVELS = ['ok', 'info', 'warning', 'critical'] as const;
export type HealthLevel = (typeof HEALTH_LEVELS)[number];

/** The worst severity among active, unmuted alerts. */
export function worst(severities: string[]): HealthLevel {
  let level: HealthLevel = 'ok';
  for (const s of severities)
    if (HEALTH_LEVELS.indexOf(s as HealthLevel) > HEALTH_LEVELS.indexOf(level)) level = s as HealthLevel;
  return level;
}

export function createDeviceHealth(deps: { db: Db; presence: Presence; history: History; predictions: Predictions }) {
  async function get(deviceId: string) {
    const d = await deps.db
      .selectFrom('devices')
      .select(['id', 'status', 'model'])
      .where('id', '=', deviceId)
      .executeTakeFirst();
    if (!d) throw notFound('device', deviceId);
    const [presence, alerts, latest, boots, predictions] = await Promise.all([
      deps.presence.get(deviceId),
      deps.db
        .selectFrom('alerts')
        .selectAll()
        .where('device_id', '=', deviceId)
        .where('state', '<>', 'resolved')
        .orderBy('opened_at')
        .execute(),
      deps.history.latest(deviceId),
      deps.history.boots(deviceId, 10),
      deps.predictions.forDevice(deviceId),
    ]);
    const due = predictions.filter((p) => p.dueInDays !== null).sort((a, b) => a.dueInDays! - b.dueInDays!)[0];
    return {
      deviceId,
      status: d.status,
      model: d.model,
      presence: presence?.state ?? 'unknown',
      presenceSince: presence?.since ?? null,
      health: worst(alerts.filter((a) => !a.muted).map((a) => a.severity)),
      maintenanceDue: due ? { kind: due.kind, inDays: due.dueInDays, at: due.dueAt, summary: due.summary } : null,
      openAlerts: alerts.map(alertView),
      latest,
      boots,
      predictions,
    };
  }
  /**
   * The subset of `deviceIds` whose presence and health level are among those
   * given (an absent list does not filter). Devices never seen are 'unknown';
   * devices without active unmuted alerts are 'ok'. Cohorts and device lists use it.
   */
  async function matching(deviceIds: string[], f: { presence?: string[]; health?: string[] }): Promise<Set<string>> {
    let ids = deviceIds;
    if (f.presence?.length && ids.length) {
      const rows = await deps.db
        .selectFrom('device_presence')
        .select(['device_id', 'state'])
        .where('device_id', 'in', ids)
        .execute();
      const state = new Map(rows.map((r) => [r.device_id, r.state]));
      ids = ids.filter((id) => f.presence!.includes(state.get(id) ?? 'unknown'));
    }
    if (f.health?.length && ids.length) {
      const rows = await deps.db
        .selectFrom('alerts')
        .select(['device_id', 'severity'])
        .where('device_id', 'in', ids)
        .where('state', '<>', 'resolved')
        .where('muted', '=', false)
        .execute();
      const sev = new Map<string, string[]>();
      for (const r of rows) sev.set(r.device_id, [...(sev.get(r.device_id) ?? []), r.severity]);
      ids = ids.filter((id) => f.health!.includes(worst(sev.get(id) ?? [])));
    }
    return new Set(ids);
  }

  return { get, matching };
}

export type DeviceHealth = ReturnType<typeof createDeviceHealth>;
