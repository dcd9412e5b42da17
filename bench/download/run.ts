// Download throughput of posfleet against nginx (sendfile on) serving the same
// 64 MiB payload file, with 50 concurrent downloaders. Goal: posfleet ≥ 0.8 of nginx.
//   npx tsx bench/download/run.ts [--downloaders 50] [--rounds 2] [--size-mib 64] [--repeat 2]
//                                 [--client-threads 2] [--nginx-workers auto]
// posfleet runs as its own process (`posfleet serve`, embedded database, temp
// DATA_DIR), nginx as another; the downloaders in --client-threads processes.
// bench/machine.ts adds the machine, who else used its CPU, and the reference
// workload before and after.
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generateKeyPair } from '../../firmware/keys.ts';
import { buildSampleRelease } from '../../firmware/samples.ts';
import { SERVER_NODE_FLAGS } from '../../bin/node-flags.js';
import { startRun, type Figure } from '../machine.ts';

const { values: v } = parseArgs({
  options: {
    downloaders: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '2' },
    'size-mib': { type: 'string', default: '64' },
    repeat: { type: 'string', default: '2' },
    'client-threads': { type: 'string', default: '2' },
    'nginx-workers': { type: 'string', default: 'auto' },
  },
});
const downloaders = Number(v.downloaders);
const rounds = Number(v.rounds);
const sizeBytes = Number(v['size-mib']) * 1024 * 1024;
const repeat = Number(v.repeat);
const clientThreads = Math.max(1, Math.min(Number(v['client-threads']), downloaders));
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const MiB = 1024 * 1024;
const children: ChildProcess[] = [];

function findNginx(): string | null {
  for (const p of ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx'])
    if (existsSync(p)) return p;
  const which = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' });
  return which.status === 0 && which.stdout.trim() ? which.stdout.trim() : null;
}

function sparePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function startPosfleet(dataDir: string, adminToken: string): Promise<{ baseUrl: string; pid: number }> {
  const profile = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const child = spawn(
    process.execPath,
    [...SERVER_NODE_FLAGS, ...profile, '--import', 'tsx', join(repoRoot, 'server/cli.ts'), 'serve'],
    {
      cwd: repoRoot,
      env: {
        ...process.env,
        PORT: '0',
        MQTT_PORT: '0',
        HOST: '127.0.0.1',
        DATA_DIR: dataDir,
        POSFLEET_ADMIN_TOKEN: adminToken,
        LOG_LEVEL: 'info',
        DATABASE_URL: '',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  children.push(child);
  return new Promise((resolve, reject) => {
    let buffered = '';
    let ready = false;
    child.once('exit', (code) => reject(new Error(`posfleet exited with ${code} before it was ready`)));
    // Keep reading stdout (one JSON line per request) so the pipe never fills.
    child.stdout!.on('data', (chunk: Buffer) => {
      if (ready) return;
      buffered += chunk.toString('utf8');
      for (const line of buffered.split('\n')) {
        if (!line.includes('posfleet ready')) continue;
        ready = true;
        const { http } = JSON.parse(line) as { http: number };
        resolve({ baseUrl: `http://127.0.0.1:${http}`, pid: child.pid! });
      }
    });
  });
}

async function startNginx(
  bin: string,
  dir: string,
  root: string,
  file: string,
  port: number,
  workers: string,
): Promise<{ url: string; pid: number }> {
  const conf = `
worker_processes ${workers};
user root;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    location = /payload { try_files /${file} =404; }
  }
}
`;
  await writeFile(join(dir, 'nginx.conf'), conf);
  const child = spawn(bin, ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'inherit', 'inherit'] });
  children.push(child);
  const url = `http://127.0.0.1:${port}/payload`;
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}; see ${dir}/error.log`);
    const ok = await fetch(url, { method: 'HEAD' }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return { url, pid: child.pid! };
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('nginx did not answer in 5 s');
}

/** CPU seconds (user + system) used so far by these processes and their children's threads. */
async function cpuSeconds(pids: number[]): Promise<number> {
  let ticks = 0;
  for (const pid of pids) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
  }
  return ticks / 100;
}

function childPids(pid: number): number[] {
  const out = spawnSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' }).stdout;
  return out
    .split('\n')
    .map((x) => Number(x.trim()))
    .filter((x) => x > 0);
}

/** Runs `downloaders` concurrent downloaders × `rounds` against `url`; MB/s (10^6 bytes per second). */
interface Figures {
  mbps: number;
  /** Server CPU seconds per GB served: what the throughput costs, less sensitive to a busy machine. */
  cpuPerGb: number;
}

async function measure(
  url: string,
  headers: Record<string, string>,
  serverPids: number[],
  n = downloaders,
  r = rounds,
): Promise<Figures> {
  const per = Array.from(
    { length: clientThreads },
    (_, i) => Math.floor(n / clientThreads) + (i < n % clientThreads ? 1 : 0),
  ).filter((x) => x > 0);
  const clients = per.map((count) =>
    fork(fileURLToPath(new URL('./client.ts', import.meta.url)), [], {
      execArgv: ['--import', 'tsx'],
      env: {
        ...process.env,
        BENCH_JOB: JSON.stringify({ url, headers, downloaders: count, rounds: r, expectBytes: sizeBytes }),
      },
    }),
  );
  await Promise.all(
    clients.map(
      (w) =>
        new Promise((res, rej) => {
          w.once('message', res);
          w.once('exit', (code) => rej(new Error(`download client exited with ${code}`)));
        }),
    ),
  );
  const cpuBefore = await cpuSeconds(serverPids);
  const started = performance.now();
  const results = await Promise.all(
    clients.map(
      (w) =>
        new Promise<{ bytes?: number; error?: string }>((res) => {
          w.once('message', (m) => res(m as never));
          w.send('go');
        }),
    ),
  );
  const seconds = (performance.now() - started) / 1000;
  const cpu = (await cpuSeconds(serverPids)) - cpuBefore;
  for (const w of clients) w.removeAllListeners('exit');
  const failed = results.find((x) => x.error);
  if (failed) throw new Error(`download failed: ${failed.error}`);
  const bytes = results.reduce((a, x) => a + (x.bytes ?? 0), 0);
  return { mbps: bytes / 1e6 / seconds, cpuPerGb: cpu / (bytes / 1e9) };
}

async function main(): Promise<Figure[]> {
  const nginx = findNginx();
  if (!nginx) {
    console.error(
      'bench/download: nginx is not installed. Install the Debian package (apt-get install -y nginx-light, or nginx) and run again.',
    );
    process.exitCode = 2;
    return [];
  }
  const work = await mkdtemp(join(tmpdir(), 'posfleet-bench-dl-'));
  try {
    console.log(
      `bench/download: ${sizeBytes / MiB} MiB artifact, ${downloaders} concurrent downloaders × ${rounds} rounds, ${clientThreads} client threads`,
    );
    const keys = await generateKeyPair(join(work, 'keys'));
    const release = await buildSampleRelease({
      dir: join(work, 'release'),
      component: 'firmware',
      version: '9.0.0',
      models: ['T2'],
      sizeBytes,
      key: keys.privateKeyPath,
    });

    const adminToken = `bench-admin-${Date.now()}-token`;
    const dataDir = join(work, 'data');
    const server = await startPosfleet(dataDir, adminToken);
    const api = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${server.baseUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${adminToken}`,
          'content-type': body instanceof Uint8Array ? 'application/octet-stream' : 'application/json',
        },
        body: body === undefined ? undefined : body instanceof Uint8Array ? body : JSON.stringify(body),
      });
      const json = (await res.json()) as any;
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
      return json;
    };
    await api('POST', '/api/v1/signing-keys', { name: 'bench', publicKey: keys.publicKeyPem });
    const uploadStarted = performance.now();
    const artifact = await api('POST', '/api/v1/artifacts', await readFile(release.out));
    console.log(
      `  upload: ${(sizeBytes / 1e6 / ((performance.now() - uploadStarted) / 1000)).toFixed(0)} MB/s (${artifact.id})`,
    );
    const device = await api('POST', '/api/v1/devices', { serial: `BENCH-${Date.now()}`, model: 'T2' });
    const auth = { authorization: `Bearer ${device.credentials.deviceId}:${device.credentials.mqtt.password}` };
    const posfleetUrl = `${server.baseUrl}/api/v1/artifacts/${artifact.id}/download`;

    const nginxDir = join(work, 'nginx');
    await import('node:fs/promises').then((fs) => fs.mkdir(nginxDir));
    const { url: nginxUrl, pid: nginxPid } = await startNginx(
      nginx,
      nginxDir,
      join(dataDir, 'artifacts'),
      artifact.id,
      await sparePort(),
      v['nginx-workers']!,
    );
    console.log(
      `  posfleet pid ${server.pid} at ${posfleetUrl}\n  nginx (${v['nginx-workers']} workers, sendfile on) at ${nginxUrl}`,
    );

    const posfleetPids = [server.pid];
    const nginxPids = [nginxPid, ...childPids(nginxPid)];
    // Warm-up: page cache, JIT, connections.
    await measure(posfleetUrl, auth, posfleetPids, 4, 1);
    await measure(nginxUrl, {}, nginxPids, 4, 1);

    const p: Figures[] = [];
    const n: Figures[] = [];
    const show = (f: Figures) => `${f.mbps.toFixed(0)} MB/s (${f.cpuPerGb.toFixed(2)} CPU s/GB)`;
    for (let i = 0; i < repeat; i++) {
      p.push(await measure(posfleetUrl, auth, posfleetPids));
      n.push(await measure(nginxUrl, {}, nginxPids));
      console.log(`  run ${i + 1}: posfleet ${show(p[i])}, nginx ${show(n[i])}`);
    }
    const mean = (xs: Figures[]): Figures => ({
      mbps: xs.reduce((a, b) => a + b.mbps, 0) / xs.length,
      cpuPerGb: xs.reduce((a, b) => a + b.cpuPerGb, 0) / xs.length,
    });
    const ratio = mean(p).mbps / mean(n).mbps;
    console.log(`posfleet ${show(mean(p))}`);
    console.log(`nginx    ${show(mean(n))}`);
    console.log(`ratio    ${ratio.toFixed(2)} (goal ≥ 0.80: ${ratio >= 0.8 ? 'met' : 'NOT met'})`);
    return [
      { label: 'posfleet', value: mean(p).mbps, unit: 'MB/s', kind: 'rate', against: 'node' },
      { label: 'posfleet CPU', value: mean(p).cpuPerGb, unit: 's/GB', kind: 'cost', against: 'node', digits: 2 },
      { label: 'nginx', value: mean(n).mbps, unit: 'MB/s', kind: 'rate', against: 'node' },
    ];
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    await rm(work, { recursive: true, force: true });
  }
}

const run = await startRun('download');
const figures = await main();
if (figures.length > 0) await run.finish(figures);
