// What every bench prints beside its own figures, so that a figure can be
// reproduced and compared across machines:
//   - the machine: CPU, cores, kernel and virtualisation, Node, PostgreSQL, the
//     commit, the load average at the start;
//   - a reference figure measured in the same run, before and after the bench's
//     own work: the fixed workload of bench/reference.ts, which uses nothing of
//     posfleet's code;
//   - the bench's headline figures set against that reference (rates times the
//     reference's CPU seconds, costs divided by them): on two machines that
//     differ only in speed these relative figures agree where the raw ones do not;
//   - who used the CPU during the run: the whole machine against this bench's
//     own processes and its PostgreSQL backends. Figures from a run where other
//     processes took the CPU are floors, not the machine's figures.
// Use: `const run = await startRun('rollout', { databaseUrl })` at the start,
// `await run.finish([...figures])` at the end.
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { machineCpu, postgresCpu, treeCpuSeconds } from './proc.ts';
import type { ReferenceFigures } from './reference.ts';
import { RUN_ID, scratchDb } from './scratch-db.ts';

/** Other processes using more than this many cores during a run make its figures floors. */
const QUIET_CORES = 0.1;
const repoRoot = fileURLToPath(new URL('../', import.meta.url));

const f = (x: number, d = 0) =>
  Number.isFinite(x) ? x.toLocaleString('en', { minimumFractionDigits: d, maximumFractionDigits: d }) : '-';

// ---- the machine ----------------------------------------------------------------

function readOr(path: string, fallback = ''): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return fallback;
  }
}

/** CPU model and what slows a virtual machine's system calls, from /proc and /sys. */
function cpuLine(): string {
  const first = readOr('/proc/cpuinfo').split('\n\n')[0] ?? '';
  const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(first)?.[1]?.trim();
  const model = field('model name') ?? cpus()[0]?.model ?? 'unknown CPU';
  const family = field('cpu family');
  const mhz = Number(field('cpu MHz'));
  const id = family ? `family ${family} model ${field('model')}, ` : '';
  const virt = (field('flags') ?? '').split(' ').includes('hypervisor') ? 'virtual machine' : 'no hypervisor flag';
  const meltdown = readOr('/sys/devices/system/cpu/vulnerabilities/meltdown');
  const pti = /PTI/.test(meltdown) ? ', page-table isolation on (system calls cost more)' : '';
  return `${model} (${id}${f(mhz)} MHz), ${cpus().length} CPUs, ${f(totalmem() / 2 ** 30)} GiB; Linux ${release()}, ${virt}${pti}`;
}

/** The commit a checkout is at, and whether its tracked files differ from it. */
function commit(dir: string): string {
  const rev = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: dir, encoding: 'utf8' });
  if (rev.status !== 0) return 'unknown commit';
  const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], {
    cwd: dir,
    encoding: 'utf8',
  });
  return `commit ${rev.stdout.trim()}${dirty.stdout.trim() ? ' with uncommitted changes' : ''}`;
}

async function postgresLine(databaseUrl: string): Promise<string> {
  const c = new pg.Client({ connectionString: databaseUrl });
  await c.connect();
  try {
    const r = await c.query<{ name: string; setting: string }>(
      `select name, current_setting(name) as setting from unnest(array['server_version', 'shared_buffers',
        'synchronous_commit', 'fsync', 'max_connections']) as name`,
    );
    const s = Object.fromEntries(r.rows.map((x) => [x.name, x.setting]));
    return `PostgreSQL ${s.server_version.split(' ')[0]} (shared_buffers ${s.shared_buffers}, synchronous_commit ${s.synchronous_commit}, fsync ${s.fsync}, max_connections ${s.max_connections})`;
  } finally {
    await c.end().catch(() => undefined);
  }
}

// ---- the reference ------------------------------------------------------------------

/** Runs bench/reference.ts in its own process (with its own scratch database when given a server). */
export async function measureReference(databaseUrl?: string): Promise<ReferenceFigures> {
  const scratch = databaseUrl ? scratchDb(databaseUrl, 'posfleet_bench_reference') : undefined;
  await scratch?.fresh();
  try {
    const script = fileURLToPath(new URL('./reference.ts', import.meta.url));
    const args = ['--import', 'tsx', script, ...(scratch ? [scratch.url] : [])];
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, args, { cwd: repoRoot, timeout: 5 * 60_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`reference workload failed: ${err.message}\n${stderr}`)) : resolve(stdout),
      ),
    );
    return JSON.parse(out.trim().split('\n').pop()!) as ReferenceFigures;
  } finally {
    await scratch?.drop();
  }
}

/** The reference's node part: CPU seconds of its JavaScript, hashing and loopback traffic. */
export const nodeSeconds = (r: ReferenceFigures) => r.js.cpuS + r.net.cpuS;

function referenceLine(r: ReferenceFigures): string {
  const node = `node ${f(nodeSeconds(r), 2)} s CPU (JSON, SHA-256 and maps ${f(r.js.cpuS, 2)} s; loopback TCP and HTTP ${f(r.net.cpuS, 2)} s; ${f(r.js.wallS + r.net.wallS, 2)} s wall), a system call ${f(r.syscallUs, 2)} µs CPU`;
  if (!r.pg) return node;
  return `${node}; PostgreSQL backend ${f(r.pg.backendCpuS, 2)} s CPU (its client ${f(r.pg.clientCpuS, 2)} s; ${f(r.pg.wallS, 2)} s wall), a flushed commit ${f(r.pg.commitMs, 1)} ms`;
}

// ---- who used the CPU ---------------------------------------------------------------

export interface CpuUse {
  wallS: number;
  cores: number;
  /** Average cores busy with processes (anyone's), with interrupts, and stolen by the hypervisor. */
  tasks: number;
  irq: number;
  steal: number;
  /** This bench's processes (itself and every descendant) and the PostgreSQL backends of its databases. */
  own: number;
  backends: number;
  /** Processes that are not this bench's: tasks - own - backends. */
  others: number;
}

/** Watches the CPU from now until stop(); samples PostgreSQL backends every second (they come and go). */
export function watchCpu(): { stop(): CpuUse } {
  const ours = (name: string) => name.endsWith(RUN_ID);
  const t0 = performance.now();
  const m0 = machineCpu();
  const tree0 = treeCpuSeconds(process.pid);
  const first = postgresCpu(ours);
  const last = new Map(first);
  const sample = () => {
    for (const [pid, s] of postgresCpu(ours)) last.set(pid, s);
  };
  const timer = setInterval(sample, 1_000);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      sample();
      const wallS = (performance.now() - t0) / 1000;
      const m1 = machineCpu();
      let backendS = 0;
      for (const [pid, s] of last) backendS += s - (first.get(pid) ?? 0);
      const own = (treeCpuSeconds(process.pid) - tree0) / wallS;
      const backends = backendS / wallS;
      const tasks = (m1.tasks - m0.tasks) / wallS;
      return {
        wallS,
        cores: cpus().length,
        tasks,
        irq: (m1.irq - m0.irq) / wallS,
        steal: (m1.steal - m0.steal) / wallS,
        own,
        backends,
        others: Math.max(0, tasks - own - backends),
      };
    },
  };
}

/** One line: who used the CPU, and whether the run was quiet. */
export function cpuUseLine(u: CpuUse): string {
  const verdict =
    u.others + u.steal <= QUIET_CORES
      ? 'quiet: the figures are this machine’s'
      : `NOT quiet (other processes or the hypervisor took more than ${QUIET_CORES} core): the raw figures are floors, compare the relative ones`;
  return `over ${f(u.wallS)} s the machine's ${u.cores} CPUs were busy ${f(u.tasks + u.irq + u.steal, 2)} cores on average: this bench ${f(u.own + u.backends, 2)} (its processes ${f(u.own, 2)}, its PostgreSQL backends ${f(u.backends, 2)}), other processes ${f(u.others, 2)}, interrupts ${f(u.irq, 2)}, stolen ${f(u.steal, 2)}; ${verdict}`;
}

// ---- a run --------------------------------------------------------------------------

export interface Figure {
  label: string;
  value: number;
  unit: string;
  /** A rate (more per second is better) or a cost (CPU or time per item). */
  kind: 'rate' | 'cost';
  /** The part of the reference it is set against: node processes or the PostgreSQL backend. */
  against: 'node' | 'pg';
  digits?: number;
}

export interface Run {
  /**
   * Stops the CPU watch, measures the reference again and prints it all with the
   * figures set against it. Call it once the bench's own processes have stopped.
   */
  finish(figures: Figure[]): Promise<void>;
}

const label = (s: string) => `  ${s.padEnd(11)}`;

/**
 * Prints the machine, measures the reference and starts watching the CPU. `name`
 * heads the lines; `databaseUrl` (a PostgreSQL server) adds its version and the
 * reference's PostgreSQL part; `serverRoot` is the checkout whose server runs,
 * when it is not this one.
 */
export async function startRun(name: string, opts: { databaseUrl?: string; serverRoot?: string } = {}): Promise<Run> {
  const load = loadavg();
  const lines = [
    `bench/${name} on ${cpuLine()}`,
    `${label('software')}Node ${process.version}${opts.databaseUrl ? `, ${await postgresLine(opts.databaseUrl)}` : ''}; posfleet ${commit(repoRoot)}${opts.serverRoot && opts.serverRoot !== repoRoot ? `, its server from ${opts.serverRoot} at ${commit(opts.serverRoot)}` : ''}`,
    `${label('load')}${load.map((x) => f(x, 2)).join(' ')} (1, 5, 15 min) at the start`,
  ];
  console.log(lines.join('\n'));
  const before = await measureReference(opts.databaseUrl);
  console.log(`${label('reference')}before the run: ${referenceLine(before)}`);
  const watch = watchCpu();
  return {
    async finish(figures) {
      const use = watch.stop();
      const after = await measureReference(opts.databaseUrl);
      const mean = (g: (r: ReferenceFigures) => number) => (g(before) + g(after)) / 2;
      const ref = { node: mean(nodeSeconds), pg: before.pg && after.pg ? mean((r) => r.pg!.backendCpuS) : NaN };
      const relative = figures.map((x) => {
        const r = ref[x.against];
        const rel = x.kind === 'rate' ? x.value * r : x.value / r;
        const op = x.kind === 'rate' ? '×' : '÷';
        return `${label('')}${x.label} ${f(x.value, x.digits ?? 0)} ${x.unit} ${op} ${x.against} reference ${f(r, 2)} s = ${f(rel, (x.digits ?? 0) + 1)}`;
      });
      console.log(
        [
          '',
          `bench/${name}: machine and reference`,
          `${label('machine')}${cpuLine()}`,
          `${label('load')}${load.map((x) => f(x, 2)).join(' ')} at the start, ${loadavg()
            .map((x) => f(x, 2))
            .join(' ')} at the end`,
          `${label('CPU use')}${cpuUseLine(use)}`,
          `${label('reference')}fixed workload of bench/reference.ts (no posfleet code), CPU seconds, lower is a faster machine:`,
          `${label('')}before: ${referenceLine(before)}`,
          `${label('')}after:  ${referenceLine(after)}`,
          `${label('relative')}rates times, costs divided by the reference's CPU seconds (mean of before and after):`,
          ...relative,
        ].join('\n'),
      );
    },
  };
}
