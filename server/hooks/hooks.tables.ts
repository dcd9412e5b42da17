// Tables of the hooks module (migrations/2026-11-25T1500-hooks.ts).
import type { Generated, Selectable } from 'kysely';
import type { Json, Timestamp } from '../db/schema.ts';

export interface HookFilter {
  severity?: string[];
  merchantIds?: string[];
  models?: string[];
  tags?: string[];
}

export interface HookSubscriptionsTable {
  id: string;
  url: string;
  events: Json<string[]>;
  format: string;
  filter: Json<HookFilter>;
  config: Json<Record<string, unknown>>;
  description: string | null;
  /** AES-256-GCM sealed `whsec_…` (see secret-box.ts); never leaves the server after creation. */
  secret_sealed: string;
  prev_secret_sealed: string | null;
  prev_secret_until: Timestamp | null;
  state: string;
  /** Outbox seq at creation: the subscription receives events after it. */
  start_seq: number;
  failing_since: Timestamp | null;
  disabled_at: Timestamp | null;
  disabled_reason: string | null;
  created_at: Timestamp;
  created_by: string | null;
  updated_at: Timestamp;
}

export interface HookDeliveriesTable {
  seq: Generated<number>;
  /** The `webhook-id`: the same on every attempt. */
  id: string;
  subscription_id: string;
  event_id: string | null;
  event_type: string;
  /** The exact request body, rendered in the subscription's format at fan-out. */
  body: string;
  /** Ordered deliveries wait for earlier ones of their subscription; pings and redeliveries do not. */
  ordered: boolean;
  state: string;
  attempts: Generated<number>;
  /** `attempts` when the current retry round began (0, or the count at a manual redelivery). */
  retry_base: Generated<number>;
  next_attempt_at: Timestamp;
  lease_until: Timestamp | null;
  last_status: number | null;
  last_error: string | null;
  last_latency_ms: number | null;
  created_at: Timestamp;
  delivered_at: Timestamp | null;
}

export interface HookAttemptsTable {
  id: Generated<number>;
  delivery_id: string;
  attempt: number;
  started_at: Timestamp;
  status: number | null;
  latency_ms: number;
  error: string | null;
  response: string | null;
}

export interface HooksTables {
  hook_subscriptions: HookSubscriptionsTable;
  hook_deliveries: HookDeliveriesTable;
  hook_attempts: HookAttemptsTable;
}

export type HookSubscription = Selectable<HookSubscriptionsTable>;
export type HookDelivery = Selectable<HookDeliveriesTable>;
export type HookAttempt = Selectable<HookAttemptsTable>;
