// Ingest benchmark: posfleet on PostgreSQL against thousands of QoS 1
// terminals, and in the same run a baseline — Mosquitto on a spare loopback
// port with one MQTT.js subscriber writing the same rows with COPY. For each,
// the offered load is ramped (open loop, in separate load-generator processes)
// until the rows persisted fall behind; then it runs at twice that saturating
// load. Prints heartbeats persisted per second for both and their ratio,
// PUBACK latency p50/p99, CPU per heartbeat and memory of the serving
// processes, the figures at 2x, and heartbeats acknowledged but not stored.
// The peak is the best step of the run, the 2x step included.
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres node --import tsx bench/ingest/run.ts \
//     [--terminals 2000] [--loaders 2] [--inflight 4] [--start 1000] [--step 1.4] [--seconds 6] [--max-rate 40000] [--rounds 5]
// With several rounds (posfleet then baseline, each on a fresh database) the
// ratio printed is the median of the rounds' ratios. bench/machine.ts adds the
// machine, who else used its CPU, and the reference workload before and after.
import { parseArgs } from 'node:util';
import pg from 'pg';
import { startRun, type Figure } from '../machine.ts';
import { scratchDb } from '../scratch-db.ts';
import { createDb } from '../../server/db/index.ts';
import { migrateToLatest } from '../../server/db/migrator.ts';
import { cpuSeconds, machineBusySeconds, memMib, percentile, postgresCpu, postgresCpuSince } from '../proc.ts';
import { killAll, sleep, startBaseline, startLoader, startPosfleet, type Loader, type System } from './systems.ts';

const { values: a } = parseArgs({
  options: {
    terminals: { type: 'string', default: '2000' },
    loaders: { type: 'string', default: '2' },
    inflight: { type: 'string', default: '4' },
    start: { type: 'string', default: '1000' },
    step: { type: 'string', default: '1.4' },
    seconds: { type: 'string', default: '6' },
    'max-rate': { type: 'string', default: '40000' },
    only: { type: 'string' },
    rounds: { type: 'string', default: '5' },
  },
});
const N = Number(a.terminals),
  L = Number(a.loaders),
  ROUNDS = Math.max(1, Number(a.rounds)),
  STEP_MS = Number(a.seconds) * 1000,
  WARMUP_MS = 1_500;
const url = process.env.DATABASE_URL;
if (!url)
  throw new Error(
    'set DATABASE_URL to a PostgreSQL server (the bench creates and drops its own database, posfleet_bench_ingest_<pid>)',
  );
const scratch = scratchDb(url, 'posfleet_bench_ingest');
const DB = scratch.name;
const dbUrl = scratch.url;

// Every run is bounded: whatever hangs, the children die and the run fails.
const deadline = setTimeout(
  () => {
    process.stderr.write('bench timed out\n');
    killAll();
    process.exit(2);
  },
  15 * 60_000 * Math.max(1, Number(a.rounds)),
);
process.on('SIGINT', () => {
  killAll();
  process.exit(130);
});

interface Step {
  rate: number;
  persistedPerS: number;
  ackedPerS: number;
  skipped: number;
  p50: number;
  p99: number;
  cpuMsPerHb: number;
  pgMsPerHb: number;
  busyCores: number;
  rssMb: number;
}

async function step(
  sys: System,
  pool: pg.Pool,
  loaders: Loader[],
  rate: number,
  boot: string,
  acked: Record<string, number[]>[],
): Promise<Step> {
  const count = async () => Number((await pool.query(`select count(*)::int n from ${sys.table}`)).rows[0].n);
  const cpu = () => sys.pids.reduce((s, p) => s + cpuSeconds(p), 0);
  const running = Promise.all(loaders.map((l) => l.phase(rate / loaders.length, STEP_MS, boot)));
  await sleep(WARMUP_MS);
  const [rows0, cpu0, pg0, busy0, t0] = [await count(), cpu(), postgresCpu(DB), machineBusySeconds(), Date.now()];
  await sleep(STEP_MS - WARMUP_MS);
  const [rows1, cpu1, pg1, busy1, t1] = [await count(), cpu(), postgresCpu(DB), machineBusySeconds(), Date.now()];
  const rss = sys.pids.reduce((s, p) => s + memMib(p, 'VmRSS'), 0);
  const results = await running;
  const persisted = rows1 - rows0;
  const lat = results.flatMap((r) => r.latenciesMs);
  for (const r of results) acked.push(r.ackedSeqs);
  const sum = (f: (r: (typeof results)[number]) => number) => results.reduce((s, r) => s + f(r), 0);
  return {
    rate,
    persistedPerS: persisted / ((t1 - t0) / 1000),
    ackedPerS: sum((r) => r.acked) / (STEP_MS / 1000),
    skipped: sum((r) => r.skipped),
    p50: percentile(lat, 50),
    p99: percentile(lat, 99),
    cpuMsPerHb: ((cpu1 - cpu0) * 1000) / Math.max(1, persisted),
    pgMsPerHb: (postgresCpuSince(pg0, pg1) * 1000) / Math.max(1, persisted),
    busyCores: (busy1 - busy0) / ((t1 - t0) / 1000),
    rssMb: rss,
  };
}

const f = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '-');
const show = (name: string, s: Step) =>
  `${name.padEnd(16)} offered ${f(s.rate).padStart(6)}/s  persisted ${f(s.persistedPerS).padStart(6)}/s  PUBACK p50 ${f(s.p50, 1).padStart(7)} ms  p99 ${f(s.p99, 1).padStart(7)} ms  CPU ${f(s.cpuMsPerHb, 3)} ms/hb  PG ${f(s.pgMsPerHb, 3)} ms/hb  machine ${f(s.busyCores, 2)} cores  RSS ${f(s.rssMb)} MB${s.skipped ? `  (skipped ${s.skipped}: terminals at ${a.inflight} in flight)` : ''}`;

/** Ramps until persisted falls below 90 % of offered, then runs at twice that load. */
async function ramp(sys: System, pool: pg.Pool) {
  const per = Math.ceil(sys.terminals.length / L);
  const loaders = await Promise.all(
    Array.from({ length: L }, (_, i) =>
      startLoader(sys.mqttUrl, sys.terminals.slice(i * per, (i + 1) * per), Number(a.inflight)),
    ),
  );
  // One boot for the whole run, as a fleet that is not rebooting: the rows of
  // the run are those of this boot id, and the sequence numbers go on across steps.
  const boot = `run-${Date.now().toString(36)}`;
  const acked: Record<string, number[]>[] = [];
  const steps: Step[] = [];
  let saturating: number | undefined;
  for (
    let rate = Number(a.start), _k = 0;
    rate <= Number(a['max-rate']);
    rate = Math.round(rate * Number(a.step)), _k++
  ) {
    const s = await step(sys, pool, loaders, rate, boot, acked);
    steps.push(s);
    console.log(show(`${sys.name} ramp`, s));
    if (s.persistedPerS < 0.9 * rate) {
      saturating = rate;
      break;
    }
  }
  saturating ??= steps[steps.length - 1].rate;
  const over = await step(sys, pool, loaders, 2 * saturating, boot, acked);
  console.log(show(`${sys.name} 2x`, over));
  // The peak is the most persisted in any step, the 2x one included: a system
  // that batches may persist more when offered more than the step that
  // stopped its ramp.
  const peak = [...steps, over].reduce((m, s) => (s.persistedPerS > m.persistedPerS ? s : m));
  await Promise.all(loaders.map((l) => l.stop()));
  await sys.stop();
  let lost = 0,
    total = 0;
  const rows = await pool.query<{ device_id: string; seq: number }>(
    `select device_id, seq::int from ${sys.table} where boot_id = $1`,
    [boot],
  );
  const stored = new Set(rows.rows.map((r) => `${r.device_id}/${r.seq}`));
  for (const seqs of acked)
    for (const [id, list] of Object.entries(seqs))
      for (const s of list) {
        total++;
        if (!stored.has(`${id}/${s}`)) lost++;
      }
  return { peak, over, saturating, lost, total };
}

type Result = Awaited<ReturnType<typeof ramp>>;

/** One round: a fresh database, posfleet's ramp, then the baseline's. */
async function round(): Promise<{ pf?: Result; mq?: Result }> {
  await scratch.fresh();
  const h = await createDb({ databaseUrl: dbUrl, poolSize: 1 });
  await migrateToLatest(h.db);
  await h.close();
  const pool = new pg.Pool({ connectionString: dbUrl, max: 2 });
  try {
    const pf = a.only === 'baseline' ? undefined : await ramp(await startPosfleet(dbUrl, N), pool);
    const mq = a.only === 'posfleet' ? undefined : await ramp(await startBaseline(pool, dbUrl, N), pool);
    return { pf, mq };
  } finally {
    await pool.end();
  }
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor((xs.length - 1) / 2)];
const run = await startRun('ingest', { databaseUrl: url });
const figures: Figure[] = [];
try {
  // A shared machine's speed drifts over minutes; rounds that alternate the two
  // systems, and the median of their ratios, keep one slow spell from deciding.
  const rounds: { pf?: Result; mq?: Result }[] = [];
  for (let r = 0; r < ROUNDS; r++) rounds.push(await round());
  console.log(
    `\ningest bench: ${N} terminals at QoS 1 in ${L} load processes (at most ${a.inflight} in flight each), ${STEP_MS / 1000} s steps ramping x${a.step} from ${a.start}/s, ${ROUNDS} round(s)`,
  );
  rounds.forEach(({ pf, mq }, i) => {
    for (const [name, r] of [
      ['posfleet', pf],
      ['baseline', mq],
    ] as const) {
      if (!r) continue;
      console.log(show(`${name} peak`, r.peak) + (ROUNDS > 1 ? `  [round ${i + 1}]` : ''));
      console.log(show(`${name} 2x sat.`, r.over));
      console.log(
        `${''.padEnd(16)} saturates at ${r.saturating}/s offered; at 2x keeps ${f((100 * r.over.persistedPerS) / r.peak.persistedPerS)} % of peak; PUBACKed but not stored: ${r.lost} of ${r.total}`,
      );
    }
  });
  const both = rounds.filter((r): r is Required<typeof r> => Boolean(r.pf && r.mq));
  if (both.length > 0) {
    const peak = both.map((r) => r.pf.peak.persistedPerS / r.mq.peak.persistedPerS);
    const over = both.map((r) => r.pf.over.persistedPerS / r.mq.over.persistedPerS);
    console.log(
      `ratio posfleet/baseline (peak persisted/s): ${f(median(peak), 2)}; at 2x: ${f(median(over), 2)}${both.length > 1 ? ` (median of rounds: ${peak.map((x) => f(x, 2)).join(', ')}; at 2x ${over.map((x) => f(x, 2)).join(', ')})` : ''}`,
    );
  }
  // The medians over rounds, set against the reference workload by bench/machine.ts.
  for (const [name, pick] of [
    ['posfleet', (r: (typeof rounds)[number]) => r.pf],
    ['baseline', (r: (typeof rounds)[number]) => r.mq],
  ] as const) {
    const peaks = rounds.map(pick).flatMap((r) => (r ? [r.peak] : []));
    if (peaks.length === 0) continue;
    const m = (g: (s: Step) => number) => median(peaks.map(g));
    figures.push(
      { label: `${name} peak`, value: m((s) => s.persistedPerS), unit: 'heartbeats/s', kind: 'rate', against: 'node' },
      { label: `${name} CPU`, value: m((s) => s.cpuMsPerHb), unit: 'ms/hb', kind: 'cost', against: 'node', digits: 3 },
      {
        label: `${name} PostgreSQL`,
        value: m((s) => s.pgMsPerHb),
        unit: 'ms/hb',
        kind: 'cost',
        against: 'pg',
        digits: 3,
      },
    );
  }
} finally {
  killAll();
  await scratch.drop().catch(() => undefined);
  clearTimeout(deadline);
}
await run.finish(figures);
