// Ingest benchmark (issue 4): posfleet on PostgreSQL against thousands of QoS 1
// terminals, and in the same run a baseline — Mosquitto on a spare loopback
// port with one MQTT.js subscriber writing the same rows with COPY. Prints
// heartbeats persisted per second for both and their ratio, PUBACK p50/p99,
// server CPU per heartbeat and memory, at the chosen load and at twice it.
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npx tsx bench/ingest/run.ts [--terminals 2000] [--window 1] [--seconds 10]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createDb } from '../../server/db/index.ts';
import { migrateToLatest } from '../../server/db/migrator.ts';
import { connectAll, percentile, runLoad, type Terminal } from './load.ts';
import { cpuSeconds, rssMb } from './proc.ts';

const { values: args } = parseArgs({ options: { terminals: { type: 'string', default: '2000' }, window: { type: 'string', default: '1' }, seconds: { type: 'string', default: '10' } } });
const N = Number(args.terminals), W = Number(args.window), D = Number(args.seconds) * 1000;
const url = process.env.DATABASE_URL;
if (!url) throw new Error('set DATABASE_URL to a PostgreSQL server (the bench creates database posfleet_bench_ingest)');
const dbUrl = Object.assign(new URL(url), { pathname: '/posfleet_bench_ingest' }).toString();
const TOKEN = 'bench-admin-token-0123456789';

const freePort = () => new Promise<number>((r) => { const s = createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => r(p)); }); });
const until = async (f: () => Promise<boolean>) => { for (let i = 0; i < 600 && !(await f().catch(() => false)); i++) await new Promise((r) => setTimeout(r, 100)); };

async function freshDb(): Promise<pg.Pool> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query('drop database if exists posfleet_bench_ingest with (force)');
  await admin.query('create database posfleet_bench_ingest');
  await admin.end();
  const h = await createDb({ databaseUrl: dbUrl, poolSize: 1 });
  await migrateToLatest(h.db);
  await h.close();
  return new pg.Pool({ connectionString: dbUrl, max: 2 });
}

const count = async (pool: pg.Pool, table: string) => Number((await pool.query(`select count(*)::int n from ${table}`)).rows[0].n);

interface Phase { persistedPerS: number; p50: number; p99: number; cpuMsPerHb: number; rssMb: number; acked: number }

/** One load level: rows persisted during the window, PUBACK latency, CPU of the server processes. */
async function measure(pool: pg.Pool, table: string, pids: number[], clients: Awaited<ReturnType<typeof connectAll>>, ids: string[], window: number, seqs: number[]): Promise<Phase> {
  const rows0 = await count(pool, table);
  const cpu0 = pids.reduce((s, p) => s + cpuSeconds(p), 0);
  const t0 = Date.now();
  const load = await runLoad(clients, ids, window, D, seqs);
  const rows1 = await count(pool, table);
  const secs = (Date.now() - t0) / 1000;
  const cpu = pids.reduce((s, p) => s + cpuSeconds(p), 0) - cpu0;
  const persisted = rows1 - rows0;
  return {
    persistedPerS: persisted / secs, p50: percentile(load.latenciesMs, 50), p99: percentile(load.latenciesMs, 99),
    cpuMsPerHb: (cpu * 1000) / Math.max(1, persisted), rssMb: pids.reduce((s, p) => s + rssMb(p), 0), acked: load.acked,
  };
}

async function posfleet(pool: pg.Pool) {
  const [port, mqttPort] = [await freePort(), await freePort()];
  const server = spawn('npx', ['tsx', 'server/cli.ts', 'serve'], {
    stdio: ['ignore', 'ignore', 'inherit'], detached: false,
    env: { ...process.env, DATABASE_URL: dbUrl, PORT: String(port), MQTT_PORT: String(mqttPort), HOST: '127.0.0.1', LOG_LEVEL: 'warn', POSFLEET_ADMIN_TOKEN: TOKEN, DATA_DIR: mkdtempSync(join(tmpdir(), 'pf-bench-')) },
  });
  const base = `http://127.0.0.1:${port}`;
  await until(async () => (await fetch(`${base}/readyz`)).ok);
  const node = await nodePid(server);
  const terminals: Terminal[] = [];
  for (let i = 0; i < N; i += 50) {
    terminals.push(...await Promise.all(Array.from({ length: Math.min(50, N - i) }, async (_, k) => {
      const res = await fetch(`${base}/api/v1/devices`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ serial: `BENCH-${i + k}`, model: 'T1' }) });
      const body = await res.json() as { credentials: { mqtt: { username: string; password: string } } };
      return { id: body.credentials.mqtt.username, username: body.credentials.mqtt.username, password: body.credentials.mqtt.password };
    })));
  }
  const clients = await connectAll(`mqtt://127.0.0.1:${mqttPort}`, terminals);
  const ids = terminals.map((t) => t.id);
  const seqs = ids.map(() => 0);
  const one = await measure(pool, 'heartbeats', [node], clients, ids, W, seqs);
  const two = await measure(pool, 'heartbeats', [node], clients, ids, 2 * W, seqs);
  for (const c of clients) c.end(true);
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
  const stored = await count(pool, 'heartbeats');
  return { one, two, lost: Math.max(0, one.acked + two.acked - stored) };
}

/** The node process under `npx tsx` (the one that does the work). */
async function nodePid(child: ChildProcess): Promise<number> {
  const { execSync } = await import('node:child_process');
  let pid = child.pid!;
  for (let i = 0; i < 4; i++) {
    const kids = execSync(`pgrep -P ${pid} || true`).toString().trim().split('\n').filter(Boolean).map(Number);
    if (kids.length === 0) break;
    pid = kids[kids.length - 1];
  }
  return pid;
}

async function baseline(pool: pg.Pool) {
  await pool.query(`create table bench_baseline (device_id text not null, boot_id text not null, seq bigint not null, ts timestamptz not null,
    received_at timestamptz not null, drift_ms bigint not null, firmware text not null, vitals jsonb not null)`);
  await pool.query('create index on bench_baseline (device_id, received_at)');
  await pool.query('create index on bench_baseline (received_at)');
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'pf-mosq-'));
  writeFileSync(join(dir, 'mosquitto.conf'), `listener ${port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\nmax_inflight_messages 0\npersistence false\nlog_type none\n`);
  const mosq = spawn('mosquitto', ['-c', join(dir, 'mosquitto.conf')], { stdio: 'ignore' });
  await until(async () => new Promise<boolean>((r) => { const s = createServer(); s.once('error', () => r(true)); s.listen(port, '127.0.0.1', () => s.close(() => r(false))); }));
  const sub = spawn('npx', ['tsx', 'bench/ingest/baseline-sub.ts', `mqtt://127.0.0.1:${port}`, dbUrl], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((r) => sub.stdout!.once('data', () => r()));
  const subPid = await nodePid(sub);
  const ids = Array.from({ length: N }, (_, i) => `base-${i}`);
  const clients = await connectAll(`mqtt://127.0.0.1:${port}`, ids.map((id) => ({ id })));
  const seqs = ids.map(() => 0);
  const one = await measure(pool, 'bench_baseline', [mosq.pid!, subPid], clients, ids, W, seqs);
  const two = await measure(pool, 'bench_baseline', [mosq.pid!, subPid], clients, ids, 2 * W, seqs);
  for (const c of clients) c.end(true);
  await new Promise((r) => setTimeout(r, 2000)); // let the writer catch up before counting losses
  sub.kill('SIGTERM');
  await new Promise((r) => sub.once('exit', r));
  mosq.kill('SIGTERM');
  const stored = await count(pool, 'bench_baseline');
  return { one, two, lost: Math.max(0, one.acked + two.acked - stored) };
}

const pool = await freshDb();
const pf = await posfleet(pool);
const mq = await baseline(pool);
await pool.end();
const f = (x: number, d = 0) => x.toFixed(d);
const line = (name: string, p: Phase) => `${name.padEnd(26)} ${f(p.persistedPerS).padStart(9)} /s  PUBACK p50 ${f(p.p50, 1).padStart(6)} ms  p99 ${f(p.p99, 1).padStart(7)} ms  CPU ${f(p.cpuMsPerHb, 3)} ms/hb  RSS ${f(p.rssMb)} MB`;
console.log(`\ningest bench: ${N} terminals, QoS 1, window ${W} (then ${2 * W}) per terminal, ${D / 1000} s each`);
console.log(line('posfleet', pf.one));
console.log(line('baseline mosquitto+COPY', mq.one));
console.log(line('posfleet at 2x', pf.two));
console.log(line('baseline at 2x', mq.two));
console.log(`ratio posfleet/baseline: ${f(pf.one.persistedPerS / mq.one.persistedPerS, 2)} (2x: ${f(pf.two.persistedPerS / mq.two.persistedPerS, 2)})`);
console.log(`posfleet at 2x keeps ${f((100 * pf.two.persistedPerS) / Math.max(pf.one.persistedPerS, pf.two.persistedPerS))} % of peak`);
console.log(`PUBACKed but not stored: posfleet ${pf.lost}, baseline ${mq.lost}`);
