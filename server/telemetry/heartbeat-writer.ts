// The two ways a batch of heartbeats reaches the database.
//
// `appendBatch`: COPY into heartbeats, for the common batch, whose heartbeats
// this process knows to be new (each device's next seq on a boot it has
// recorded, versions unchanged). COPY cost PostgreSQL half what an INSERT of
// the same rows did (bench/ingest). It has no ON CONFLICT: should a duplicate
// slip through anyway (another instance wrote it), the whole COPY fails and the
// caller writes the batch with `writeBatch`, which dedupes.
//
// `writeBatch`: one statement for everything else. Heartbeats inserted
// (duplicates dropped by the primary key), the devices' firmware/apps updated
// when they change, new boots recorded, the boots of the last hour read back
// for the devices whose boot the caller does not know yet, and the device_state
// reader sums of the devices whose state the caller does not hold. A single
// statement is atomic by itself, so it needs no BEGIN/COMMIT round trips; its
// CTE parts all read one snapshot. Planning it cost PostgreSQL as much as
// writing ~80 of its rows: it is prepared once per connection ("-- prepare:",
// server/db/pg-worker.mjs) and only bound and run after that.
//
// device_state itself is written behind (device-state.ts).
import { sql, type Kysely } from 'kysely';
import type { Heartbeat } from '../../protocol/messages.ts';
import { copyRows, copyValue } from '../db/copy.ts';
import type { Database } from '../db/schema.ts';
import { isoTime } from '../lib/iso-time.ts';
import { vitalsOf } from './derive.ts';

export interface Item {
  deviceId: string;
  receivedAt: Date;
  hb: Heartbeat;
  /** vitalsOf(hb), once computed (`vitals(item)`); never mutated. */
  vitals?: Record<string, unknown>;
}

/** The item's vitals, computed once however many writers ask. */
export const vitals = (it: Item): Record<string, unknown> => (it.vitals ??= vitalsOf(it.hb));

export interface WriteResult {
  /** Indexes (into the items given) of the heartbeats that were new. */
  fresh: number[];
  /** Boot times (ms) within the hour before the batch, per device asked about. */
  boots: Map<string, number[]>;
  /** device_state's reader sums and receive time, per device asked about that has a state. */
  states: Map<string, { ok: number; err: number; receivedAt: number }>;
}

interface Row {
  fresh: number[] | null;
  bd: string[] | null;
  bat: number[] | null;
  sd: string[] | null;
  sok: number[] | null;
  serr: number[] | null;
  sat: number[] | null;
}

/** What the caller knows of the batch's devices (hints: a wrong `true` costs a lookup, never a wrong row). */
export interface BatchHints {
  /** Per item: its boot id may not be recorded yet. */
  newBoot: boolean[];
  /** Per item: the firmware or apps it reports may differ from the device row's. */
  newVersions: boolean[];
  /** The devices whose boots of the last hour are wanted, and since when. */
  bootDevices: string[];
  since: Date;
  /** The devices whose device_state reader sums are wanted. */
  stateDevices: string[];
}

const COLUMNS = ['device_id', 'boot_id', 'seq', 'ts', 'received_at', 'drift_ms', 'firmware', 'vitals'] as const;

/** Appends `items`, all new heartbeats, with COPY (PostgreSQL only). Fails whole on a duplicate. */
export async function appendBatch(db: Kysely<Database>, items: Item[]): Promise<void> {
  const lines = new Array<string>(items.length);
  for (let i = 0; i < items.length; i++) {
    const it = items[i];
    const { deviceId, receivedAt, hb } = it;
    const r = receivedAt.getTime();
    lines[i] =
      `${copyValue(deviceId)}\t${copyValue(hb.bootId)}\t${hb.seq}\t${isoTime(hb.ts)}\t${isoTime(r)}\t${r - hb.ts}\t${copyValue(hb.firmware)}\t${copyValue(JSON.stringify(vitals(it)))}`;
  }
  await copyRows(db, 'heartbeats', COLUMNS, lines);
}

/** Writes `items` (no two with the same device, bootId and seq), dropping the ones already stored. */
export async function writeBatch(db: Kysely<Database>, items: Item[], hints: BatchHints): Promise<WriteResult> {
  const { newBoot, newVersions, bootDevices, since, stateDevices } = hints;
  // The batch travels as one JSON document, vitals nested: one native
  // JSON.stringify instead of an array literal per column, escaped element by element by the driver.
  const rows = new Array<object>(items.length);
  for (let i = 0; i < items.length; i++) {
    const { deviceId, receivedAt, hb } = items[i];
    rows[i] = {
      d: deviceId,
      b: hb.bootId,
      s: hb.seq,
      t: hb.ts,
      r: receivedAt.getTime(),
      f: hb.firmware,
      v: vitals(items[i]),
      apps: hb.apps,
      reason: hb.sys?.rebootReason ?? null,
      nb: newBoot[i],
      nv: newVersions[i],
      i,
    };
  }
  const res = await sql<Row>`-- prepare: heartbeat_batch
    WITH x AS (
      SELECT d, b, s, t, to_timestamp(r / 1000.0) AS r, r - t AS drift, f, v, apps, reason, nb, nv, i
      FROM json_to_recordset(${JSON.stringify(rows)}::json)
        AS j(d text, b text, s bigint, t bigint, r bigint, f text, v jsonb, apps jsonb, reason text, nb bool, nv bool, i int)
    ), ins AS (
      INSERT INTO heartbeats (device_id, boot_id, seq, ts, received_at, drift_ms, firmware, vitals)
      SELECT d, b, s, to_timestamp(t / 1000.0), r, drift, f, v FROM x
      ON CONFLICT DO NOTHING
      RETURNING device_id, boot_id, seq
    ), fresh AS (
      SELECT x.* FROM x JOIN ins ON ins.device_id = x.d AND ins.boot_id = x.b AND ins.seq = x.s
    ), dev AS (
      -- The device row only when the versions it reports change (last seen is device_state's),
      -- looked at only where the caller cannot tell they did not. A device's batches are written
      -- in order (ingest.ts shards by device); should two instances ever race on one device,
      -- its next heartbeat writes its versions again.
      UPDATE devices AS dv SET firmware = l.f, apps = l.apps
      FROM (SELECT DISTINCT ON (d) d, f, apps FROM fresh WHERE nv ORDER BY d, r DESC, s DESC) l
      WHERE dv.id = l.d AND (dv.firmware IS DISTINCT FROM l.f OR dv.apps IS DISTINCT FROM l.apps)
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
    ), st AS (
      SELECT device_id, reader_ok, reader_err, received_at FROM device_state WHERE device_id = ANY(${stateDevices}::text[])
    )
    -- One row of arrays rather than a row per heartbeat: far less to parse on the hot path.
    SELECT (SELECT array_agg(i) FROM fresh) AS fresh,
      (SELECT array_agg(device_id ORDER BY device_id, at) FROM boots) AS bd,
      (SELECT array_agg((extract(epoch FROM at) * 1000)::float8 ORDER BY device_id, at) FROM boots) AS bat,
      (SELECT array_agg(device_id ORDER BY device_id) FROM st) AS sd,
      (SELECT array_agg(reader_ok ORDER BY device_id) FROM st) AS sok,
      (SELECT array_agg(reader_err ORDER BY device_id) FROM st) AS serr,
      (SELECT array_agg((extract(epoch FROM received_at) * 1000)::float8 ORDER BY device_id) FROM st) AS sat`.execute(
    db,
  );
  const row = res.rows[0];
  const out: WriteResult = {
    fresh: (row.fresh ?? []).map(Number),
    boots: new Map(bootDevices.map((id) => [id, []])),
    states: new Map(),
  };
  for (const [j, d] of (row.bd ?? []).entries()) out.boots.get(d)?.push(Number(row.bat![j]));
  for (const [j, d] of (row.sd ?? []).entries()) {
    out.states.set(d, { ok: Number(row.sok![j]), err: Number(row.serr![j]), receivedAt: Number(row.sat![j]) });
  }
  return out;
}
