// Periodic jobs (node-cron). Each run is jittered, never overlaps itself and,
// on PostgreSQL, takes an advisory lock so one instance of several runs it.
// Jobs are idempotent, so a run that happens twice does no harm.
import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';
import type { DbHandle } from '../db/index.ts';

export interface JobSpec {
  name: string;
  cron: string;
  run: () => Promise<unknown>;
  jitterMs?: number;
  timezone?: string;
}

function lockKey(name: string): bigint {
  return createHash('sha256').update(`posfleet:${name}`).digest().readBigInt64BE(0);
}

export function createScheduler(deps: { handle: DbHandle; log: Logger }) {
  const tasks: ScheduledTask[] = [];
  const running = new Set<Promise<unknown>>();
  let stopped = false;

  /** Runs a job now under its lock; returns false when another instance holds it. */
  async function runNow(job: JobSpec): Promise<boolean> {
    // PGlite is one process with one connection: nothing to coordinate with.
    if (deps.handle.kind === 'pglite') {
      await job.run();
      return true;
    }
    return deps.handle.db.connection().execute(async (conn) => {
      const key = lockKey(job.name).toString();
      const got = await sql<{ ok: boolean }>`select pg_try_advisory_lock(${key}::bigint) as ok`.execute(conn);
      if (!got.rows[0]?.ok) return false;
      try {
        await job.run();
      } finally {
        await sql`select pg_advisory_unlock(${key}::bigint)`.execute(conn);
      }
      return true;
    });
  }

  function add(job: JobSpec): void {
    if (!cron.validate(job.cron)) throw new Error(`job ${job.name}: invalid cron expression '${job.cron}'`);
    const task = cron.schedule(
      job.cron,
      async () => {
        const jitter = Math.floor(Math.random() * (job.jitterMs ?? 0));
        if (jitter) await new Promise((r) => setTimeout(r, jitter).unref());
        if (stopped) return;
        const p = runNow(job).catch((err: unknown) => deps.log.error({ err, job: job.name }, 'job failed'));
        running.add(p);
        await p.finally(() => running.delete(p));
      },
      { name: job.name, noOverlap: true, ...(job.timezone && { timezone: job.timezone }) },
    );
    tasks.push(task);
  }

  async function stop(): Promise<void> {
    stopped = true;
    for (const t of tasks) await t.destroy();
    await Promise.all(running);
  }

  return { add, runNow, stop };
}

export type Scheduler = ReturnType<typeof createScheduler>;
