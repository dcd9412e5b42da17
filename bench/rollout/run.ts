// Rollout benchmark: a one-wave rollout of a signed 1 MiB firmware to N
// simulated terminals (default 5,000) with no window, no rate limit and no
// soak. posfleet runs as its own process on PostgreSQL (a fresh database that is
// dropped at the end), the terminals in separate agent-sim processes, so the
// server's CPU is measured alone. Prints terminals confirmed per minute (whole
// rollout and peak 10 s), wall time, server CPU (total and per terminal), server
// peak RSS, PostgreSQL and simulator CPU, and (bench/machine.ts) the machine, who
// else used its CPU, and the reference workload measured before and after.
// Goal: >= 10,000 terminals per minute.
// The terminals are spread over simulator processes of 2,500 each: one process
// for 5,000 saturates its own event loop while downloading and hashing, and
// then it, not the server, sets the pace.
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npx tsx bench/rollout/run.ts \
//     [--terminals 5000] [--per-process 2500] [--install-ms 500] [--boot-ms 1000] [--limit 10m]
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { parseDuration } from '../../agent-sim/clock.ts';
import { generateKeyPair } from '../../firmware/keys.ts';
import { buildSampleRelease } from '../../firmware/samples.ts';
import { cpuUseLine, startRun, watchCpu, type Figure } from '../machine.ts';
import { cpuSeconds, cpuSplit, memMib, syscallCounts } from '../proc.ts';
import { histogram, quantiles, scrape, total, value } from './scrape.ts';
import type { SimJob, SimReport } from './sim.ts';
import { SERVER_NODE_FLAGS } from '../../bin/node-flags.js';
import { scratchDb } from '../scratch-db.ts';
import pg from 'pg';

const { values: v } = parseArgs({
  options: {
    terminals: { type: 'string', default: '5000' },
    'per-process': { type: 'string', default: '2500' },
    models: { type: 'string', default: 'T1,T2,T3' },
    'size-mib': { type: 'string', default: '1' },
    'install-ms': { type: 'string', default: '500' },
    'boot-ms': { type: 'string', default: '1000' },
    heartbeat: { type: 'string', default: '300s' },
    ramp: { type: 'string', default: '1000' },
    limit: { type: 'string', default: '10m' },
    'max-run': { type: 'string', default: '25m' },
    'keep-log': { type: 'boolean', default: false },
    /** Directory for a V8 CPU profile of the server (node --cpu-prof), to see where its time goes. */
    'server-prof': { type: 'string' },
    /** Directory for V8 CPU profiles of the simulator processes. */
    'sim-prof': { type: 'string' },
    /**
     * Another posfleet checkout whose server to run (its server/ and bin/node-flags.js), with
     * this checkout's bench and simulators: compares two commits under the same driver.
     */
    'server-root': { type: 'string' },
  },
});
const N = Number(v.terminals);
const perProcess = Math.min(18_000, Number(v['per-process']));
const models = v
  .models!.split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const sizeBytes = Math.round(Number(v['size-mib']) * 1024 * 1024);
const heartbeatS = Math.max(5, Math.round(parseDuration(v.heartbeat!) / 1000));
const limitMs = parseDuration(v.limit!);
const GOAL_PER_MIN = 10_000;
const FROM = '1.0.0',
  TARGET = '2.0.0';
const TOKEN = 'bench-rollout-admin-token-0123456789';
const adminUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const scratch = scratchDb(adminUrl, 'posfleet_bench_rollout');
const DB_NAME = scratch.name;
const dbUrl = scratch.url;
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const serverRoot = v['server-root'] ? resolve(v['server-root']) : repoRoot;
const serverFlags: string[] = v['server-root']
  ? (await import(pathToFileURL(join(serverRoot, 'bin/node-flags.js')).href).catch(() => ({ SERVER_NODE_FLAGS: [] })))
      .SERVER_NODE_FLAGS
  : SERVER_NODE_FLAGS;
const work = mkdtempSync(join(tmpdir(), 'posfleet-bench-rollout-'));
const serverLog = join(work, 'server.log');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const f = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '-');
const fmt = (m: Record<string, number>) =>
  Object.entries(m)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
const elapsed = (t0: number) => `${f((Date.now() - t0) / 1000, 1)} s`;
const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

// ---- children and clean-up -------------------------------------------------

let server: ChildProcess | null = null;
const sims: ChildProcess[] = [];
let dbCreated = false;
let cleaning: Promise<void> | null = null;

const exited = (c: ChildProcess) => c.exitCode !== null || c.signalCode !== null;
function waitExit(c: ChildProcess, ms: number): Promise<void> {
  if (exited(c)) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      if (!exited(c)) c.kill('SIGKILL');
      resolve();
    }, ms);
    c.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await Promise.all(
      sims.map((c) => {
        if (exited(c)) return Promise.resolve();
        if (c.connected) c.send({ type: 'stop' });
        else c.kill('SIGTERM');
        return waitExit(c, 15_000);
      }),
    );
    if (server && !exited(server)) {
      server.kill('SIGTERM');
      await waitExit(server, 10_000);
    }
    if (dbCreated) {
      await scratch.drop().then(
        () => {
          dbCreated = false;
        },
        (err: Error) => console.error(`bench/rollout: could not drop database ${DB_NAME}: ${err.message}`),
      );
    }
    if (!v['keep-log']) rmSync(work, { recursive: true, force: true });
    else console.log(`server log kept in ${serverLog}`);
  })();
  return cleaning;
}

// Last resort if the process goes without clean-up (an uncaught error): no child outlives us.
process.on('exit', () => {
  for (const c of [...sims, server]) if (c && !exited(c)) c.kill('SIGKILL');
});
let signals = 0;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (++signals > 1) process.exit(130);
    console.error(`\nbench/rollout: ${sig}, cleaning up…`);
    void cleanup().finally(() => process.exit(130));
  });
}
// The whole run is bounded, whatever hangs.
setTimeout(() => {
  console.error(`bench/rollout: over the --max-run bound (${v['max-run']}), stopping`);
  void cleanup().finally(() => process.exit(3));
}, parseDuration(v['max-run']!)).unref();

// ---- set-up -------------------------------------------------------------------

async function freshDatabase(): Promise<void> {
  await scratch.fresh();
  dbCreated = true;
}

async function startServer(): Promise<{ base: string; pid: number }> {
  const [port, mqttPort] = [await freePort(), await freePort()];
  const log = openSync(serverLog, 'a');
  const prof = v['server-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${v['server-prof']}`] : [];
  server = spawn(
    process.execPath,
    [...serverFlags, ...prof, '--import', 'tsx', join(serverRoot, 'server/cli.ts'), 'serve'],
    {
      cwd: serverRoot,
      stdio: ['ignore', log, log],
      env: {
        ...process.env,
        DATABASE_URL: dbUrl,
        PORT: String(port),
        MQTT_PORT: String(mqttPort),
        HOST: '127.0.0.1',
        PUBLIC_URL: `http://127.0.0.1:${port}`,
        DATA_DIR: join(work, 'data'),
        POSFLEET_ADMIN_TOKEN: TOKEN,
        LOG_LEVEL: 'warn',
        HEARTBEAT_INTERVAL_S: String(heartbeatS),
      },
    },
  );
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600; i++) {
    if (exited(server)) throw new Error(`posfleet exited with ${server.exitCode}:\n${tail(serverLog)}`);
    if (
      await fetch(`${base}/readyz`).then(
        (r) => r.ok,
        () => false,
      )
    )
      return { base, pid: server.pid! };
    await sleep(100);
  }
  throw new Error('posfleet was not ready within 60 s');
}

function tail(path: string, lines = 20): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

async function api<T = Record<string, unknown>>(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  expect = [200, 201],
): Promise<T> {
  const res = await fetch(`${base}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const out = await res.json().catch(() => null);
  if (!expect.includes(res.status)) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(out)}`);
  return out as T;
}

/** Transactions and rows of the bench database so far (PostgreSQL's statistics, flushed within a second or so). */
async function dbWork(): Promise<{ xacts: number; written: number; read: number }> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    const r = await c.query(
      `select xact_commit + xact_rollback as xacts, tup_inserted + tup_updated + tup_deleted as written,
        tup_fetched as read from pg_stat_database where datname = $1`,
      [DB_NAME],
    );
    const row = r.rows[0] ?? {};
    return { xacts: Number(row.xacts ?? NaN), written: Number(row.written ?? NaN), read: Number(row.read ?? NaN) };
  } finally {
    await c.end().catch(() => undefined);
  }
}

async function uploadRelease(base: string): Promise<{ artifactId: string; publicKeyPem: string }> {
  const keys = await generateKeyPair(join(work, 'keys'));
  const publicKeyPem = await readFile(keys.publicKeyPath, 'utf8');
  await api(base, 'POST', '/signing-keys', { name: 'bench-rollout', publicKey: publicKeyPem });
  const release = await buildSampleRelease({
    dir: join(work, 'release'),
    component: 'firmware',
    version: TARGET,
    models,
    sizeBytes,
    key: keys.privateKeyPath,
  });
  const res = await fetch(`${base}/api/v1/artifacts`, {
    method: 'POST',
    body: await readFile(release.out),
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/octet-stream' },
  });
  const body = (await res.json()) as { id: string };
  if (res.status !== 201) throw new Error(`artifact upload: ${res.status} ${JSON.stringify(body)}`);
  return { artifactId: body.id, publicKeyPem };
}

// ---- simulators ---------------------------------------------------------------------

const reports: (SimReport | undefined)[] = [];
function simTotals() {
  const out = {
    notOnline: {} as Record<string, number>,
    online: 0,
    upgraded: 0,
    heartbeats: 0,
    byState: {} as Record<string, number>,
    updates: {} as Record<string, number>,
    otaErrors: {} as Record<string, number>,
    errors: {} as Record<string, number>,
  };
  for (const r of reports) {
    if (!r) continue;
    out.online += r.online;
    out.upgraded += r.upgraded;
    out.heartbeats += r.heartbeats;
    for (const [key, m] of [
      ['notOnline', r.notOnline],
      ['byState', r.byState],
      ['updates', r.updates],
      ['otaErrors', r.otaErrors],
      ['errors', r.errors],
    ] as const) {
      for (const [k, n] of Object.entries(m)) out[key][k] = (out[key][k] ?? 0) + n;
    }
  }
  return out;
}

function startSims(base: string, enrollToken: string, publicKey: string): void {
  for (let from = 0, i = 0; from < N; from += perProcess, i++) {
    const job: SimJob = {
      server: base,
      enrollToken,
      terminals: N,
      range: { from, to: Math.min(N, from + perProcess) },
      models,
      heartbeatS,
      publicKey,
      firmware: FROM,
      target: TARGET,
      rampPerSecond: Number(v.ramp),
      installMs: Number(v['install-ms']),
      bootMs: Number(v['boot-ms']),
      seed: 1,
    };
    const child = fork(fileURLToPath(new URL('./sim.ts', import.meta.url)), [], {
      execArgv: ['--import', 'tsx', ...(v['sim-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${v['sim-prof']}`] : [])],
      env: { ...process.env, BENCH_ROLLOUT_SIM: JSON.stringify(job) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const index = i;
    child.on('message', (m: SimReport) => {
      if (m?.type === 'stats') reports[index] = m;
    });
    child.once('exit', (code) => {
      if (!cleaning) console.error(`bench/rollout: simulator ${index} exited with ${code}`);
    });
    sims.push(child);
  }
}

// ---- the run ------------------------------------------------------------------------

interface Sample {
  t: number;
  counts: Record<string, number>;
  state: string;
  serverCpu: number;
  agentUpgraded: number;
}

function peakRate(samples: Sample[], key: (s: Sample) => number, spanMs = 10_000): number {
  let best = 0;
  for (let i = 0, j = 0; i < samples.length; i++) {
    while (j < i && samples[i].t - samples[j + 1].t >= spanMs) j++;
    const dt = samples[i].t - samples[j].t;
    if (dt >= spanMs) best = Math.max(best, ((key(samples[i]) - key(samples[j])) * 60_000) / dt);
  }
  return best;
}

const firstAt = (samples: Sample[], t0: number, pred: (s: Sample) => boolean) => {
  const s = samples.find(pred);
  return s ? (s.t - t0) / 1000 : NaN;
};

/** Runs the rollout and prints its figures; returns the headline ones for bench/machine.ts. */
async function main(): Promise<Figure[]> {
  const tStart = Date.now();
  console.log(
    `bench/rollout: ${N} terminals (${models.join(',')}) in ${Math.ceil(N / perProcess)} simulator process(es), ${sizeBytes / 2 ** 20} MiB firmware ${FROM} → ${TARGET}, install ${v['install-ms']} ms, boot ${v['boot-ms']} ms, heartbeat ${heartbeatS} s`,
  );
  await freshDatabase();
  const { base, pid } = await startServer();
  console.log(`posfleet pid ${pid} on ${base}, database ${DB_NAME} (${elapsed(tStart)})`);

  const { artifactId, publicKeyPem } = await uploadRelease(base);
  const merchant = await api<{ id: string }>(base, 'POST', '/merchants', {
    name: 'Bench Merchant',
    timezone: 'Europe/Berlin',
  });
  const tok = await api<{ token: string }>(base, 'POST', '/enrollment-tokens', {
    merchantId: merchant.id,
    maxUses: Math.max(N, 1),
    ttlMinutes: 180,
    note: 'bench/rollout',
  });

  const tFleet = Date.now();
  startSims(base, tok.token, publicKeyPem);
  for (let last = 0; ; ) {
    await sleep(1_000);
    const s = simTotals();
    if (s.online >= N) break;
    if (Date.now() - tFleet > 5 * 60_000)
      throw new Error(`only ${s.online}/${N} terminals online after 5 min (errors ${JSON.stringify(s.errors)})`);
    if (Date.now() - last > 5_000) {
      last = Date.now();
      console.log(`  fleet: ${s.online}/${N} online (${elapsed(tFleet)})`);
    }
  }
  console.log(`all ${N} terminals online after ${elapsed(tFleet)}`);

  const cohort = await api<{ id: string }>(base, 'POST', '/cohorts', { name: 'bench-all', filter: {} });
  const preview = await api<{ total: number }>(base, 'GET', `/cohorts/${cohort.id}/devices?limit=1`);
  if (preview.total !== N) throw new Error(`cohort holds ${preview.total} devices, expected ${N}`);

  // Idle cost: heartbeats and the engine's empty ticks, so the rollout's own CPU can be told apart.
  await sleep(5_000);
  const idle0 = cpuSeconds(pid);
  await sleep(10_000);
  const idlePerS = (cpuSeconds(pid) - idle0) / 10;

  const simPids = sims.map((c) => c.pid!);
  const cpu0 = { server: cpuSplit(pid), sims: simPids.reduce((a, p) => a + cpuSeconds(p), 0) };
  const work0 = { sys: syscallCounts(pid), db: await dbWork() };
  // Who uses the CPU during the rollout: this bench's processes, the backends of its database, everyone else.
  const watch = watchCpu();
  const before = await scrape(base);
  const t0 = Date.now();
  const rollout = await api<{ id: string; total: number; state: string }>(base, 'POST', '/rollouts', {
    name: 'bench-rollout',
    artifactId,
    cohortId: cohort.id,
    waves: [{ percent: 100 }],
    soakMinutes: 0,
    window: null,
    ratePerMinute: 1_000_000,
    maxInFlight: 1_000_000,
    timeoutMinutes: 60,
    minFinished: 10,
  });
  const tCreated = Date.now();
  console.log(`rollout ${rollout.id} created in ${elapsed(t0)}: ${rollout.total} devices, ${rollout.state}`);
  if (rollout.total !== N) console.warn(`  note: ${N - rollout.total} terminals were not eligible`);

  const samples: Sample[] = [];
  let final: { state: string; counts: Record<string, number>; finishedAt: string | null } | null = null;
  let lastPrint = 0;
  let peakRss = 0;
  while (Date.now() - t0 < limitMs) {
    await sleep(1_000);
    const r = await api<{ state: string; counts: Record<string, number>; finishedAt: string | null }>(
      base,
      'GET',
      `/rollouts/${rollout.id}`,
    ).catch((err: Error) => {
      console.warn(`  poll failed: ${err.message}`);
      return null;
    });
    if (!r) continue;
    peakRss = Math.max(peakRss, memMib(pid, 'VmRSS'));
    const sim = simTotals();
    samples.push({
      t: Date.now(),
      counts: r.counts,
      state: r.state,
      serverCpu: cpuSeconds(pid),
      agentUpgraded: sim.upgraded,
    });
    if (Date.now() - lastPrint >= 5_000 || r.state !== 'running') {
      lastPrint = Date.now();
      const c = Object.entries(r.counts)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ');
      console.log(
        `  ${elapsed(t0).padStart(7)}  ${r.state}: ${c} | agents on ${TARGET}: ${sim.upgraded}, ${fmt(sim.byState)} | server CPU ${f(cpuSeconds(pid) - cpu0.server.user - cpu0.server.system, 1)} s`,
      );
      const off = Object.entries(sim.notOnline)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 3);
      if (off.length) console.log(`           not online: ${off.map(([k, n]) => `${n}× ${k}`).join(' | ')}`);
    }
    if (r.state !== 'running') {
      final = r;
      break;
    }
  }
  const tEnd = Date.now();
  const after = await scrape(base);
  const lag = (q: string) => value(after, `posfleet_nodejs_eventloop_lag_${q}_seconds`) * 1000;
  const compare = (name: string) => quantiles(histogram(before, name), histogram(after, name));
  const connects = compare('posfleet_mqtt_connect_seconds');
  const auths = compare('posfleet_mqtt_auth_seconds');
  const use = watch.stop();
  const cpu1 = { server: cpuSplit(pid), sims: simPids.reduce((a, p) => a + cpuSeconds(p), 0) };
  const work1 = { sys: syscallCounts(pid), db: await dbWork() };
  const hwm = memMib(pid, 'VmHWM');
  const sim = simTotals();
  const last = samples[samples.length - 1];
  const counts = final?.counts ?? last?.counts ?? {};
  const succeeded = counts.succeeded ?? 0;
  const wallS = (tEnd - t0) / 1000;
  const serverUser = cpu1.server.user - cpu0.server.user;
  const serverSystem = cpu1.server.system - cpu0.server.system;
  const serverCpu = serverUser + serverSystem;
  const per = (n: number, d = 1) => f(n / Math.max(1, succeeded), d);
  const moved = (name: string) => total(after, name) - total(before, name);
  const simCpu = cpu1.sims - cpu0.sims;
  const pgCpu = use.backends * use.wallS;
  const perMin = (succeeded * 60) / wallS;
  const dispatched = (s: Sample) =>
    N - (s.counts.pending ?? 0) - (s.counts.queued ?? 0) - (s.counts.waiting_window ?? 0);
  const tAllSent = firstAt(samples, t0, (s) => dispatched(s) >= rollout.total);
  const tFirstOk = firstAt(samples, t0, (s) => (s.counts.succeeded ?? 0) > 0);
  const tAgentsDone = firstAt(samples, t0, (s) => s.agentUpgraded >= rollout.total);
  const peak10 = peakRate(samples, (s) => s.counts.succeeded ?? 0);
  const peakCores = (() => {
    let best = 0;
    for (let i = 1; i < samples.length; i++)
      best = Math.max(
        best,
        (samples[i].serverCpu - samples[i - 1].serverCpu) / ((samples[i].t - samples[i - 1].t) / 1000),
      );
    return best;
  })();

  console.log(
    [
      '',
      `bench/rollout: one-wave rollout of a ${sizeBytes / 2 ** 20} MiB signed firmware to ${rollout.total} terminals (no window, no rate limit, soak 0)`,
      `  result             ${final ? `rollout ${final.state}` : `NOT finished within ${v.limit}`}; ${Object.entries(
        counts,
      )
        .map(([k, n]) => `${k} ${n}`)
        .join(', ')}`,
      `  wall time          ${f(wallS, 1)} s from POST /rollouts (created in ${f((tCreated - t0) / 1000, 2)} s) to ${final ? 'completed' : 'the limit'}`,
      `  milestones         first confirmed ${f(tFirstOk, 0)} s, all dispatched ${f(tAllSent, 0)} s, all terminals on ${TARGET} (agent side) ${f(tAgentsDone, 0)} s, all confirmed ${final ? f(wallS, 0) : '-'} s`,
      `  confirmed/min      ${f(perMin)} terminals/min over the whole rollout; peak ${f(peak10)} /min over 10 s   (goal ≥ ${GOAL_PER_MIN}/min: ${perMin >= GOAL_PER_MIN && succeeded === rollout.total ? 'met' : 'NOT met'})`,
      `  server CPU         ${f(serverCpu, 1)} s: user ${f(serverUser, 1)} s, system ${f(serverSystem, 1)} s (${f(serverCpu / wallS, 2)} cores avg, ${f(peakCores, 2)} peak 1 s; idle before ${f(idlePerS, 3)} cores)`,
      `  CPU per terminal   ${f((serverCpu * 1000) / Math.max(1, succeeded), 2)} ms server, ${f((pgCpu * 1000) / Math.max(1, succeeded), 2)} ms PostgreSQL`,
      `  work per terminal  ${per(moved('posfleet_mqtt_messages_in_total'))} MQTT messages in, ${per(moved('posfleet_http_request_duration_seconds_count'))} HTTP requests; server ${per(work1.sys.readWrite - work0.sys.readWrite)} read/write system calls, ${per(work1.sys.switches - work0.sys.switches)} context switches; PostgreSQL ${per(work1.db.xacts - work0.db.xacts)} transactions, ${per(work1.db.written - work0.db.written)} rows written, ${per(work1.db.read - work0.db.read)} rows read`,
      `  server RSS         ${f(hwm)} MiB peak (VmHWM), ${f(peakRss)} MiB highest sampled during the rollout`,
      `  MQTT connects      CONNECT to session ready ${connects}; credential check ${auths}`,
      `  server event loop  delay p50 ${f(lag('p50'), 1)} ms, p99 ${f(lag('p99'), 1)} ms, max ${f(lag('max'), 0)} ms (during the rollout)`,
      `  PostgreSQL CPU     ${f(pgCpu, 1)} s (${f(pgCpu / wallS, 2)} cores avg; backends of ${DB_NAME}, sampled every second)`,
      `  simulator CPU      ${f(simCpu, 1)} s (${f(simCpu / wallS, 2)} cores avg, ${sims.length} process(es))`,
      `  agents             ${fmt(sim.byState)}; updates by last state ${JSON.stringify(sim.updates)}; OTA errors ${JSON.stringify(sim.otaErrors)}; errors ${JSON.stringify(sim.errors)}`,
      ...(Object.keys(sim.notOnline).length
        ? [
            `  agents not online ${Object.entries(sim.notOnline)
              .sort((a, b) => b[1] - a[1])
              .slice(0, 8)
              .map(([k, n]) => `${n}× ${k}`)
              .join(' | ')}`,
          ]
        : []),
      `  CPU use            ${cpuUseLine(use)}`,
    ].join('\n'),
  );
  const warnings = tail(serverLog, 10_000)
    .split('\n')
    .filter((l) => /"level":(40|50|60)/.test(l));
  if (warnings.length) {
    // Grouped by message and error text, so a deadlock or a failed tick shows with its count.
    const groups = new Map<string, number>();
    for (const line of warnings) {
      const o = (() => {
        try {
          return JSON.parse(line) as { msg?: string; err?: { message?: string } };
        } catch {
          return { msg: line.slice(0, 120) };
        }
      })();
      const key = `${o.msg ?? ''}${o.err?.message ? `: ${o.err.message}` : ''}`.slice(0, 200);
      groups.set(key, (groups.get(key) ?? 0) + 1);
    }
    console.log(
      `  server warnings    ${warnings.length} warn/error lines: ${[...groups]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 6)
        .map(([k, n]) => `${n}× ${k}`)
        .join(' | ')}`,
    );
  }
  if (!final || succeeded !== rollout.total) process.exitCode = 1;
  const perTerminal = (s: number) => (s * 1000) / Math.max(1, succeeded);
  return [
    { label: 'confirmed', value: perMin, unit: 'terminals/min', kind: 'rate', against: 'node' },
    {
      label: 'server CPU',
      value: perTerminal(serverCpu),
      unit: 'ms per terminal',
      kind: 'cost',
      against: 'node',
      digits: 2,
    },
    {
      label: 'simulator CPU',
      value: perTerminal(simCpu),
      unit: 'ms per terminal',
      kind: 'cost',
      against: 'node',
      digits: 2,
    },
    {
      label: 'PostgreSQL CPU',
      value: perTerminal(pgCpu),
      unit: 'ms per terminal',
      kind: 'cost',
      against: 'pg',
      digits: 2,
    },
  ];
}

let figures: Figure[] | undefined;
try {
  const run = await startRun('rollout', { databaseUrl: adminUrl, serverRoot });
  try {
    figures = await main();
  } catch (err) {
    console.error(`bench/rollout: ${(err as Error).stack ?? err}`);
    const t = tail(serverLog);
    if (t) console.error(`server log (last lines):\n${t}`);
    process.exitCode = 1;
  } finally {
    await cleanup();
  }
  if (figures) await run.finish(figures);
} catch (err) {
  console.error(`bench/rollout: ${(err as Error).stack ?? err}`);
  await cleanup();
  process.exitCode = 1;
}
process.exit(process.exitCode ?? 0);
