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
  /** Told which terminals now hold an update, before it is published. */
  onSent?: (deviceIds: string[]) => void;
}

export function updateParams(
  r: RolloutRow,
  a: ArtifactRow,
  _deviceId: string,
  jobId: string,
  spec: RolloutSpec,
  url: (ttl: number) => string,
) {
  return {
    jobId,
    component: a.component,
    version: a.version,
    url: url(Math.ceil(spec.timeoutMinutes * 60) + 300),
    sha256: a.sha256,
    size: a.size,
    signature: a.signature,
    manifest: a.manifest,
    allowDowngrade: spec.allowDowngrade,
    rolloutId: r.id,
  };
}

export function createDispatcher(deps: DispatchDeps) {
  const { db, clock } = deps;

  /** How many more updates this rollout may send now (rate per minute, cap in flight). */
  async function budget(r: RolloutRow, spec: RolloutSpec): Promise<number> {
    const since = new Date(clock.nowMs() - 60_000);
    const row = await db
      .selectFrom('rollout_devices')
      .select([
        sql<number>`count(*) filter (where sent_at > ${since})::int`.as('recent'),
        sql<number>`count(*) filter (where state in ('sent','accepted','downloading','installing','rebooting'))::int`.as(
          'inflight',
        ),
      ])
      .where('rollout_id', '=', r.id)
      .executeTakeFirstOrThrow();
    return Math.max(0, Math.min(spec.ratePerMinute - row.recent, spec.maxInFlight - row.inflight));
  }

  /** Devices of open waves, due, connected and inside their window. */
  async function candidates(r: RolloutRow, spec: RolloutSpec, limit: number): Promise<string[]> {
    const rows = await db
      .selectFrom('rollout_devices')
      .select('device_id')
      .where('rollout_id', '=', r.id)
      .where('wave', '<=', r.current_wave)
      .where('state', 'in', ['pending', 'waiting_window', 'queued'])
      .where((eb) => eb.or([eb('next_attempt_at', 'is', null), eb('next_attempt_at', '<=', clock.now())]))
      .orderBy('wave')
      .orderBy('device_id')
      .limit(Math.max(limit * 4, 200))
      .execute();
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
      const claimed = await trx
        .selectFrom('rollout_devices')
        .select(['device_id', 'sends', 'command_id'])
        .where('rollout_id', '=', r.id)
        .where('device_id', 'in', ids)
        .where('state', 'in', ['pending', 'waiting_window', 'queued'])
        .forUpdate()
        .skipLocked()
        .execute();
      if (claimed.length === 0) return [];
      const stale = claimed.map((c) => c.command_id).filter((id): id is string => !!id);
      if (stale.length) await deps.commands.withdraw(stale, trx);
      const jobs = claimed.map((c) => ({
        deviceId: c.device_id,
        jobId: `${r.id}.${c.sends + 1}`.slice(0, 64),
        sends: c.sends + 1,
      }));
      const cmds = await deps.commands.insertInTx(
        trx,
        jobs.map((j) => ({
          deviceId: j.deviceId,
          input: {
            type: 'update' as const,
            ttlSeconds: Math.ceil(spec.timeoutMinutes * 60),
            params: updateParams(r, artifact, j.deviceId, j.jobId, spec, (ttl) =>
              deps.signedDownloadUrl(artifact.id, j.deviceId, ttl),
            ),
          },
        })),
        { asSent: true },
      );
      // One statement for the whole claim, not one per terminal.
      await sql`
        UPDATE rollout_devices AS rd SET state = 'sent', job_id = v.job_id, command_id = v.command_id, sends = v.sends,
          sent_at = ${now}, next_attempt_at = NULL, updated_at = ${now}
        FROM unnest(${jobs.map((j) => j.deviceId)}::text[], ${jobs.map((j) => j.jobId)}::text[],
                    ${cmds.map((c) => c.id)}::text[], ${jobs.map((j) => j.sends)}::int[]) AS v(device_id, job_id, command_id, sends)
        WHERE rd.rollout_id = ${r.id} AND rd.device_id = v.device_id`.execute(trx);
      return cmds;
    });
    deps.onSent?.(sent.map((c) => c.device_id));
    // Published only after the commit that decided them (HOUSE-RULES §5).
    await Promise.all(
      sent.map((cmd) =>
        deps.commands
          .deliver(cmd, { recorded: true })
          .catch((err: unknown) =>
            deps.log.warn({ err, commandId: cmd.id }, 'update publish failed; re-sent on reconnect'),
          ),
      ),
    );
    deps.log.info({ msg: 'updates dispatched', rolloutId: r.id, wave: r.current_wave, count: sent.length });
    return sent.length;
  }

  return { dispatch };
}
