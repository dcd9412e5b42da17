// What the start-up recovery of device_state costs on a large fleet.
//   DATABASE_URL=postgres://… npx tsx bench/recovery/run.ts [--devices 100000] [--history 20] [--newer 0.02,1] [--rounds 3]
// Without DATABASE_URL it runs on an in-memory PGlite.
//
// device_state is written behind the heartbeats (at most 1 s late); at start-up,
// before the broker listens, recover() folds in every heartbeat stored after a
// device's state was written. This bench builds a fleet of --devices terminals
// with --history heartbeats each, all already folded into device_state, and
// times recover() after a clean stop (nothing to fold) and after a crash that
// left one unwritten heartbeat on each of a fraction of the devices (--newer:
// 1/60 of a fleet beating once a minute is about what one second holds; 1 is
// the worst case). Every device is probed once either way, so the clean case is
// the floor of every start. bench/machine.ts adds the machine, who else used
// its CPU, and the reference workload before and after.
import { parseArgs } from 'node:util';
import { sql } from 'kysely';
import { createDb, type DbHandle } from '../../server/db/index.ts';
import { migrateToLatest } from '../../server/db/migrator.ts';
import { createDeviceState } from '../../server/telemetry/device-state.ts';
import { startRun, type Figure } from '../machine.ts';
import { scratchDb } from '../scratch-db.ts';

const { values: v } = parseArgs({
  options: {
    devices: { type: 'string', default: '100000' },
    history: { type: 'string', default: '20' },
    newer: { type: 'string', default: '0.02,1' },
    rounds: { type: 'string', default: '3' },
  },
});
const devices = Number(v.devices);
const history = Number(v.history);
const fractions = v.newer.split(',').map(Number);
const rounds = Number(v.rounds);
const T0 = Date.parse('2026-01-01T00:00:00Z');
const INTERVAL_S = 60;

async function open(): Promise<{ handle: DbHandle; kind: string; drop: () => Promise<void> }> {
  const url = process.env.DATABASE_URL;
  if (!url) {
    const handle = await createDb({ pgliteDir: 'memory://' });
    await migrateToLatest(handle.db);
    return { handle, kind: 'PGlite (memory)', drop: async () => {} };
  }
  const scratch = scratchDb(url, 'posfleet_bench_recovery');
  await scratch.fresh();
  const handle = await createDb({ databaseUrl: scratch.url, poolSize: 4 });
  await migrateToLatest(handle.db);
  return { handle, kind: 'PostgreSQL', drop: scratch.drop };
}

const vitalsSql = `jsonb_build_object('battery', jsonb_build_object('pct', 80), 'reader', jsonb_build_object('chipOk', (g.i % 7), 'chipErr', (g.i % 2)))`;

async function fill(h: DbHandle): Promise<void> {
  const { db } = h;
  const started = performance.now();
  await sql
    .raw(`INSERT INTO devices (id, serial, model, status, created_at, updated_at)
    SELECT 'dev_' || lpad(g.i::text, 8, '0'), 'SN' || g.i, 'T1', 'active', now(), now() FROM generate_series(1, ${devices}) AS g(i)`)
    .execute(db);
  // History in slices, so no single statement holds millions of rows in memory (PGlite).
  const slice = Math.max(1, Math.floor(500_000 / devices));
  for (let s = 0; s < history; s += slice) {
    const upto = Math.min(history, s + slice);
    await sql
      .raw(`INSERT INTO heartbeats (device_id, boot_id, seq, ts, received_at, drift_ms, firmware, vitals)
      SELECT 'dev_' || lpad(d.i::text, 8, '0'), 'boot1', g.i, t.at, t.at, 0, '1.0.0', ${vitalsSql}
      FROM generate_series(1, ${devices}) AS d(i) CROSS JOIN generate_series(${s}, ${upto - 1}) AS g(i)
      CROSS JOIN LATERAL (SELECT to_timestamp(${T0 / 1000} + g.i * ${INTERVAL_S} + (d.i % ${INTERVAL_S})) AS at) t`)
      .execute(db);
  }
  // The state as the flush left it: the newest heartbeat of each device, already folded.
  const last = history - 1;
  await sql
    .raw(`INSERT INTO device_state (device_id, boot_id, seq, ts, received_at, drift_ms, vitals, reader_ok, reader_err)
    SELECT 'dev_' || lpad(d.i::text, 8, '0'), 'boot1', ${last}, t.at, t.at, 0, '{}'::jsonb, 3, 1
    FROM generate_series(1, ${devices}) AS d(i)
    CROSS JOIN LATERAL (SELECT to_timestamp(${T0 / 1000} + ${last} * ${INTERVAL_S} + (d.i % ${INTERVAL_S})) AS at) t`)
    .execute(db);
  await sql`ANALYZE`.execute(db);
  console.log(
    `fleet: ${devices.toLocaleString('en')} devices × ${history} heartbeats built in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
}

/** One unwritten heartbeat on every device whose number falls in the fraction; returns how many. */
async function crash(h: DbHandle, fraction: number, round: number): Promise<number> {
  const every = Math.max(1, Math.round(1 / fraction));
  const seq = history + round;
  const res = await sql
    .raw(`INSERT INTO heartbeats (device_id, boot_id, seq, ts, received_at, drift_ms, firmware, vitals)
    SELECT 'dev_' || lpad(g.i::text, 8, '0'), 'boot1', ${seq}, t.at, t.at, 0, '1.0.0', ${vitalsSql}
    FROM generate_series(1, ${devices}) AS g(i)
    CROSS JOIN LATERAL (SELECT to_timestamp(${T0 / 1000} + ${seq} * ${INTERVAL_S} + (g.i % ${INTERVAL_S})) AS at) t
    WHERE g.i % ${every} = 0`)
    .execute(h.db);
  return Number(res.numAffectedRows ?? 0);
}

async function timed(h: DbHandle): Promise<{ ms: number; folded: number }> {
  const state = createDeviceState({ db: h.db });
  const started = performance.now();
  const folded = await state.recover();
  const ms = performance.now() - started;
  await state.close();
  return { ms, folded };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<Figure[]> {
  const figures: Figure[] = [];
  // On PostgreSQL the time is mostly its backend's; PGlite runs in this process.
  const against = process.env.DATABASE_URL ? 'pg' : 'node';
  const { handle, kind, drop } = await open();
  try {
    console.log(`recovery bench on ${kind}`);
    await fill(handle);
    let round = 0;
    const clean: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const { ms, folded } = await timed(handle);
      if (folded !== 0) throw new Error(`a clean start folded ${folded} devices`);
      clean.push(ms);
    }
    console.log(
      `clean start (nothing to fold): ${clean.map((ms) => ms.toFixed(0)).join(', ')} ms; median ${median(clean).toFixed(0)} ms = ${((median(clean) * 1000) / devices).toFixed(1)} µs per device`,
    );
    figures.push({ label: 'clean start', value: median(clean), unit: 'ms', kind: 'cost', against });
    for (const fraction of fractions) {
      const runs: number[] = [];
      let folded = 0;
      for (let r = 0; r < rounds; r++) {
        const written = await crash(handle, fraction, round++);
        const res = await timed(handle);
        if (res.folded !== written) throw new Error(`folded ${res.folded} devices, expected ${written}`);
        folded = res.folded;
        runs.push(res.ms);
      }
      console.log(
        `after a crash, ${folded.toLocaleString('en')} devices with an unwritten heartbeat (${fraction * 100} %): ${runs.map((ms) => ms.toFixed(0)).join(', ')} ms; median ${median(runs).toFixed(0)} ms`,
      );
      figures.push({ label: `${fraction * 100} % unwritten`, value: median(runs), unit: 'ms', kind: 'cost', against });
    }
  } finally {
    await handle.close();
    await drop();
  }
  return figures;
}

try {
  const run = await startRun('recovery', { databaseUrl: process.env.DATABASE_URL || undefined });
  await run.finish(await main());
} catch (err) {
  console.error(err);
  process.exit(1);
}
