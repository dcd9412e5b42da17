// Heartbeat ingest. Heartbeats are grouped and written in one transaction per
// batch (multi-row unnest inserts, never one INSERT per message); a
// heartbeat's promise resolves only when its batch is committed, and the
// broker sends PUBACK only then (server/mqtt/broker.ts). Duplicates
// (device, bootId, seq) are dropped by the primary key. Rule evaluation runs
// after the commit, off the PUBACK path.
import { sql, type Kysely } from 'kysely';
import type { Heartbeat } from '../../protocol/messages.ts';
import type { Db } from '../db/index.ts';
import type { Database } from '../db/schema.ts';
import type { FleetBus } from '../events/bus-events.ts';
import { Batcher } from '../lib/batcher.ts';
import { READER_DECAY, deriveMetrics, readerCounts, vitalsOf } from './derive.ts';

export interface Item {
  deviceId: string;
  receivedAt: Date;
  hb: Heartbeat;
}

export interface Observation {
  deviceId: string;
  at: Date;
  metrics: Record<string, unknown>;
}

export interface IngestHooks {
  /** Runs inside the batch transaction with the devices heard; returns what to do after the commit. */
  inTransaction?: (trx: Kysely<Database>, seen: { deviceId: string; at: Date }[]) => Promise<(() => void) | void>;
  /** The new heartbeats as rule observations, after the commit. */
  afterCommit?: (observations: Observation[]) => void;
}

const key = (deviceId: string, bootId: string, seq: number) => `${deviceId}\u0000${bootId}\u0000${seq}`;
const iso = (d: Date) => d.toISOString();

async function insertHeartbeats(trx: Kysely<Database>, items: Item[]): Promise<Item[]> {
  const res = await sql<{ device_id: string; boot_id: string; seq: number }>`
    INSERT INTO heartbeats (device_id, boot_id, seq, ts, received_at, drift_ms, firmware, vitals)
    SELECT d, b, s, to_timestamp(t / 1000.0), r, (extract(epoch FROM r) * 1000)::bigint - t, f, v::jsonb
    FROM unnest(${items.map((i) => i.deviceId)}::text[], ${items.map((i) => i.hb.bootId)}::text[], ${items.map((i) => i.hb.seq)}::bigint[],
                ${items.map((i) => i.hb.ts)}::bigint[], ${items.map((i) => iso(i.receivedAt))}::timestamptz[],
                ${items.map((i) => i.hb.firmware)}::text[], ${items.map((i) => JSON.stringify(vitalsOf(i.hb)))}::text[]) AS x(d, b, s, t, r, f, v)
    ON CONFLICT DO NOTHING
    RETURNING device_id, boot_id, seq`.execute(trx);
  const fresh = new Set(res.rows.map((r) => key(r.device_id, r.boot_id, Number(r.seq))));
  return items.filter((i) => fresh.delete(key(i.deviceId, i.hb.bootId, i.hb.seq)));
}

function latestPerDevice(items: Item[]): Item[] {
  const latest = new Map<string, Item>();
  for (const it of items) {
    const prev = latest.get(it.deviceId);
    if (!prev || prev.receivedAt < it.receivedAt || (prev.receivedAt.getTime() === it.receivedAt.getTime() && prev.hb.seq <= it.hb.seq)) latest.set(it.deviceId, it);
  }
  return [...latest.values()];
}

/** Latest vitals per device, and the decayed card-reader sums the error-rate rule reads. */
async function upsertState(trx: Kysely<Database>, fresh: Item[], latest: Item[]) {
  const sums = new Map<string, { ok: number; err: number }>();
  for (const it of fresh) {
    const s = sums.get(it.deviceId) ?? { ok: 0, err: 0 };
    const c = readerCounts(it.hb);
    sums.set(it.deviceId, { ok: s.ok + c.ok, err: s.err + c.err });
  }
  const res = await sql<{ device_id: string; reader_ok: number; reader_err: number }>`
    INSERT INTO device_state (device_id, boot_id, seq, ts, received_at, drift_ms, vitals, reader_ok, reader_err)
    SELECT d, b, s, to_timestamp(t / 1000.0), r, (extract(epoch FROM r) * 1000)::bigint - t, v::jsonb, ok, err
    FROM unnest(${latest.map((i) => i.deviceId)}::text[], ${latest.map((i) => i.hb.bootId)}::text[], ${latest.map((i) => i.hb.seq)}::bigint[],
                ${latest.map((i) => i.hb.ts)}::bigint[], ${latest.map((i) => iso(i.receivedAt))}::timestamptz[],
                ${latest.map((i) => JSON.stringify(vitalsOf(i.hb)))}::text[],
                ${latest.map((i) => sums.get(i.deviceId)!.ok)}::float8[], ${latest.map((i) => sums.get(i.deviceId)!.err)}::float8[]) AS x(d, b, s, t, r, v, ok, err)
    ON CONFLICT (device_id) DO UPDATE SET boot_id = excluded.boot_id, seq = excluded.seq, ts = excluded.ts,
      received_at = excluded.received_at, drift_ms = excluded.drift_ms, vitals = excluded.vitals,
      reader_ok = device_state.reader_ok * ${READER_DECAY} + excluded.reader_ok,
      reader_err = device_state.reader_err * ${READER_DECAY} + excluded.reader_err
    WHERE device_state.received_at <= excluded.received_at
    RETURNING device_id, reader_ok, reader_err`.execute(trx);
  return new Map(res.rows.map((r) => [r.device_id, { ok: Number(r.reader_ok), err: Number(r.reader_err) }]));
}

/** A boot id not seen before is a (re)boot, recorded with the reason the terminal gave. */
async function recordBoots(trx: Kysely<Database>, fresh: Item[]): Promise<Map<string, number>> {
  const firsts = new Map<string, Item>();
  for (const it of fresh) {
    const k = `${it.deviceId}\u0000${it.hb.bootId}`;
    const prev = firsts.get(k);
    if (!prev || it.receivedAt < prev.receivedAt) firsts.set(k, it);
  }
  const boots = [...firsts.values()];
  await sql`
    INSERT INTO device_boots (device_id, boot_id, at, reason)
    SELECT * FROM unnest(${boots.map((b) => b.deviceId)}::text[], ${boots.map((b) => b.hb.bootId)}::text[],
                         ${boots.map((b) => iso(b.receivedAt))}::timestamptz[], ${boots.map((b) => b.hb.sys?.rebootReason ?? null)}::text[])
    ON CONFLICT DO NOTHING`.execute(trx);
  const ids = [...new Set(fresh.map((f) => f.deviceId))];
  const since = new Date(Math.max(...fresh.map((f) => f.receivedAt.getTime())) - 3600_000);
  const counts = await trx.selectFrom('device_boots').select(['device_id', (eb) => eb.fn.countAll<number>().as('n')])
    .where('device_id', 'in', ids).where('at', '>', since).groupBy('device_id').execute();
  return new Map(counts.map((c) => [c.device_id, Number(c.n)]));
}

async function updateDevices(trx: Kysely<Database>, rows: Item[]): Promise<void> {
  await sql`
    UPDATE devices AS d
    SET last_seen_at = v.seen, firmware = v.firmware, apps = v.apps::jsonb
    FROM unnest(${rows.map((r) => r.deviceId)}::text[], ${rows.map((r) => iso(r.receivedAt))}::timestamptz[],
                ${rows.map((r) => r.hb.firmware)}::text[], ${rows.map((r) => JSON.stringify(r.hb.apps))}::text[])
      AS v(id, seen, firmware, apps)
    WHERE d.id = v.id AND (d.last_seen_at IS NULL OR d.last_seen_at <= v.seen)`.execute(trx);
}

export function createIngest(deps: { db: Db; bus: FleetBus; hooks?: IngestHooks; maxItems?: number; maxDelayMs?: number; concurrency?: number }) {
  async function flush(items: Item[]): Promise<void> {
    const done = await deps.db.transaction().execute(async (trx) => {
      const fresh = await insertHeartbeats(trx, items);
      if (fresh.length === 0) return undefined; // all duplicates: dropped silently
      // Sorted so that concurrent batches lock device rows in the same order.
      const latest = latestPerDevice(fresh).sort((a, b) => (a.deviceId < b.deviceId ? -1 : 1));
      const readers = await upsertState(trx, fresh, latest);
      const boots = await recordBoots(trx, fresh);
      await updateDevices(trx, latest);
      const after = await deps.hooks?.inTransaction?.(trx, latest.map((l) => ({ deviceId: l.deviceId, at: l.receivedAt })));
      return { fresh, latest, readers, boots, after };
    });
    if (!done) return;
    done.after?.();
    for (const r of done.latest) deps.bus.emit('device.heartbeat', { deviceId: r.deviceId, at: r.receivedAt });
    deps.hooks?.afterCommit?.(done.fresh.map((it) => {
      const reader = done.readers.get(it.deviceId) ?? { ok: 0, err: 0 };
      const metrics = deriveMetrics(it.hb, { receivedAt: it.receivedAt, readerOk: reader.ok, readerErr: reader.err, bootsLastHour: done.boots.get(it.deviceId) ?? 0 });
      return { deviceId: it.deviceId, at: it.receivedAt, metrics };
    }));
  }

  const batcher = new Batcher<Item>({ maxItems: deps.maxItems ?? 2_000, maxDelayMs: deps.maxDelayMs ?? 20, flush, concurrency: deps.concurrency });

  return {
    accept: (deviceId: string, receivedAt: Date, hb: Heartbeat) => batcher.add({ deviceId, receivedAt, hb }),
    drain: () => batcher.drain(),
    close: () => batcher.close(),
  };
}

export type Ingest = ReturnType<typeof createIngest>;
