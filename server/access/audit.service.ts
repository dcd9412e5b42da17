// The audit log: who changed what, when. Written in the transaction of the change.
import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { json, type Db } from '../db/index.ts';
import type { Principal } from '../http/types.ts';
import type { Clock } from '../lib/clock.ts';
import { decodeCursor, encodeCursor } from '../lib/cursor.ts';

export interface AuditInput {
  action: string;
  targetType: string;
  targetId?: string | null;
  details?: unknown;
}

export interface AuditQuery {
  limit: number;
  cursor?: string;
  targetType?: string;
  targetId?: string;
  action?: string;
}

export function createAudit(deps: { db: Db; clock: Clock }) {
  async function record(trx: Kysely<Database>, actor: Principal | null, entry: AuditInput): Promise<void> {
    await trx
      .insertInto('audit_log')
      .values({
        at: deps.clock.now(),
        actor_key_id: actor?.keyId ?? null,
        actor_name: actor?.name ?? 'system',
        action: entry.action,
        target_type: entry.targetType,
        target_id: entry.targetId ?? null,
        details: entry.details === undefined ? null : json(entry.details),
      })
      .execute();
  }

  async function list(q: AuditQuery) {
    let query = deps.db
      .selectFrom('audit_log')
      .selectAll()
      .orderBy('id', 'desc')
      .limit(q.limit + 1);
    const after = decodeCursor(q.cursor);
    if (after) query = query.where('id', '<', after);
    if (q.targetType) query = query.where('target_type', '=', q.targetType);
    if (q.targetId) query = query.where('target_id', '=', q.targetId);
    if (q.action) query = query.where('action', '=', q.action);
    const rows = await query.execute();
    const items = rows.slice(0, q.limit).map((r) => ({
      id: String(r.id),
      at: r.at.toISOString(),
      actor: { keyId: r.actor_key_id, name: r.actor_name },
      action: r.action,
      target: { type: r.target_type, id: r.target_id },
      details: r.details,
    }));
    return { items, nextCursor: rows.length > q.limit ? encodeCursor(String(rows[q.limit - 1].id)) : null };
  }

  return { record, list };
}

export type Audit = ReturnType<typeof createAudit>;
