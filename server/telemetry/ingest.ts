// Heartbeat ingest. Heartbeats are grouped and written with one statement per
// batch (heartbeat-writer.ts; never one INSERT per message); a heartbeat's
// promise resolves only when its batch is committed, and the broker sends
// PUBACK only then (server/mqtt/broker.ts). Duplicates (device, bootId, seq)
// are dropped. Batches are sharded by device: several are written at once on a
// real pool, never two holding the same device, so each device's heartbeats
// are written in order and batches never wait on each other's row locks.
// On PostgreSQL the heartbeats this process knows to be new are appended with
// COPY; the rest (a device's first heartbeats after it connects, new boots,
// new versions, resends) go through the statement that dedupes. The latest
// state of each device is written behind (device-state.ts). Rule evaluation
// runs after the commit, off the PUBACK path.
import type { Kysely } from 'kysely';
import type { Heartbeat } from '../../protocol/messages.ts';
import { isTransientDbError, type Db } from '../db/index.ts';
import type { Database } from '../db/schema.ts';
import { Batcher } from '../lib/batcher.ts';
import { deriveMetrics, readerCounts } from './derive.ts';
import { createDeviceState } from './device-state.ts';
import { appendBatch, vitals, writeBatch, type Item, type WriteResult } from './heartbeat-writer.ts';

export type { Item } from './heartbeat-writer.ts';

export interface Observation {
  deviceId: string;
  at: Date;
  metrics: Record<string, unknown>;
}

export interface Seen {
  deviceId: string;
  at: Date;
}

export interface IngestHooks {
  /** The devices heard that need a write in the batch transaction (presence not known to be online). */
  needsTransaction?: (seen: Seen[]) => Seen[];
  /** Runs inside the batch transaction with the devices `needsTransaction` returned; returns what to do after the commit. */
  inTransaction?: (trx: Kysely<Database>, seen: Seen[]) => Promise<(() => void) | undefined>;
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
 * the highest seq stored on that boot, and the versions it reported (written
 * to its row). Hints only: a miss sends the question to the database, which decides.
 */
interface Known extends Versions {
  boot?: { id: string; times: number[]; seq: number };
}

function sameVersions(known: Versions | undefined, hb: Versions): boolean {
  if (!known || known.firmware !== hb.firmware) return false;
  let n = 0;
  for (const k in hb.apps) {
    if (known.apps[k] !== hb.apps[k]) return false;
    n++;
  }
  for (const _ in known.apps) n--; // as many apps as known (no array built on this per-heartbeat path)
  return n === 0;
}

/** A unique violation: a heartbeat appended as new was stored already. */
const isDuplicate = (err: unknown) => (err as { code?: string } | null)?.code === '23505';

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
  /** Append new heartbeats with COPY (PostgreSQL; PGlite's driver cannot). */
  copy?: boolean;
  /** Longest a device's new state waits to be written to device_state. */
  stateFlushMs?: number;
  /** Told of every batch written: its size, how many were new, and how long it took. */
  onBatch?: (size: number, fresh: number, seconds: number) => void;
  /** Told when writing device_state in the background failed (it is retried). */
  onError?: (err: unknown) => void;
}

export function createIngest(deps: { db: Db; hooks?: IngestHooks } & IngestOptions) {
  const known = new Map<string, Known>();
  const state = createDeviceState({ db: deps.db, flushMs: deps.stateFlushMs, onError: deps.onError });
  /** Heartbeats appended with COPY, written with the checking statement, and appends refused as duplicates. */
  const counts = { appended: 0, checked: 0, conflicts: 0 };

  async function flush(batch: Item[]): Promise<void> {
    const started = performance.now();
    const fresh = await write(batch);
    deps.onBatch?.(batch.length, fresh, (performance.now() - started) / 1000);
  }

  /** Whether a heartbeat is surely new and changes nothing but its own row and the device's state. */
  function appendable(it: Item): boolean {
    const k = known.get(it.deviceId);
    return (
      !!k?.boot &&
      k.boot.id === it.hb.bootId &&
      it.hb.seq > k.boot.seq &&
      sameVersions(k, it.hb) &&
      state.has(it.deviceId)
    );
  }

  /** The statement that dedupes, with what it must look up for these items. */
  function writeChecked(db: Kysely<Database>, items: Item[]): Promise<WriteResult> {
    const newBoot = items.map((it) => known.get(it.deviceId)?.boot?.id !== it.hb.bootId);
    const newVersions = items.map((it) => !sameVersions(known.get(it.deviceId), it.hb));
    const bootDevices = [...new Set(items.filter((_, i) => newBoot[i]).map((it) => it.deviceId))];
    const stateDevices = [...new Set(items.filter((it) => !state.has(it.deviceId)).map((it) => it.deviceId))];
    const since = new Date(Math.min(...items.map((it) => it.receivedAt.getTime())) - HOUR_MS);
    return writeBatch(db, items, { newBoot, newVersions, bootDevices, since, stateDevices });
  }

  /** Takes in committed items: what they teach about their devices, their state, and their rule observations. Returns how many were new. */
  function committed(items: Item[], isNew: (i: number) => boolean, checked?: WriteResult): number {
    // Every boot id and version of the items is recorded now, with the boots of the last hour read back.
    if (checked) {
      // The reader sums device_state holds (none yet: zero) for the devices this process did not hold.
      for (const it of items)
        if (!state.has(it.deviceId))
          state.seed(it.deviceId, checked.states.get(it.deviceId) ?? { ok: 0, err: 0, receivedAt: -Infinity });
    }
    for (const it of items) {
      const times = checked?.boots.get(it.deviceId);
      let k = known.get(it.deviceId);
      if (!k) known.set(it.deviceId, (k = { firmware: it.hb.firmware, apps: it.hb.apps }));
      else {
        k.firmware = it.hb.firmware;
        k.apps = it.hb.apps;
      }
      if (times) k.boot = { id: it.hb.bootId, times, seq: it.hb.seq };
      else if (k.boot?.id === it.hb.bootId && it.hb.seq > k.boot.seq) k.boot.seq = it.hb.seq;
    }
    const observations: Observation[] = [];
    items.forEach((it, i) => {
      if (!isNew(i)) return; // a duplicate: dropped silently
      const c = readerCounts(it.hb);
      const r = it.receivedAt.getTime();
      const reader = state.apply({
        deviceId: it.deviceId,
        bootId: it.hb.bootId,
        seq: it.hb.seq,
        ts: it.hb.ts,
        receivedAt: r,
        vitals: vitals(it),
        ok: c.ok,
        err: c.err,
      });
      let bootsLastHour = 0;
      for (const t of known.get(it.deviceId)?.boot?.times ?? []) if (t > r - HOUR_MS) bootsLastHour++;
      const metrics = deriveMetrics(it.hb, {
        receivedAt: it.receivedAt,
        readerOk: reader.ok,
        readerErr: reader.err,
        bootsLastHour,
      });
      observations.push({ deviceId: it.deviceId, at: it.receivedAt, metrics });
    });
    if (observations.length > 0) deps.hooks?.afterCommit?.(observations);
    return observations.length;
  }

  /** Takes in items written by the checking statement: only those it found new count. */
  function committedChecked(items: Item[], w: WriteResult): number {
    counts.checked += items.length;
    const fresh = new Set(w.fresh);
    return committed(items, (i) => fresh.has(i), w);
  }

  /** Writes one batch; resolves with how many heartbeats were new. */
  async function write(batch: Item[]): Promise<number> {
    const seenKeys = new Set<string>();
    const items = batch.filter((it) => {
      const k = key(it.deviceId, it.hb.bootId, it.hb.seq);
      if (seenKeys.has(k)) return false; // a resend in the same batch: written once
      seenKeys.add(k);
      return true;
    });
    const moving = deps.hooks?.needsTransaction ? deps.hooks.needsTransaction(latestPerDevice(items)) : [];
    if (moving.length > 0 && deps.hooks?.inTransaction) {
      // The presence write shares the heartbeats' transaction (an append failing in it would abort it,
      // so these batches, a device's first heartbeat in a while, are written checked).
      const { w, after } = await deps.db.transaction().execute(async (trx) => {
        const written = await writeChecked(trx, items);
        return { w: written, after: await deps.hooks!.inTransaction!(trx, moving) };
      });
      after?.();
      return committedChecked(items, w);
    }
    // Each part commits on its own (a single statement each): taken in as soon as it is.
    const append: Item[] = [];
    const check: Item[] = [];
    for (const it of items) (deps.copy && appendable(it) ? append : check).push(it);
    let fresh = 0;
    if (append.length > 0) {
      try {
        await appendBatch(deps.db, append);
        counts.appended += append.length;
        fresh += committed(append, () => true);
      } catch (err) {
        if (!isDuplicate(err)) throw err;
        counts.conflicts++;
        check.push(...append); // another writer got there first: dedupe
        check.sort((x, y) => x.receivedAt.getTime() - y.receivedAt.getTime());
      }
    }
    return check.length === 0 ? fresh : fresh + committedChecked(check, await writeChecked(deps.db, check));
  }

  // Batches are idempotent (heartbeats dedupe), so a deadlock is simply retried.
  const opts = {
    maxItems: deps.maxItems ?? 1_000,
    maxDelayMs: deps.maxDelayMs ?? 10,
    flush,
    retryable: isTransientDbError,
  };
  const shards = Array.from({ length: Math.max(1, deps.concurrency ?? 4) }, () => new Batcher<Item>(opts));

  return {
    accept: (deviceId: string, receivedAt: Date, hb: Heartbeat) =>
      shards[fnv(deviceId) % shards.length].add({ deviceId, receivedAt, hb }),
    /** Forgets what this process knows of a device (a new session, maybe after another instance): its next heartbeat asks the database. */
    forget: (deviceId: string) => {
      known.delete(deviceId);
      state.forget(deviceId);
    },
    counts: () => ({ ...counts }),
    /** Resolves once device_state holds every heartbeat acknowledged so far (for readers of it). */
    sync: () => state.sync(),
    /** Start-up, before terminals connect: device_state caught up with heartbeats a crash left unfolded. */
    recover: () => state.recover(),
    drain: async () => {
      await Promise.all(shards.map((s) => s.drain()));
      await state.sync();
    },
    close: async () => {
      await Promise.all(shards.map((s) => s.close()));
      await state.close();
    },
  };
}

export type Ingest = ReturnType<typeof createIngest>;
