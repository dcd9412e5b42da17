// Sending updates: claim due rollout devices row by row (FOR UPDATE SKIP
// LOCKED, so two instances never send the same update), write the command in
// the same transaction, publish after the commit.
import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { Db } from '../db/index.ts';
import type { ArtifactRow } from '../artifacts/artifacts.tables.ts';
import type { Commands } from '../devices/commands.service.ts';
import type { CommandRow } from '../db/schema.ts';
import type { Clock } from '../lib/clock.ts';
import { MaintenanceWindow } from './cron-window.ts';
import type { Place } from './eligibility.ts';
import type { RolloutSpec } from './rollouts.schemas.ts';
import type { RolloutRow } from './rollouts.tables.ts';

export interface DispatchDeps {
  db: Db;
  clock: Clock;
  log: Logger;
  commands: Commands;
  signedDownloadUrl: (artifactId: string, deviceId: string | null, ttlS: number) => string;
  placeOf: (deviceIds: string[]) => Promise<Map<string, Place>>;
  isConnected: (deviceId: string) => boolean;
}

export function updateParams(r: RolloutRow, a: ArtifactRow, deviceId: string, jobId: string, spec: RolloutSpec, url: (ttl: number) => string) {
  return {
    jobId, component: a.component, version: a.version, url: url(Math.ceil(spec.timeoutMinutes * 60) + 300),
    sha256: a.sha256, size: a.size, signature: a.signature, manifest: a.manifest,
    allowDowngrade: spec.allowDowngrade, rolloutId: r.id,
  };
}

export function createDispatcher(deps: DispatchDeps) {
  const { db, clock } = deps;

  /** How many more updates this rollout may send now (rate per minute, cap in flight). */
  async function budget(r: RolloutRow, spec: RolloutSpec): Promise<number> {
    const since = new Date(clock.nowMs() - 60_000);
    const row = await db.selectFrom('rollout_devices')
      .select([
        sql<number>`count(*) filter (where sent_at > ${since})::int`.as('recent'),
        sql<number>`count(*) filter (where state in ('sent','accepted','downloading','installing','rebooting'))::int`.as('inflight'),
      ])
      .where('rollout_id', '=', r.id).executeTakeFirstOrThrow();
    return Math.max(0, Math.min(spec.ratePerMinute - row.recent, spec.maxInFlight - row.inflight));
  }

  /** Devices of open waves, due, connected and inside their window. */
  async function candidates(r: RolloutRow, spec: RolloutSpec, limit: number): Promise<string[]> {
    const rows = await db.selectFrom('rollout_devices').select('device_id')
      .where('rollout_id', '=', r.id).where('wave', '<=', r.current_wave)
      .where('state', 'in', ['pending', 'waiting_window', 'queued'])
      .where((eb) => eb.or([eb('next_attempt_at', 'is', null), eb('next_attempt_at', '<=', clock.now())]))
      .orderBy('wave').orderBy('device_id').limit(Math.max(limit * 4, 200)).execute();
    const online = rows.map((x) => x.device_id).filter(deps.isConnected);
    if (!spec.window) return online.slice(0, limit);
    const window = new MaintenanceWindow(spec.window);
    const places = await deps.placeOf(online);
    const openByPlace = new Map<string, boolean>();
    const open: string[] = [];
    for (const id of online) {
      const p = places.get(id) ?? { timezone: 'UTC', trading: [] };
      const key = `${p.timezone}|${JSON.stringify(p.trading)}`;
      if (!openByPlace.has(key)) openByPlace.set(key, window.isOpen(clock.nowMs(), p.timezone, p.trading));
      if (openByPlace.get(key)) open.push(id);
      if (open.length >= limit) break;
    }
    return open;
  }

  /** Claims and sends up to the budget; returns the number sent. */
  async function dispatch(r: RolloutRow, artifact: ArtifactRow): Promise<number> {
    const spec = r.spec as RolloutSpec;
    const room = await budget(r, spec);
    if (room === 0) return 0;
    const ids = await candidates(r, spec, room);
    if (ids.length === 0) return 0;
    const now = clock.now();
    const sent: CommandRow[] = await db.transaction().execute(async (trx) => {
      const claimed = await trx.selectFrom('rollout_devices').select(['device_id', 'sends', 'command_id'])
        .where('rollout_id', '=', r.id).where('device_id', 'in', ids)
        .where('state', 'in', ['pending', 'waiting_window', 'queued'])
        .forUpdate().skipLocked().execute();
      const out: CommandRow[] = [];
      for (const c of claimed) {
        const jobId = `${r.id}.${c.sends + 1}`.slice(0, 64);
        if (c.command_id) await deps.commands.withdraw(c.command_id, trx);
        const params = updateParams(r, artifact, c.device_id, jobId, spec, (ttl) => deps.signedDownloadUrl(artifact.id, c.device_id, ttl));
        const cmd = await deps.commands.insertInTx(trx, c.device_id, { type: 'update', params, ttlSeconds: Math.ceil(spec.timeoutMinutes * 60) });
        await trx.updateTable('rollout_devices').set({
          state: 'sent', job_id: jobId, command_id: cmd.id, sends: c.sends + 1, sent_at: now, next_attempt_at: null, updated_at: now,
        }).where('rollout_id', '=', r.id).where('device_id', '=', c.device_id).execute();
        out.push(cmd);
      }
      return out;
    });
    // Published only after the commit that decided them (HOUSE-RULES §5).
    await Promise.all(sent.map((cmd) => deps.commands.deliver(cmd).catch((err: unknown) => deps.log.warn({ err, commandId: cmd.id }, 'update publish failed; re-sent on reconnect'))));
    deps.log.info({ msg: 'updates dispatched', rolloutId: r.id, wave: r.current_wave, count: sent.length });
    return sent.length;
  }

  return { dispatch };
}
