// One statement per batch: heartbeats inserted (duplicates dropped by the
// primary key), the latest state of each device upserted (its received_at is
// the device's last seen), the devices' firmware/apps updated when they
// change, new boots recorded, and the boots of the last hour read back for
// the devices whose boot the caller does not know yet. A
// single statement is atomic by itself, so the common batch needs no
// BEGIN/COMMIT round trips. The CTE parts all read one snapshot: the boots
// read back are the ones committed before plus the ones inserted here.
// Planning this statement cost PostgreSQL as much as writing ~80 of its rows:
// on PostgreSQL it is prepared once per connection ("-- prepare:",
// server/db/pg-worker.mjs) and only bound and run after that.
import { sql, type Kysely } from 'kysely';
import type { Heartbeat } from '../../protocol/messages.ts';
import type { Database } from '../db/schema.ts';
import { READER_DECAY, readerCounts, vitalsOf } from './derive.ts';

export interface Item {
  deviceId: string;
  receivedAt: Date;
  hb: Heartbeat;
}

export interface WriteResult {
  /** Indexes (into the items given) of the heartbeats that were new. */
  fresh: number[];
  /** Decayed card-reader sums after the upsert, per device whose state moved. */
  readers: Map<string, { ok: number; err: number }>;
  /** Boot times (ms) within the hour before the batch, per device asked about. */
  boots: Map<string, number[]>;
}

interface Row { fresh: number[] | null; sd: string[] | null; sok: number[] | null; serr: number[] | null; bd: string[] | null; bat: number[] | null }

/** What the caller knows of the batch's devices (hints: a wrong `true` costs a lookup, never a wrong row). */
export interface BatchHints {
  /** Per item: its boot id may not be recorded yet. */
  newBoot: boolean[];
  /** Per item: the firmware or apps it reports may differ from the device row's. */
  newVersions: boolean[];
  /** The devices whose boots of the last hour are wanted, and since when. */
  bootDevices: string[];
  since: Date;
}

/** Writes `items` (no two with the same device, bootId and seq). */
export async function writeBatch(db: Kysely<Database>, items: Item[], hints: BatchHints): Promise<WriteResult> {
  const { newBoot, newVersions, bootDevices, since } = hints;
  // The batch travels as one JSON document, vitals nested: one native
  // JSON.stringify instead of thirteen array literals escaped element by element
  // by the driver (the vitals JSON twice over), which showed in the ingest profile.
  const rows = new Array<object>(items.length);
  for (let i = 0; i < items.length; i++) {
    const { deviceId, receivedAt, hb } = items[i];
    const c = readerCounts(hb);
    rows[i] = {
      d: deviceId, b: hb.bootId, s: hb.seq, t: hb.ts, r: receivedAt.getTime(), f: hb.firmware, v: vitalsOf(hb), apps: hb.apps,
      ok: c.ok, err: c.err, reason: hb.sys?.rebootReason ?? null, nb: newBoot[i], nv: newVersions[i], i,
    };
  }
  const res = await sql<Row>`-- prepare: heartbeat_batch
    WITH x AS (
      SELECT d, b, s, t, to_timestamp(r / 1000.0) AS r, r - t AS drift, f, v, apps, ok, err, reason, nb, nv, i
      FROM json_to_recordset(${JSON.stringify(rows)}::json)
        AS j(d text, b text, s bigint, t bigint, r bigint, f text, v jsonb, apps jsonb, ok float8, err float8, reason text, nb bool, nv bool, i int)
    ), ins AS (
      INSERT INTO heartbeats (device_id, boot_id, seq, ts, received_at, drift_ms, firmware, vitals)
      SELECT d, b, s, to_timestamp(t / 1000.0), r, drift, f, v FROM x
      ON CONFLICT DO NOTHING
      RETURNING device_id, boot_id, seq
    ), fresh AS (
      SELECT x.* FROM x JOIN ins ON ins.device_id = x.d AND ins.boot_id = x.b AND ins.seq = x.s
    ), latest AS (
      -- Each device's newest heartbeat with the batch's reader sums, in one sorted pass (a
      -- join of two CTEs here was planned as a nested loop: quadratic in the batch size).
      -- Ordered by device so that concurrent statements lock device rows in the same order.
      SELECT DISTINCT ON (d) *, sum(ok) OVER (PARTITION BY d) AS ok_sum, sum(err) OVER (PARTITION BY d) AS err_sum
      FROM fresh ORDER BY d, r DESC, s DESC
    ), st AS (
      INSERT INTO device_state (device_id, boot_id, seq, ts, received_at, drift_ms, vitals, reader_ok, reader_err)
      SELECT l.d, l.b, l.s, to_timestamp(l.t / 1000.0), l.r, l.drift, l.v, l.ok_sum, l.err_sum
      FROM latest l ORDER BY l.d
      ON CONFLICT (device_id) DO UPDATE SET boot_id = excluded.boot_id, seq = excluded.seq, ts = excluded.ts,
        received_at = excluded.received_at, drift_ms = excluded.drift_ms, vitals = excluded.vitals,
        reader_ok = device_state.reader_ok * ${READER_DECAY} + excluded.reader_ok,
        reader_err = device_state.reader_err * ${READER_DECAY} + excluded.reader_err
      WHERE device_state.received_at <= excluded.received_at
      RETURNING device_id, reader_ok, reader_err
    ), dev AS (
      -- The device row only when the versions it reports change (last seen is device_state's),
      -- looked at only where the caller cannot tell they did not. A device's batches are written
      -- in order (ingest.ts shards by device); should two instances ever race on one device,
      -- its next heartbeat writes its versions again.
      UPDATE devices AS dv SET firmware = l.f, apps = l.apps
      FROM latest l
      WHERE l.nv AND dv.id = l.d AND (dv.firmware IS DISTINCT FROM l.f OR dv.apps IS DISTINCT FROM l.apps)
    ), bt AS (
      -- A boot id not seen before is a (re)boot, recorded with the reason the terminal gave.
      INSERT INTO device_boots (device_id, boot_id, at, reason)
      SELECT DISTINCT ON (d, b) d, b, r, reason FROM fresh WHERE nb ORDER BY d, b, r
      ON CONFLICT DO NOTHING
      RETURNING device_id, at
    ), boots AS (
      SELECT device_id, at FROM bt
      UNION ALL SELECT device_id, at FROM device_boots
        WHERE device_id = ANY(${bootDevices}::text[]) AND at > ${since.toISOString()}::timestamptz
    )
    -- One row of arrays rather than a row per heartbeat: far less to parse on the hot path.
    SELECT (SELECT array_agg(i) FROM fresh) AS fresh,
      (SELECT array_agg(device_id ORDER BY device_id) FROM st) AS sd,
      (SELECT array_agg(reader_ok ORDER BY device_id) FROM st) AS sok,
      (SELECT array_agg(reader_err ORDER BY device_id) FROM st) AS serr,
      (SELECT array_agg(device_id ORDER BY device_id, at) FROM boots) AS bd,
      (SELECT array_agg((extract(epoch FROM at) * 1000)::float8 ORDER BY device_id, at) FROM boots) AS bat`.execute(db);
  const row = res.rows[0];
  const out: WriteResult = { fresh: (row.fresh ?? []).map(Number), readers: new Map(), boots: new Map(bootDevices.map((id) => [id, []])) };
  (row.sd ?? []).forEach((d, j) => out.readers.set(d, { ok: Number(row.sok![j]), err: Number(row.serr![j]) }));
  (row.bd ?? []).forEach((d, j) => out.boots.get(d)?.push(Number(row.bat![j])));
  return out;
}
