// Zero loss: a burst of QoS 1 heartbeats from several terminals, the server
// stopped (graceful, as on SIGTERM) in the middle; every heartbeat whose
// PUBACK a terminal received must be in the database.
import type { MqttClient } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { connectDevice, enrollDevice, startTestApp } from './helpers/app.ts';
import { dbKind } from './helpers/db.ts';

describe(`heartbeat durability (${dbKind()})`, () => {
  it('keeps every PUBACKed heartbeat when the server stops in the middle of a burst', async () => {
    const t = await startTestApp();
    const devices = await Promise.all(Array.from({ length: 6 }, () => enrollDevice(t, { model: 'T2' })));
    const clients: MqttClient[] = await Promise.all(devices.map((d) => connectDevice(t.app, d)));
    const acked = new Map<string, number[]>(devices.map((d) => [d.deviceId, []]));
    let ackCount = 0;
    let stopping: Promise<void> | undefined;
    const PER_DEVICE = 1_000;
    const settled = devices.flatMap((d, i) =>
      Array.from(
        { length: PER_DEVICE },
        (_, seq) =>
          new Promise<void>((resolve) => {
            const hb = {
              v: 1,
              seq,
              bootId: 'burst',
              ts: Date.now(),
              firmware: '1.0.0',
              apps: {},
              battery: { pct: 50 },
            };
            clients[i].publish(`fleet/${d.deviceId}/heartbeat`, JSON.stringify(hb), { qos: 1 }, (err) => {
              if (!err) {
                acked.get(d.deviceId)!.push(seq);
                // Stop once a tenth of the burst is acknowledged, while the rest is in flight.
                if (++ackCount === Math.floor(devices.length * PER_DEVICE * 0.1)) stopping = t.stop();
              }
              resolve();
            });
          }),
      ),
    );
    const closed = Promise.all(clients.map((c) => new Promise<void>((r) => c.once('close', () => r()))));
    await Promise.race([Promise.all(settled), closed.then(() => new Promise((r) => setTimeout(r, 500)))]);
    await stopping;
    for (const c of clients) c.end(true);

    expect(ackCount).toBeGreaterThan(0);
    expect(ackCount).toBeLessThan(devices.length * PER_DEVICE); // the stop really cut the burst
    const rows = await t.app.db
      .selectFrom('heartbeats')
      .select(['device_id', 'seq'])
      .where(
        'device_id',
        'in',
        devices.map((d) => d.deviceId),
      )
      .where('boot_id', '=', 'burst')
      .execute();
    const stored = new Set(rows.map((r) => `${r.device_id}/${Number(r.seq)}`));
    const lost = [...acked].flatMap(([id, seqs]) => seqs.filter((s) => !stored.has(`${id}/${s}`)));
    expect(lost).toEqual([]);
  });
});
