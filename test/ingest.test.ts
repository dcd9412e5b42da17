// The heartbeat ingest below the broker, on a real database: new heartbeats of
// known devices appended (COPY on PostgreSQL), duplicates dropped also when an
// append meets one another writer stored, and device_state written behind the
// heartbeats: caught up by sync(), and rebuilt from them after a crash.
import { afterAll, describe, expect, it } from 'vitest';
import type { Heartbeat } from '../protocol/messages.ts';
import { randomChars } from '../server/lib/ids.ts';
import { READER_DECAY } from '../server/telemetry/derive.ts';
import { createIngest, type Ingest, type Observation } from '../server/telemetry/ingest.ts';
import { dbKind, sharedDb } from './helpers/db.ts';

const T0 = Date.UTC(2026, 2, 3, 10, 0, 0);
const HOUR = 3600_000;

function hb(seq: number, extra: Partial<Heartbeat> = {}): Heartbeat {
  return {
    v: 1,
    seq,
    bootId: 'boot-1',
    ts: T0 + seq * 1000,
    firmware: '1.0.0',
    apps: { payment: '5.0.0' },
    battery: { pct: 90 - seq },
    ...extra,
  } as Heartbeat;
}

describe(`heartbeat ingest (${dbKind()})`, () => {
  const open: Ingest[] = [];
  afterAll(async () => {
    for (const i of open) await i.close();
  });

  /** An ingest as one server process has it; `observed` collects its rule observations. */
  async function ingest(opts: { stateFlushMs?: number } = {}) {
    const { db, kind } = await sharedDb();
    const observed: Observation[] = [];
    const i = createIngest({
      db,
      copy: kind === 'postgres',
      concurrency: 1,
      maxDelayMs: 1,
      stateFlushMs: opts.stateFlushMs ?? 60_000,
      hooks: { afterCommit: (o) => observed.push(...o) },
    });
    open.push(i);
    const send = async (deviceId: string, beats: Heartbeat[], at = (h: Heartbeat) => new Date(h.ts + 500)) => {
      await Promise.all(beats.map((b) => i.accept(deviceId, at(b), b)));
    };
    return { i, observed, send };
  }

  async function device(): Promise<string> {
    const { db } = await sharedDb();
    const id = `dev_ing_${randomChars(8)}`;
    const now = new Date(T0);
    await db
      .insertInto('devices')
      .values({ id, serial: id, model: 'T1', status: 'active', created_at: now, updated_at: now } as never)
      .execute();
    return id;
  }

  async function stored(deviceId: string) {
    const { db } = await sharedDb();
    const rows = await db
      .selectFrom('heartbeats')
      .select(['seq'])
      .where('device_id', '=', deviceId)
      .orderBy('seq')
      .execute();
    return rows.map((r) => Number(r.seq));
  }

  async function stateOf(deviceId: string) {
    const { db } = await sharedDb();
    return db.selectFrom('device_state').selectAll().where('device_id', '=', deviceId).executeTakeFirst();
  }

  it('appends the next heartbeats of a device it knows, and checks the first ones and the resends', async () => {
    const { i, observed, send } = await ingest();
    const d = await device();
    await send(d, [hb(1)]);
    const first = i.counts();
    expect(first.checked).toBeGreaterThanOrEqual(1); // a device first heard: its boot and versions are looked up
    await send(d, [hb(2)]);
    await send(d, [hb(3)]);
    await send(d, [hb(2)]); // a resend: not new, so not appendable
    const after = i.counts();
    expect(after.appended - first.appended).toBe(dbKind() === 'postgres' ? 2 : 0);
    expect(after.checked - first.checked).toBe(dbKind() === 'postgres' ? 1 : 3);
    expect(await stored(d)).toEqual([1, 2, 3]);
    expect(observed.filter((o) => o.deviceId === d).map((o) => (o.metrics.battery as { pct: number }).pct)).toEqual([
      89, 88, 87,
    ]);
  });

  it('drops a heartbeat another writer stored first, also when it was sent to be appended', async () => {
    // Two instances (a terminal that moved between them): each knows the device, neither knows all it stored.
    const a = await ingest();
    const b = await ingest();
    const d = await device();
    await a.send(d, [hb(1)]);
    await b.send(d, [hb(1)]); // B learns the device (boot recorded, seq 1 stored)
    await a.send(d, [hb(2)]); // A stores seq 2
    const before = b.i.counts();
    await b.send(d, [hb(2), hb(3)]); // B believes 2 and 3 new: on PostgreSQL the append is refused whole, then checked
    const after = b.i.counts();
    if (dbKind() === 'postgres') expect(after.conflicts - before.conflicts).toBe(1);
    expect(await stored(d)).toEqual([1, 2, 3]);
    expect(b.observed.filter((o) => o.deviceId === d).map((o) => (o.metrics.battery as { pct: number }).pct)).toEqual([
      87,
    ]); // seq 3, the one B stored
  });

  it('writes device state behind the heartbeats: sync() catches it up, with card-reader sums decayed per heartbeat', async () => {
    const { i, send } = await ingest();
    const d = await device();
    const reads = [
      [10, 0],
      [10, 5],
      [0, 0],
      [20, 1],
    ];
    await send(
      d,
      reads.map(([ok, err], k) => hb(k + 1, { reader: { chipOk: ok, chipErr: err } })),
    );
    expect(await stateOf(d)).toBeUndefined(); // acknowledged, not yet written
    await i.sync();
    const s = await stateOf(d);
    const expected = reads.reduce(
      (acc, [ok, err]) => [acc[0] * READER_DECAY + ok, acc[1] * READER_DECAY + err],
      [0, 0],
    );
    expect(s).toMatchObject({
      boot_id: 'boot-1',
      seq: 4,
      vitals: { battery: { pct: 86 }, reader: { chipOk: 20, chipErr: 1 } },
    });
    expect(s!.reader_ok).toBeCloseTo(expected[0], 9);
    expect(s!.reader_err).toBeCloseTo(expected[1], 9);
    expect(s!.received_at.getTime()).toBe(T0 + 4_500);
  });

  it('rebuilds device state after a crash from the heartbeats stored since it was last written', async () => {
    const crashed = await ingest();
    const d = await device();
    await crashed.send(d, [hb(1, { reader: { swipeOk: 8, swipeErr: 2 } })]);
    await crashed.i.sync(); // written once…
    await crashed.send(
      d,
      [2, 3, 4].map((k) => hb(k, { reader: { swipeOk: k, swipeErr: 1 } })),
    ); // …then the process dies before the next write
    const stale = await stateOf(d);
    expect(stale).toMatchObject({ seq: 1 });

    const restarted = await ingest();
    expect(await restarted.i.recover()).toBeGreaterThanOrEqual(1);
    const s = await stateOf(d);
    expect(s).toMatchObject({ seq: 4, vitals: { reader: { swipeOk: 4, swipeErr: 1 } } });
    // The same sums the live process held: recovery folds the newer heartbeats with the same decay.
    const live = [
      [8, 2],
      [2, 1],
      [3, 1],
      [4, 1],
    ].reduce((acc, [ok, err]) => [acc[0] * READER_DECAY + ok, acc[1] * READER_DECAY + err], [0, 0]);
    expect(s!.reader_ok).toBeCloseTo(live[0], 9);
    expect(s!.reader_err).toBeCloseTo(live[1], 9);
    expect(await restarted.i.recover()).toBe(0); // nothing left to fold

    // A device whose state was never written at all is rebuilt too.
    const fresh = await device();
    await crashed.send(fresh, [hb(1), hb(2)]);
    expect(await stateOf(fresh)).toBeUndefined();
    await restarted.i.recover();
    expect(await stateOf(fresh)).toMatchObject({ seq: 2, reader_ok: 0 });
  });

  it('never lets an older state overwrite a newer one another process wrote', async () => {
    const a = await ingest();
    const b = await ingest();
    const d = await device();
    await a.send(d, [hb(1)], () => new Date(T0 + HOUR));
    await b.send(d, [hb(2)], () => new Date(T0 + 2 * HOUR));
    await b.i.sync();
    await a.i.sync(); // A's state is older: refused
    expect(await stateOf(d)).toMatchObject({ seq: 2 });
  });
});
