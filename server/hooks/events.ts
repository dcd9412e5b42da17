// The webhook event catalogue (docs/hooks.md) and the versioned envelope every
// format is built from. Delivery is generic: any outbox type can be subscribed to.
import type { HookFilter } from './hooks.tables.ts';

export const HOOK_EVENT_TYPES = [
  'device.enrolled',
  'device.presence_changed',
  'device.decommissioned',
  'alert.opened',
  'alert.acknowledged',
  'alert.resolved',
  'ticket.opened',
  'ticket.updated',
  'inspection.completed',
  'rollout.started',
  'rollout.wave_completed',
  'rollout.paused',
  'rollout.completed',
  'rollout.cancelled',
  'command.failed',
  'hook.disabled',
] as const;

/** The event of `POST /hooks/:id/test`; sent only to that subscription. */
export const PING_EVENT = 'hook.ping';
export const ENVELOPE_VERSION = 1;

export interface HookEnvelope {
  id: string;
  type: string;
  version: typeof ENVELOPE_VERSION;
  occurredAt: string;
  subject: { type: string; id: string } | null;
  data: Record<string, unknown>;
}

export function envelopeOf(e: {
  id: string;
  type: string;
  occurred_at: Date;
  subject_type: string | null;
  subject_id: string | null;
  data: Record<string, unknown>;
}): HookEnvelope {
  const subject = e.subject_type && e.subject_id ? { type: e.subject_type, id: e.subject_id } : null;
  return {
    id: e.id,
    type: e.type,
    version: ENVELOPE_VERSION,
    occurredAt: e.occurred_at.toISOString(),
    subject,
    data: e.data,
  };
}

/** `alert.opened`, `alert.*` or `*`. */
export function typeMatches(patterns: readonly string[], type: string): boolean {
  return patterns.some((p) => p === '*' || p === type || (p.endsWith('.*') && type.startsWith(p.slice(0, -1))));
}

/**
 * A filter narrows only the events that carry its field: `severity` looks at
 * `data.severity`, `merchantIds` at `data.merchantId`, `models` at `data.model`,
 * `tags` at `data.tags` (any shared tag). An event without the field passes,
 * so `{events: [alert.opened, rollout.paused], filter: {severity: [critical]}}`
 * still receives rollout.paused.
 */
export function filterMatches(filter: HookFilter, data: Record<string, unknown>): boolean {
  const one = (values: string[] | undefined, key: string) =>
    !values?.length || !(key in data) || values.includes(String(data[key]));
  const tagsOk =
    !filter.tags?.length || !Array.isArray(data.tags) || data.tags.some((t) => filter.tags!.includes(String(t)));
  return (
    one(filter.severity, 'severity') && one(filter.merchantIds, 'merchantId') && one(filter.models, 'model') && tagsOk
  );
}

export function eventMatches(
  sub: { events: string[]; filter: HookFilter },
  env: Pick<HookEnvelope, 'type' | 'data'>,
): boolean {
  return typeMatches(sub.events, env.type) && filterMatches(sub.filter, env.data);
}
