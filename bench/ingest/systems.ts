// The two systems under test, each started as child processes whose pids are
// the processes doing the work (node started directly with the tsx loader, not
// an npx/tsx wrapper, with the Node flags bin/posfleet.js gives it): posfleet on PostgreSQL, and the baseline — Mosquitto on
// a spare loopback port plus one MQTT.js subscriber writing with COPY.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { SERVER_NODE_FLAGS } from '../../bin/node-flags.js';

export interface Terminal {
  id: string;
  username?: string;
  password?: string;
}

export interface System {
  name: string;
  table: string;
  mqttUrl: string;
  /** The processes whose CPU and memory count as the system's. */
  pids: number[];
  terminals: Terminal[];
  /** Waits until everything acknowledged is written (bounded), then stops. */
  stop(): Promise<void>;
}

const NODE_TSX = ['--import', 'tsx'];
const children = new Set<ChildProcess>();
export const killAll = () => {
  for (const c of children) c.kill('SIGKILL');
};

function start(cmd: string, args: string[], opts: Parameters<typeof spawn>[2]): ChildProcess {
  const child = spawn(cmd, args, opts);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const freePort = () =>
  new Promise<number>((r) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => r(p));
    });
  });
async function until(what: string, f: () => Promise<boolean>, ms = 60_000): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(100)) if (await f().catch(() => false)) return;
  throw new Error(`timed out waiting for ${what}`);
}
const exited = (c: ChildProcess, ms = 20_000) =>
  new Promise<void>((r) => {
    if (c.exitCode !== null || c.signalCode !== null) return r();
    const t = setTimeout(() => {
      c.kill('SIGKILL');
      r();
    }, ms);
    c.once('exit', () => {
      clearTimeout(t);
      r();
    });
  });

export async function startPosfleet(dbUrl: string, n: number): Promise<System> {
  const [port, mqttPort] = [await freePort(), await freePort()];
  const token = 'bench-admin-token-0123456789';
  // BENCH_SERVER_FLAGS: extra node flags for the server, e.g. '--cpu-prof --cpu-prof-dir=/tmp/prof'.
  const flags = (process.env.BENCH_SERVER_FLAGS ?? '').split(' ').filter(Boolean);
  const server = start(process.execPath, [...SERVER_NODE_FLAGS, ...flags, ...NODE_TSX, 'server/cli.ts', 'serve'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      ...process.env,
      DATABASE_URL: dbUrl,
      PORT: String(port),
      MQTT_PORT: String(mqttPort),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      POSFLEET_ADMIN_TOKEN: token,
      DATA_DIR: mkdtempSync(join(tmpdir(), 'pf-bench-')),
    },
  });
  const base = `http://127.0.0.1:${port}`;
  await until('posfleet /readyz', async () => (await fetch(`${base}/readyz`)).ok);
  const terminals: Terminal[] = [];
  for (let i = 0; i < n; i += 50) {
    terminals.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(50, n - i) }, async (_, k) => {
          const res = await fetch(`${base}/api/v1/devices`, {
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body: JSON.stringify({ serial: `BENCH-${i + k}`, model: 'T1' }),
          });
          const body = (await res.json()) as { credentials: { mqtt: { username: string; password: string } } };
          return {
            id: body.credentials.mqtt.username,
            username: body.credentials.mqtt.username,
            password: body.credentials.mqtt.password,
          };
        }),
      )),
    );
  }
  return {
    name: 'posfleet',
    table: 'heartbeats',
    mqttUrl: `mqtt://127.0.0.1:${mqttPort}`,
    pids: [server.pid!],
    terminals,
    // PUBACK means committed: nothing to wait for but a clean SIGTERM.
    stop: async () => {
      server.kill('SIGTERM');
      await exited(server);
    },
  };
}

export async function startBaseline(pool: pg.Pool, dbUrl: string, n: number): Promise<System> {
  await pool.query(`create table bench_baseline (device_id text not null, boot_id text not null, seq bigint not null, ts timestamptz not null,
    received_at timestamptz not null, drift_ms bigint not null, firmware text not null, vitals jsonb not null)`);
  // The same indexes as posfleet's heartbeats table (primary key included), for the same write cost.
  await pool.query('alter table bench_baseline add primary key (device_id, boot_id, seq)');
  await pool.query('create index on bench_baseline (device_id, received_at)');
  await pool.query('create index on bench_baseline (received_at)');
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'pf-mosq-'));
  // No inflight/queue caps toward the subscriber: Mosquitto buffers rather than drops.
  writeFileSync(
    join(dir, 'mosquitto.conf'),
    `listener ${port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\nmax_inflight_messages 0\npersistence false\nlog_type error\n`,
  );
  const mosq = start('mosquitto', ['-c', join(dir, 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'inherit'] });
  await until(
    'mosquitto',
    () =>
      new Promise<boolean>((r) => {
        const s = createServer();
        s.once('error', () => r(true));
        s.listen(port, '127.0.0.1', () => s.close(() => r(false)));
      }),
  );
  const url = `mqtt://127.0.0.1:${port}`;
  const sub = start(process.execPath, [...NODE_TSX, 'bench/ingest/baseline-sub.ts', url, dbUrl], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((r) => sub.stdout!.once('data', () => r()));
  const count = async () => Number((await pool.query('select count(*)::int n from bench_baseline')).rows[0].n);
  return {
    name: 'baseline',
    table: 'bench_baseline',
    mqttUrl: url,
    pids: [mosq.pid!, sub.pid!],
    terminals: Array.from({ length: n }, (_, i) => ({ id: `base-${i}` })),
    stop: async () => {
      // Mosquitto acked on receipt: let the subscriber write its backlog (stable count for 2 s, at most 60 s).
      let last = -1;
      for (const end = Date.now() + 60_000; Date.now() < end; await sleep(2_000)) {
        const now = await count();
        if (now === last) break;
        last = now;
      }
      sub.kill('SIGTERM');
      await exited(sub);
      mosq.kill('SIGTERM');
      await exited(mosq);
    },
  };
}

/** One load-generator process over a share of the terminals. */
export async function startLoader(url: string, terminals: Terminal[], maxInflight: number) {
  const file = join(mkdtempSync(join(tmpdir(), 'pf-load-')), 'config.json');
  writeFileSync(file, JSON.stringify({ url, terminals, maxInflight }));
  const child = start(process.execPath, [...NODE_TSX, 'bench/ingest/load.ts', file], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  const waiters: ((l: string) => void)[] = [];
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const w = waiters.shift();
      if (w) w(line);
      else lines.push(line);
    }
  });
  const next = () =>
    new Promise<string>((r) => {
      const l = lines.shift();
      if (l !== undefined) r(l);
      else waiters.push(r);
    });
  await next(); // ready: every terminal connected
  return {
    pid: child.pid!,
    phase: async (rate: number, ms: number, boot: string) => {
      child.stdin!.write(`${JSON.stringify({ rate, ms, boot })}\n`);
      return JSON.parse(await next()) as import('./load.ts').PhaseResult;
    },
    stop: async () => {
      child.stdin!.write(`${JSON.stringify({ quit: true })}\n`);
      await exited(child, 10_000);
    },
  };
}
export type Loader = Awaited<ReturnType<typeof startLoader>>;
