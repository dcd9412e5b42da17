// The delivery worker: fans out the outbox, claims due deliveries with
// FOR UPDATE SKIP LOCKED (each is sent by one instance), POSTs them signed, and
// records the attempt. Ordering: an ordered delivery is claimed only when no
// earlier ordered delivery of its subscription is still open, so a subscription
// never receives event N+1 while N waits for a retry. Time is the injected clock.
import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { Db } from '../db/index.ts';
import type { Outbox } from '../events/outbox.ts';
import type { Clock } from '../lib/clock.ts';
import { fanOut } from './fanout.ts';
import type { HookDelivery, HookSubscription } from './hooks.tables.ts';
import { recordAttempt } from './outcome.ts';
import { signatureHeader, type SecretBox } from './secrets.ts';
import { postWebhook, type SendResult } from './sender.ts';

export interface WorkerOptions {
  timeoutMs: number;
  disableAfterMs: number;
  allowPrivate: boolean;
  /** Production poll interval for retries and other instances' events. */
  intervalMs?: number;
}

const CLAIM_BATCH = 20;
const LEASE_MARGIN_MS = 60_000;

export function createDeliveryWorker(deps: {
  db: Db;
  clock: Clock;
  log: Logger;
  outbox: Outbox;
  box: SecretBox;
  opts: WorkerOptions;
  /** Told of every attempt: whether it was delivered, how long the receiver took, whether the endpoint got disabled. */
  onAttempt?: (ok: boolean, latencyMs: number, disabled: boolean) => void;
}) {
  const { db, clock, log, opts } = deps;

  async function claim(): Promise<HookDelivery[]> {
    const now = clock.now();
    const leaseUntil = new Date(now.getTime() + opts.timeoutMs + LEASE_MARGIN_MS);
    const res = await sql<HookDelivery>`
      update hook_deliveries d set state = 'delivering', lease_until = ${leaseUntil}
      where d.id in (
        select c.id from hook_deliveries c
        join hook_subscriptions s on s.id = c.subscription_id and s.state = 'active'
        where ((c.state in ('pending', 'failed') and c.next_attempt_at <= ${now}) or (c.state = 'delivering' and c.lease_until <= ${now}))
          and (not c.ordered or not exists (
            select 1 from hook_deliveries e
            where e.subscription_id = c.subscription_id and e.ordered and e.seq < c.seq and e.state in ('pending', 'delivering', 'failed')))
        order by c.next_attempt_at, c.seq
        limit ${CLAIM_BATCH}
        for update of c skip locked)
      returning d.*`.execute(db);
    return res.rows;
  }

  async function signingSecrets(sub: HookSubscription): Promise<string[]> {
    const current = await deps.box.open(sub.secret_sealed, sub.id);
    const prevValid =
      sub.prev_secret_sealed && sub.prev_secret_until && sub.prev_secret_until.getTime() > clock.nowMs();
    return prevValid ? [current, await deps.box.open(sub.prev_secret_sealed!, sub.id)] : [current];
  }

  /** Sends one claimed delivery and records the outcome. */
  async function send(d: HookDelivery): Promise<void> {
    const sub = await db
      .selectFrom('hook_subscriptions')
      .selectAll()
      .where('id', '=', d.subscription_id)
      .executeTakeFirst();
    if (!sub) return; // deleted meanwhile; its deliveries went with it
    const startedAt = clock.now();
    let result: SendResult;
    try {
      const timestamp = Math.floor(startedAt.getTime() / 1000);
      const headers = {
        'content-type': 'application/json',
        'user-agent': 'posfleet-hooks/1',
        'webhook-id': d.id,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signatureHeader(await signingSecrets(sub), d.id, timestamp, d.body),
      };
      result = await postWebhook(sub.url, headers, d.body, {
        timeoutMs: opts.timeoutMs,
        allowPrivate: opts.allowPrivate,
      });
    } catch (err) {
      result = { ok: false, status: null, latencyMs: 0, error: (err as Error).message, response: null };
    }
    const disabled = await recordAttempt(
      { db, clock, outbox: deps.outbox, disableAfterMs: opts.disableAfterMs },
      d,
      sub,
      startedAt,
      result,
    );
    deps.onAttempt?.(result.ok, result.latencyMs, disabled);
    log[result.ok ? 'debug' : 'info'](
      {
        deliveryId: d.id,
        hookId: sub.id,
        eventType: d.event_type,
        attempt: d.attempts + 1,
        status: result.status,
        latencyMs: result.latencyMs,
        error: result.error,
      },
      result.ok ? 'webhook delivered' : 'webhook attempt failed',
    );
    if (disabled) {
      log.warn({ hookId: sub.id }, 'webhook endpoint disabled after failing too long');
      deps.outbox.notify();
    }
  }

  async function pass(): Promise<number> {
    let sent = 0;
    for (let round = 0; round < 50; round++) {
      await fanOut(db, clock);
      const batch = await claim();
      if (batch.length === 0) break;
      await Promise.all(batch.map(send));
      sent += batch.length;
    }
    return sent;
  }

  // Passes never overlap inside one process; other instances are kept apart by SKIP LOCKED.
  let chain: Promise<unknown> = Promise.resolve();
  /** Fans out and sends everything due now; tests call this after moving the clock. */
  function runDue(): Promise<number> {
    const run = chain.then(pass);
    chain = run.catch(() => undefined);
    return run;
  }

  let timer: NodeJS.Timeout | undefined;
  let unsubscribe: (() => void) | undefined;
  let running = false;
  let again = false;
  let current: Promise<unknown> = Promise.resolve();

  // A busy fleet commits events many times a second: a wake waits this long
  // for company, so one pass (a few statements) takes them all.
  const GATHER_MS = 20;
  let gathering: NodeJS.Timeout | undefined;

  function wake(): void {
    if (!timer || gathering) return;
    if (running) {
      again = true; // an event arrived mid-pass: run once more after it
      return;
    }
    gathering = setTimeout(runPass, GATHER_MS);
  }

  function runPass(): void {
    gathering = undefined;
    if (!timer) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    current = runDue()
      .catch((err: unknown) => log.error({ err }, 'webhook delivery pass failed'))
      .finally(() => {
        running = false;
        if (again) {
          again = false;
          wake();
        }
      });
  }

  /** Production loop: wakes on outbox.notify() and every `intervalMs` (jittered). */
  function start(): void {
    if (timer) return;
    const every = opts.intervalMs ?? 1_000;
    timer = setInterval(wake, every + Math.floor(Math.random() * every * 0.2));
    timer.unref();
    unsubscribe = deps.outbox.onNotify(wake);
    wake();
  }

  /** Stops waking; waits for the pass in flight (bounded by the request timeout). */
  async function stop(): Promise<void> {
    if (timer) clearInterval(timer);
    timer = undefined;
    if (gathering) clearTimeout(gathering);
    gathering = undefined;
    unsubscribe?.();
    await current;
    await chain;
  }

  return { runDue, start, stop, wake };
}

export type DeliveryWorker = ReturnType<typeof createDeliveryWorker>;
