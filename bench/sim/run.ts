// What one simulator process costs: N terminals (default 10,000) at a 30 s
// heartbeat against a local aedes broker in a separate process. Prints CPU
// (cores = CPU seconds per wall second) and RSS over a measured span, and
// (bench/machine.ts) the machine, who else used its CPU, and the reference
// workload before and after.
//   npx tsx bench/sim/run.ts --terminals 10000 --heartbeat 30s --span 90s
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseDuration } from '../../agent-sim/clock.ts';
import { startFleet } from '../../agent-sim/fleet.ts';
import { startRun } from '../machine.ts';

const { values: v } = parseArgs({
  options: {
    terminals: { type: 'string', default: process.env.BENCH_TERMINALS ?? '10000' },
    heartbeat: { type: 'string', default: process.env.BENCH_HEARTBEAT ?? '30s' },
    span: { type: 'string', default: process.env.BENCH_SPAN ?? '90s' },
    warmup: { type: 'string', default: '15s' },
    ramp: { type: 'string', default: '1000' },
    profile: { type: 'string' },
  },
});
const terminals = Number(v.terminals);
const heartbeatS = Math.round(parseDuration(v.heartbeat!) / 1000);
const mb = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const run = await startRun('sim');
const broker = fork(fileURLToPath(new URL('./broker.ts', import.meta.url)), [], {
  env: { ...process.env, BENCH_HEARTBEAT_S: String(heartbeatS) },
});
const far = await new Promise<{ enrollUrl: string; token: string }>((resolve) =>
  broker.once('message', (m) => resolve(m as never)),
);
console.log(`bench/sim: ${terminals} terminals, heartbeat ${heartbeatS}s, broker in pid ${broker.pid}`);

const t0 = Date.now();
const fleet = await startFleet({
  server: far.enrollUrl,
  enrollToken: far.token,
  terminals,
  heartbeatS,
  stateDir: null,
  rampPerSecond: Number(v.ramp),
  enrollConcurrency: 64,
  profiles: v.profile,
  seed: 1,
});
await fleet.waitForOnline(terminals, 10 * 60_000);
console.log(`all ${terminals} online after ${((Date.now() - t0) / 1000).toFixed(1)} s; warming up ${v.warmup}`);
await sleep(parseDuration(v.warmup!));

const spanMs = parseDuration(v.span!);
const cpu0 = process.cpuUsage();
const wall0 = performance.now();
const hb0 = fleet.counters.heartbeats;
let maxRss = 0;
for (let left = spanMs; left > 0; left -= 1_000) {
  await sleep(Math.min(1_000, left));
  maxRss = Math.max(maxRss, process.memoryUsage.rss());
}
const wallS = (performance.now() - wall0) / 1000;
const cpu = process.cpuUsage(cpu0);
const cores = (cpu.user + cpu.system) / 1e6 / wallS;
const mem = process.memoryUsage();
const stats = fleet.stats();
console.log(
  [
    `span ${wallS.toFixed(1)} s: online ${stats.online}/${terminals}, heartbeats/s ${((fleet.counters.heartbeats - hb0) / wallS).toFixed(1)}, errors ${stats.errors}`,
    `CPU  ${cores.toFixed(3)} cores (user ${(cpu.user / 1e6).toFixed(1)} s, system ${(cpu.system / 1e6).toFixed(1)} s)`,
    `RSS  ${mb(mem.rss)} now, ${mb(maxRss)} peak; heap used ${mb(mem.heapUsed)}`,
    `goal < 0.5 core and < 1 GiB: ${cores < 0.5 && maxRss < 2 ** 30 ? 'met' : 'NOT met'}`,
  ].join('\n'),
);
await fleet.stop();
broker.disconnect();
await run.finish([{ label: 'simulator CPU', value: cores, unit: 'cores', kind: 'cost', against: 'node', digits: 3 }]);
process.exit(0);
