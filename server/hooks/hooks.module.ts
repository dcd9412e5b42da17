// The hooks module, wired once in server/modules.ts: subscriptions, the
// delivery log, the worker (runDue for tests, start/stop for the process) and
// a retention job.
import type { Logger } from 'pino';
import type { Audit } from '../access/audit.service.ts';
import type { Config } from '../config.ts';
import type { Db } from '../db/index.ts';
import type { Outbox } from '../events/outbox.ts';
import type { JobSpec } from '../jobs/scheduler.ts';
import type { Clock } from '../lib/clock.ts';
import type { Metrics } from '../lib/metrics.ts';
import { createHookDeliveries } from './deliveries.service.ts';
import { hookRoutes } from './hooks.routes.ts';
import { createHookSubscriptions } from './hooks.service.ts';
import { createSecretBox } from './secrets.ts';
import { createDeliveryWorker } from './worker.ts';

const KEEP_DISPATCHED_EVENTS_MS = 7 * 86_400_000;
const KEEP_FINISHED_DELIVERIES_MS = 30 * 86_400_000;

export function createHooks(deps: {
  config: Readonly<Config>;
  db: Db;
  clock: Clock;
  audit: Audit;
  outbox: Outbox;
  log: Logger;
  metrics?: Metrics;
}) {
  const { config, db, clock, outbox } = deps;
  const log = deps.log.child({ part: 'hooks' });
  const box = createSecretBox({ keySetting: config.hooksSecretKey, dataDir: config.dataDir });
  const { metrics } = deps;
  const worker = createDeliveryWorker({
    db,
    clock,
    log,
    outbox,
    box,
    onAttempt:
      metrics &&
      ((ok, latencyMs, disabled) => {
        metrics.hookAttempts.inc({ result: ok ? 'delivered' : 'failed' });
        metrics.hookAttemptSeconds.observe(latencyMs / 1000);
        if (disabled) metrics.hooksDisabled.inc();
      }),
    opts: {
      timeoutMs: config.hooksTimeoutMs,
      disableAfterMs: config.hooksDisableAfterMs,
      allowPrivate: config.hooksAllowPrivate,
    },
  });
  const subscriptions = createHookSubscriptions({
    db,
    clock,
    audit: deps.audit,
    box,
    allowPrivate: config.hooksAllowPrivate,
  });
  const deliveries = createHookDeliveries({ db, clock, subscriptions, wake: worker.wake });

  /** Retention: dispatched outbox events after a week, finished deliveries after 30 days. */
  async function prune(): Promise<void> {
    const now = clock.nowMs();
    await db
      .deleteFrom('outbox_events')
      .where('dispatched_at', '<', new Date(now - KEEP_DISPATCHED_EVENTS_MS))
      .execute();
    await db
      .deleteFrom('hook_deliveries')
      .where('state', 'in', ['delivered', 'exhausted', 'cancelled'])
      .where('created_at', '<', new Date(now - KEEP_FINISHED_DELIVERIES_MS))
      .execute();
  }

  const jobs: JobSpec[] = [{ name: 'hooks.prune', cron: '17 3 * * *', jitterMs: 60_000, run: prune }];

  return {
    subscriptions,
    deliveries,
    jobs,
    prune,
    routes: () => hookRoutes({ subscriptions, deliveries }),
    runDue: worker.runDue,
    start: worker.start,
    stop: worker.stop,
  };
}

export type Hooks = ReturnType<typeof createHooks>;
