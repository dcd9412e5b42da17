// Heartbeat ingest. Heartbeats are grouped and written with one statement per
// batch (heartbeat-writer.ts; never one INSERT per message); a heartbeat's
// promise resolves only when its batch is committed, and the broker sends
// PUBACK only then (server/mqtt/broker.ts). Duplicates (device, bootId, seq)
// are dropped by the primary key. Batches are sharded by device: several are
// written at once on a real pool, never two holding the same device, so each
// device's heartbeats are written in order and batches never wait on each
// other's row locks. Rule evaluation runs after the commit, off the PUBACK path.
import type { Kysely } from 'kysely';
import type { Heartbeat } from '../../protocol/messages.ts';
import { isTransientDbError, type Db } from '../db/index.ts';
import type { Database } from '../db/schema.ts';
import { Batcher } from '../lib/batcher.ts';
import { deriveMetrics } from './derive.ts';
import { writeBatch, type Item } from './heartbeat-writer.ts';

export type { Item } from './heartbeat-writer.ts';

export interface Observation {
  deviceId: string;
  at: Date;
  metrics: Record<string, unknown>;
}

export interface Seen { deviceId: string; at: Date }

export interface IngestHooks {
  /** The devices heard that need a write in the batch transaction (presence not known to be online). */
  needsTransaction?: (seen: Seen[]) => Seen[];
  /** Runs inside the batch transaction with the devices `needsTransaction` returned; returns what to do after the commit. */
  inTransaction?: (trx: Kysely<Database>, seen: Seen[]) => Promise<(() => void) | void>;
  /** The new heartbeats as rule observations, after the commit. */
  afterCommit?: (observations: Observation[]) => void;
}

const HOUR_MS = 3600_000;
const key = (deviceId: string, bootId: string, seq: number) => `${deviceId}\u0000${bootId}\u0000${seq}`;

function fnv(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

type Versions = Pick<Heartbeat, 'firmware' | 'apps'>;

/**
 * What this process knows of a device from the batches it committed: its
 * current boot (recorded in device_boots) with the boot times of the last hour,
 * and the versions it reported (written to its row). Hints only: a miss sends
 * the question to the database, which decides.
 */
interface Known extends Versions {
  boot?: { id: string; times: number[] };
}

function sameVersions(known: Versions | undefined, hb: Versions): boolean {
  if (!known || known.firmware !== hb.firmware) return false;
  let n = 0;
  for (const k in hb.apps) {
    if (known.apps[k] !== hb.apps[k]) return false;
    n++;
  }
  return n === Object.keys(known.apps).length;
}

function latestPerDevice(items: Item[]): Seen[] {
  const latest = new Map<string, Date>();
  for (const it of items) {
    const prev = latest.get(it.deviceId);
    if (!prev || prev < it.receivedAt) latest.set(it.deviceId, it.receivedAt);
  }
  return [...latest].map(([deviceId, at]) => ({ deviceId, at }));
}

export interface IngestOptions {
  maxItems?: number;
  maxDelayMs?: number;
  concurrency?: number;
  /** Told of every batch written: its size, how many were new, and how long it took. */
  onBatch?: (size: number, fresh: number, seconds: number) => void;
}

export function createIngest(deps: { db: Db; hooks?: IngestHooks } & IngestOptions) {
  const known = new Map<string, Known>();

  async function flush(batch: Item[]): Promise<void> {
    const started = performance.now();
    const fresh = await write(batch);
    deps.onBatch?.(batch.length, fresh, (performance.now() - started) / 1000);
  }

  /** Writes one batch; resolves with how many heartbeats were new. */
  async function write(batch: Item[]): Promise<number> {
    const seenKeys = new Set<string>();
    const items = batch.filter((it) => {
      const k = key(it.deviceId, it.hb.bootId, it.hb.seq);
      return seenKeys.has(k) ? false : (seenKeys.add(k), true); // a resend in the same batch: written once
    });
    const newBoot = items.map((it) => known.get(it.deviceId)?.boot?.id !== it.hb.bootId);
    const newVersions = items.map((it) => !sameVersions(known.get(it.deviceId), it.hb));
    const bootDevices = [...new Set(items.filter((_, i) => newBoot[i]).map((it) => it.deviceId))];
    const since = new Date(Math.min(...items.map((it) => it.receivedAt.getTime())) - HOUR_MS);
    const seen = latestPerDevice(items);
    const moving = deps.hooks?.needsTransaction ? deps.hooks.needsTransaction(seen) : seen;
    let after: (() => void) | void = undefined;
    const written = moving.length === 0 || !deps.hooks?.inTransaction
      ? await writeBatch(deps.db, items, { newBoot, newVersions, bootDevices, since })
      : await deps.db.transaction().execute(async (trx) => {
        const w = await writeBatch(trx, items, { newBoot, newVersions, bootDevices, since });
        after = await deps.hooks!.inTransaction!(trx, moving);
        return w;
      });
    // Committed: every boot id and version of the batch is recorded now, with the boots of the last hour read back.
    for (const it of items) {
      const times = written.boots.get(it.deviceId);
      const boot = times ? { id: it.hb.bootId, times } : undefined;
      const k = known.get(it.deviceId);
      if (!k) known.set(it.deviceId, { firmware: it.hb.firmware, apps: it.hb.apps, boot });
      else {
        k.firmware = it.hb.firmware;
        k.apps = it.hb.apps;
        if (boot) k.boot = boot;
      }
    }
    if (written.fresh.length === 0) return 0; // all duplicates: dropped silently
    (after as (() => void) | void)?.();
    const fresh = written.fresh.map((i) => items[i]);
    deps.hooks?.afterCommit?.(fresh.map((it) => {
      const reader = written.readers.get(it.deviceId) ?? { ok: 0, err: 0 };
      const bootsLastHour = (known.get(it.deviceId)?.boot?.times ?? []).filter((t) => t > it.receivedAt.getTime() - HOUR_MS).length;
      const metrics = deriveMetrics(it.hb, { receivedAt: it.receivedAt, readerOk: reader.ok, readerErr: reader.err, bootsLastHour });
      return { deviceId: it.deviceId, at: it.receivedAt, metrics };
    }));
    return fresh.length;
  }

  // Batches are idempotent (heartbeats dedupe on insert), so a deadlock is simply retried.
  const opts = { maxItems: deps.maxItems ?? 1_000, maxDelayMs: deps.maxDelayMs ?? 10, flush, retryable: isTransientDbError };
  const shards = Array.from({ length: Math.max(1, deps.concurrency ?? 4) }, () => new Batcher<Item>(opts));

  return {
    accept: (deviceId: string, receivedAt: Date, hb: Heartbeat) => shards[fnv(deviceId) % shards.length].add({ deviceId, receivedAt, hb }),
    /** Forgets what this process knows of a device (a new session, maybe after another instance): its next heartbeat asks the database. */
    forget: (deviceId: string) => { known.delete(deviceId); },
    drain: async () => { await Promise.all(shards.map((s) => s.drain())); },
    close: async () => { await Promise.all(shards.map((s) => s.close())); },
  };
}

export type Ingest = ReturnType<typeof createIngest>;
