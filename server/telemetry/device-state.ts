// The latest state of each device: its newest heartbeat, that heartbeat's
// vitals and the decayed card-reader sums (device_state). The heartbeats are
// the record, committed before their PUBACK; this table is derived from them,
// so it is written behind: kept here as heartbeats commit and upserted for all
// the devices that moved at most every `flushMs`, one statement for the fleet
// instead of a row update per heartbeat (on PostgreSQL that update cost as much
// as the heartbeat's own insert, bench/ingest).
//
// Readers that must see what was acknowledged call `sync()` first (the HTTP
// API, the presence sweep, the inspection). A crash loses no state either:
// `recover()`, run at start-up before terminals connect, folds into
// device_state the heartbeats committed after it was last written.
import { sql } from 'kysely';
import type { Db } from '../db/index.ts';
import { READER_DECAY, readerCountSql } from './derive.ts';

export interface StateUpdate {
  deviceId: string;
  bootId: string;
  seq: number;
  /** Device clock and receive time, ms since epoch. */
  ts: number;
  receivedAt: number;
  vitals: Record<string, unknown>;
  /** Card reads in this heartbeat. */
  ok: number;
  err: number;
}

export interface ReaderSums {
  ok: number;
  err: number;
}

interface Entry {
  /** Decayed card-reader sums including every heartbeat applied. */
  ok: number;
  err: number;
  receivedAt: number;
  /** The newest heartbeat not yet written to device_state (its vitals are kept only until then). */
  pending: StateUpdate | null;
}

export interface DeviceStateOptions {
  db: Db;
  /** Longest a change waits before it is written (default 1 s). */
  flushMs?: number;
  onError?: (err: unknown) => void;
}

/** device_state's upsert: an older state never replaces a newer one (another instance may have written the device since). */
const UPSERT = sql`ON CONFLICT (device_id) DO UPDATE SET boot_id = excluded.boot_id, seq = excluded.seq, ts = excluded.ts,
  received_at = excluded.received_at, drift_ms = excluded.drift_ms, vitals = excluded.vitals,
  reader_ok = excluded.reader_ok, reader_err = excluded.reader_err
  WHERE device_state.received_at <= excluded.received_at`;

export function createDeviceState(opts: DeviceStateOptions) {
  const { db } = opts;
  const flushMs = opts.flushMs ?? 1_000;
  const entries = new Map<string, Entry>();
  const dirty = new Set<string>();
  /** Devices whose state the write in flight carries. */
  const inFlight = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let writing: Promise<void> | null = null;

  /** Whether the device's reader sums are here (else `seed` them from device_state before applying). */
  const has = (deviceId: string) => entries.has(deviceId);

  /** The sums device_state holds for a device this process has not applied anything to yet. */
  function seed(deviceId: string, sums: ReaderSums & { receivedAt: number }): void {
    if (!entries.has(deviceId))
      entries.set(deviceId, { ok: sums.ok, err: sums.err, receivedAt: sums.receivedAt, pending: null });
  }

  function schedule(): void {
    timer ??= setTimeout(() => {
      timer = undefined;
      void flush().catch((err) => opts.onError?.(err));
    }, flushMs).unref();
  }

  /** Applies a committed heartbeat; returns the device's reader sums including it. */
  function apply(u: StateUpdate): ReaderSums {
    let e = entries.get(u.deviceId);
    if (!e) entries.set(u.deviceId, (e = { ok: 0, err: 0, receivedAt: -Infinity, pending: null }));
    e.ok = e.ok * READER_DECAY + u.ok;
    e.err = e.err * READER_DECAY + u.err;
    if (u.receivedAt >= e.receivedAt) {
      e.receivedAt = u.receivedAt;
      e.pending = u;
      dirty.add(u.deviceId);
      schedule();
    }
    return { ok: e.ok, err: e.err };
  }

  /** Forgets a device whose state is written (another instance may move it next); unwritten state stays. */
  function forget(deviceId: string): void {
    if (!dirty.has(deviceId) && !inFlight.has(deviceId)) entries.delete(deviceId);
  }

  async function write(): Promise<void> {
    const taken: StateUpdate[] = [];
    const rows: object[] = [];
    for (const id of dirty) {
      const e = entries.get(id)!;
      const u = e.pending!;
      taken.push(u);
      rows.push({ d: id, b: u.bootId, s: u.seq, t: u.ts, r: u.receivedAt, v: u.vitals, ok: e.ok, err: e.err });
      e.pending = null;
      inFlight.add(id);
    }
    dirty.clear();
    try {
      // Ordered by device: concurrent writers lock rows in the same order.
      await sql`-- prepare: device_state_flush
        INSERT INTO device_state (device_id, boot_id, seq, ts, received_at, drift_ms, vitals, reader_ok, reader_err)
        SELECT d, b, s, to_timestamp(t / 1000.0), to_timestamp(r / 1000.0), r - t, v, ok, err
        FROM json_to_recordset(${JSON.stringify(rows)}::json) AS j(d text, b text, s bigint, t bigint, r bigint, v jsonb, ok float8, err float8)
        ORDER BY d
        ${UPSERT}`.execute(db);
    } catch (err) {
      // Not written: pending again, unless a newer heartbeat took its place meanwhile.
      for (const u of taken) {
        const e = entries.get(u.deviceId)!;
        e.pending ??= u;
        dirty.add(u.deviceId);
      }
      schedule();
      throw err;
    } finally {
      inFlight.clear();
    }
  }

  /** Writes every state applied so far; resolves once device_state holds them all. */
  async function flush(): Promise<void> {
    while (writing) await writing; // one write at a time, in order
    if (dirty.size === 0) return;
    if (timer) clearTimeout(timer);
    timer = undefined;
    writing = write().finally(() => {
      writing = null;
    });
    await writing;
  }

  /** Resolves once device_state holds every heartbeat applied before the call. */
  function sync(): Promise<void> {
    return dirty.size === 0 && !writing ? Promise.resolve() : flush();
  }

  /**
   * Start-up: folds into device_state the heartbeats committed after it was last
   * written (a crash before the write-behind caught up). One index probe per device
   * into heartbeats (device_id, received_at). Returns the devices brought up to date.
   */
  async function recover(): Promise<number> {
    await flush();
    const res = await sql`
      WITH newer AS (
        SELECT dv.id AS device_id, coalesce(s.reader_ok, 0) AS reader_ok0, coalesce(s.reader_err, 0) AS reader_err0, h.*,
          (row_number() OVER w - 1)::float8 AS k, (count(*) OVER (PARTITION BY dv.id))::float8 AS n
        FROM devices dv
        LEFT JOIN device_state s ON s.device_id = dv.id
        CROSS JOIN LATERAL (
          SELECT h.boot_id, h.seq, h.ts, h.received_at, h.drift_ms, h.vitals, ${readerCountSql('h.vitals', 'Ok')} AS ok, ${readerCountSql('h.vitals', 'Err')} AS err
          FROM heartbeats h
          WHERE h.device_id = dv.id AND h.received_at > coalesce(s.received_at, '-infinity'::timestamptz)
        ) h
        WINDOW w AS (PARTITION BY dv.id ORDER BY h.received_at DESC, h.seq DESC)
      ), folded AS (
        -- Each reading weighs DECAY^k, k counting the readings after it; the old sums DECAY^n.
        SELECT device_id, reader_ok0 * power(${READER_DECAY}::float8, n) + sum(ok * power(${READER_DECAY}::float8, k)) AS ok,
          reader_err0 * power(${READER_DECAY}::float8, n) + sum(err * power(${READER_DECAY}::float8, k)) AS err
        FROM newer GROUP BY device_id, reader_ok0, reader_err0, n
      )
      INSERT INTO device_state (device_id, boot_id, seq, ts, received_at, drift_ms, vitals, reader_ok, reader_err)
      SELECT x.device_id, x.boot_id, x.seq, x.ts, x.received_at, x.drift_ms, x.vitals, f.ok, f.err
      FROM newer x JOIN folded f ON f.device_id = x.device_id
      WHERE x.k = 0
      ORDER BY x.device_id
      ${UPSERT}`.execute(db);
    return Number(res.numAffectedRows ?? 0);
  }

  return {
    has,
    seed,
    apply,
    forget,
    sync,
    flush,
    recover,
    /** Devices whose state waits to be written. */
    get pending(): number {
      return dirty.size;
    },
    /** Writes what is left and stops the timer (shutdown). */
    close: async () => {
      await flush();
      if (timer) clearTimeout(timer);
      timer = undefined;
    },
  };
}

export type DeviceState = ReturnType<typeof createDeviceState>;
