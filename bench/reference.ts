// The reference workload: a fixed amount of work that uses nothing of posfleet's
// code, run in its own process so that its cost measures the machine, not the
// server. Every bench runs it before and after its own work (bench/machine.ts)
// and prints its figures beside its own, so that a figure from one machine can
// be compared with one from another: a machine that needs twice the CPU time
// for the reference needs about twice for the bench too.
//
// Three parts, like the work the server does, and a probe:
//   node  — JSON of heartbeat-sized objects, SHA-256, Map churn (CPU and the
//           garbage collector), then loopback TCP round trips of 300-byte
//           messages and HTTP downloads of 1 MiB (the event loop and the
//           kernel's socket path, which is costly on some virtual machines);
//   pg    — with a DATABASE_URL: on one connection, batched inserts, single-row
//           updates each committed alone, and lookups by key in a table of
//           its own (the statements a rollout makes per terminal);
//   a system call — the CPU time of a one-byte write(2) to /dev/null, which on
//           some virtual machines costs several times what it does on others
//           (page-table isolation, hypervisors that trap system calls).
// The sizes below define the workload: changing them makes figures measured
// before and after incomparable.
//   node --import tsx bench/reference.ts [DATABASE_URL]   (prints one JSON line)
import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { createServer as createHttpServer, get } from 'node:http';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import pg from 'pg';

const JSON_ROUNDS = 60_000;
const HASH_MIB = 256;
const MAP_KEYS = 200_000;
const TCP_CLIENTS = 50;
const TCP_ROUND_TRIPS = 300; // per client
const HTTP_DOWNLOADS = 100;
const HTTP_CONCURRENCY = 10;
const PG_ROWS = 4_000;
const PG_BATCH = 50;
const PG_UPDATES = 2_000;
const PG_LOOKUPS = 2_000;
const PG_SYNC_COMMITS = 100;
const SYSCALLS = 100_000;

export interface PartFigures {
  /** Wall seconds. */
  wallS: number;
  /** CPU seconds of the reference process (and, for pg, of its PostgreSQL backend). */
  cpuS: number;
}

export interface ReferenceFigures {
  js: PartFigures;
  net: PartFigures;
  /**
   * Only with a database. backendCpuS: the PostgreSQL backend's CPU alone; commitMs: the
   * mean wall time of a one-row update committed alone and flushed to disk (the rest runs
   * with synchronous_commit off, so that its wall time is CPU, not the disk).
   */
  pg?: PartFigures & { backendCpuS: number; clientCpuS: number; commitMs: number };
  /** CPU microseconds of one write(2) of one byte to /dev/null, from Node (its binding included). */
  syscallUs: number;
}

const cpuNow = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

async function timed<T>(f: () => Promise<T> | T): Promise<{ wallS: number; cpuS: number; value: T }> {
  const [w0, c0] = [performance.now(), cpuNow()];
  const value = await f();
  return { wallS: (performance.now() - w0) / 1000, cpuS: cpuNow() - c0, value };
}

function jsPart(): number {
  let check = 0;
  const base = {
    v: 1,
    bootId: 'boot-0123456789',
    ts: 1_767_225_600_000,
    firmware: '1.0.0',
    apps: { payment: '5.0.0' },
    battery: { pct: 50, charging: false, healthPct: 90 },
    net: { type: 'lte', signalDbm: -80 },
    sys: { cpuPct: 12, storageFreePct: 60 },
  };
  for (let i = 0; i < JSON_ROUNDS; i++) {
    const o = JSON.parse(JSON.stringify({ ...base, seq: i, battery: { ...base.battery, pct: i % 100 } }));
    check += o.battery.pct;
  }
  const mib = Buffer.alloc(1024 * 1024, 7);
  const h = createHash('sha256');
  for (let i = 0; i < HASH_MIB; i++) h.update(mib);
  check += h.digest()[0];
  const m = new Map<string, { n: number }>();
  for (let i = 0; i < MAP_KEYS; i++) m.set(`dev_${i % 20_000}_${i}`, { n: i });
  for (const [k, v] of m) if (k.length > 0) check += v.n & 1;
  return check;
}

async function tcpPart(): Promise<void> {
  const server = createServer((s) => {
    let pending = 0;
    s.on('data', (d) => {
      pending += d.length;
      let acks = 0;
      for (; pending >= 300; pending -= 300) acks++;
      if (acks > 0) s.write(Buffer.alloc(4 * acks, 1));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const message = Buffer.alloc(300, 2);
  const client = () =>
    new Promise<void>((resolve, reject) => {
      const s: Socket = connect(port, '127.0.0.1');
      s.setNoDelay(true);
      let left = TCP_ROUND_TRIPS;
      let got = 0;
      s.once('connect', () => s.write(message));
      s.on('data', (d) => {
        for (got += d.length; got >= 4; got -= 4) {
          if (--left === 0) {
            s.end();
            return resolve();
          }
          s.write(message);
        }
      });
      s.once('error', reject);
    });
  await Promise.all(Array.from({ length: TCP_CLIENTS }, client));
  await new Promise<void>((r) => server.close(() => r()));
}

async function httpPart(): Promise<void> {
  const body = Buffer.alloc(1024 * 1024, 3);
  const server = createHttpServer((_req, res) => {
    res.writeHead(200, { 'content-length': body.length });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const once = () =>
    new Promise<void>((resolve, reject) => {
      get({ port, host: '127.0.0.1', path: '/', agent: false }, (res) => {
        let n = 0;
        res.on('data', (c: Buffer) => (n += c.length));
        res.on('end', () => (n === body.length ? resolve() : reject(new Error(`short body: ${n}`))));
        res.on('error', reject);
      }).once('error', reject);
    });
  let next = 0;
  const worker = async () => {
    while (next++ < HTTP_DOWNLOADS) await once();
  };
  await Promise.all(Array.from({ length: HTTP_CONCURRENCY }, worker));
  await new Promise<void>((r) => server.close(() => r()));
}

function syscallPart(): number {
  const fd = openSync('/dev/null', 'w');
  const one = Buffer.alloc(1);
  const c0 = cpuNow();
  for (let i = 0; i < SYSCALLS; i++) writeSync(fd, one, 0, 1);
  const cpuS = cpuNow() - c0;
  closeSync(fd);
  return (cpuS * 1e6) / SYSCALLS;
}

function procCpuS(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function pgPart(url: string): Promise<NonNullable<ReferenceFigures['pg']>> {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    const backend = Number((await db.query('select pg_backend_pid() as pid')).rows[0].pid);
    await db.query('drop table if exists bench_reference');
    await db.query(`create table bench_reference (id int primary key, device text not null, state text not null,
      attempts int not null default 0, updated_at timestamptz not null default now())`);
    await db.query('create index on bench_reference (state)');
    const update = (i: number, state: string) =>
      db.query({
        name: 'bench_reference_update',
        text: 'update bench_reference set state = $2, attempts = attempts + 1, updated_at = now() where id = $1',
        values: [(i * 7) % PG_ROWS, state],
      });
    await db.query('set synchronous_commit = off');
    const b0 = procCpuS(backend);
    const run = await timed(async () => {
      for (let i = 0; i < PG_ROWS; i += PG_BATCH) {
        const params: unknown[] = [];
        const values: string[] = [];
        for (let k = i; k < i + PG_BATCH; k++) {
          params.push(k, `dev_${k}`);
          values.push(`($${params.length - 1}, $${params.length}, 'pending')`);
        }
        await db.query('begin');
        await db.query(`insert into bench_reference (id, device, state) values ${values.join(', ')}`, params);
        await db.query('commit');
      }
      const states = ['sent', 'accepted', 'downloading', 'installing', 'succeeded'];
      for (let i = 0; i < PG_UPDATES; i++) await update(i, states[i % states.length]);
      let found = 0;
      for (let i = 0; i < PG_LOOKUPS; i++) {
        const r = await db.query({
          name: 'bench_reference_lookup',
          text: 'select id, device, state, attempts from bench_reference where id = $1',
          values: [(i * 13) % PG_ROWS],
        });
        found += r.rowCount ?? 0;
      }
      await db.query('select state, count(*) from bench_reference group by state');
      return found;
    });
    if (run.value !== PG_LOOKUPS) throw new Error(`reference lookups found ${run.value} of ${PG_LOOKUPS} rows`);
    const backendCpuS = procCpuS(backend) - b0;
    await db.query('set synchronous_commit = on');
    const sync = await timed(async () => {
      for (let i = 0; i < PG_SYNC_COMMITS; i++) await update(i, 'verifying');
    });
    await db.query('drop table bench_reference');
    return {
      wallS: run.wallS,
      cpuS: run.cpuS + backendCpuS,
      backendCpuS,
      clientCpuS: run.cpuS,
      commitMs: (sync.wallS * 1000) / PG_SYNC_COMMITS,
    };
  } finally {
    await db.end().catch(() => undefined);
  }
}

async function main(): Promise<void> {
  const url = process.argv[2];
  // A warm-up, untimed: the JIT's first compiles are not the machine's speed.
  jsPart();
  const js = await timed(jsPart);
  const net = await timed(async () => {
    await tcpPart();
    await httpPart();
  });
  const out: ReferenceFigures = {
    js: { wallS: js.wallS, cpuS: js.cpuS },
    net: { wallS: net.wallS, cpuS: net.cpuS },
    syscallUs: syscallPart(),
  };
  if (url) out.pg = await pgPart(url);
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

await main();
