// Helpers for the telemetry, health and maintenance tests: heartbeats stamped
// with the test's clock, publishes that resolve on PUBACK, and a settle step
// that waits for ingest and rule evaluation.
import type { MqttClient } from 'mqtt';
import type { ManualClock } from '../../server/lib/clock.ts';
import type { TestApp } from './app.ts';

export function beat(clock: ManualClock, seq: number, extra: Record<string, unknown> = {}) {
  return { v: 1, seq, bootId: 'boot-a', ts: clock.nowMs(), firmware: '1.0.0', apps: { payment: '5.0.0' }, ...extra };
}

/** Publishes at QoS 1; resolves on PUBACK. */
export function publish(client: MqttClient, topic: string, payload: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    client.publish(topic, typeof payload === 'string' ? payload : JSON.stringify(payload), { qos: 1 }, (err) =>
      err ? reject(err) : resolve(),
    );
  });
}

/** Waits until heartbeats in flight are written and the rules they feed have run. */
export async function settle(t: TestApp): Promise<void> {
  await t.app.health.ingest.drain();
  await t.app.health.evaluator.drain();
}

/** A device with one client; `send` publishes a heartbeat with the given vitals and waits for the rules. */
export function sender(
  t: TestApp,
  clock: ManualClock,
  client: MqttClient,
  deviceId: string,
  opts: { stepMs?: number; bootId?: string } = {},
) {
  let seq = 0;
  return async (vitals: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => {
    clock.advance(opts.stepMs ?? 60_000);
    await publish(
      client,
      `fleet/${deviceId}/heartbeat`,
      beat(clock, seq++, { bootId: opts.bootId ?? 'boot-a', ...vitals, ...extra }),
    );
    await settle(t);
  };
}

export async function activeAlerts(
  t: TestApp,
  deviceId: string,
): Promise<
  {
    ruleId: string;
    state: string;
    count: number;
    severity: string;
    id: string;
    ticketId: string | null;
    flapping: boolean;
    muted: boolean;
  }[]
> {
  const res = await t.api('GET', `/api/v1/alerts?device=${deviceId}&state=active`);
  return res.body.items;
}

export async function outboxTypes(t: TestApp, subjectId: string): Promise<string[]> {
  const rows = await t.app.db
    .selectFrom('outbox_events')
    .select('type')
    .where('subject_id', '=', subjectId)
    .orderBy('seq')
    .execute();
  return rows.map((r) => r.type);
}
