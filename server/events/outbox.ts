// Fleet events that leave the process (webhooks) go through this outbox: the
// row is written in the same transaction as the change, so a crash neither
// loses nor invents an event. After commit, `notify` wakes the delivery worker.
import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { json } from '../db/index.ts';
import type { Clock } from '../lib/clock.ts';
import { newId } from '../lib/ids.ts';

export interface OutboxEvent {
  type: string;
  subject?: { type: string; id: string };
  data: Record<string, unknown>;
}

export function createOutbox(deps: { clock: Clock }) {
  const listeners = new Set<() => void>();

  /** Writes the event inside `trx`; returns its id (the webhook id receivers dedupe on). */
  async function add(trx: Kysely<Database>, event: OutboxEvent): Promise<string> {
    const now = deps.clock.now();
    const id = newId('evt', now.getTime());
    await trx
      .insertInto('outbox_events')
      .values({
        id,
        type: event.type,
        occurred_at: now,
        subject_type: event.subject?.type ?? null,
        subject_id: event.subject?.id ?? null,
        data: json(event.data),
      })
      .execute();
    return id;
  }

  /** Many events inside `trx` in one INSERT, in order (a fleet-wide change writes hundreds at once); returns their ids. */
  async function addMany(trx: Kysely<Database>, events: OutboxEvent[]): Promise<string[]> {
    if (events.length === 0) return [];
    const now = deps.clock.now();
    const rows = events.map((event) => ({
      id: newId('evt', now.getTime()),
      type: event.type,
      occurred_at: now,
      subject_type: event.subject?.type ?? null,
      subject_id: event.subject?.id ?? null,
      data: json(event.data),
    }));
    await trx.insertInto('outbox_events').values(rows).execute();
    return rows.map((r) => r.id);
  }

  /** Call after the commit: wakes whoever delivers from the outbox. */
  function notify(): void {
    for (const l of listeners) l();
  }

  function onNotify(listener: () => void): () => void {
    listeners.add(listener);
    return () => listeners.delete(listener);
  }

  return { add, addMany, notify, onNotify };
}

export type Outbox = ReturnType<typeof createOutbox>;
