// One simulator process of bench/rollout: a slice of the seeded fleet (agent-sim
// startFleet, wall clock, short install and boot times) that reports its state
// to the parent every second over IPC and stops when asked or when the parent goes.
import { startFleet } from '../../agent-sim/fleet.ts';

export interface SimJob {
  server: string;
  enrollToken: string;
  terminals: number;
  range: { from: number; to: number };
  models: string[];
  heartbeatS: number;
  publicKey: string;
  firmware: string;
  target: string;
  rampPerSecond: number;
  installMs: number;
  bootMs: number;
  seed: number;
}

export interface SimReport {
  type: 'stats';
  terminals: number;
  online: number;
  /** Terminals by agent state (online, connecting, rebooting, offline…). */
  byState: Record<string, number>;
  /** Terminals whose installed firmware is the target version. */
  upgraded: number;
  updates: Record<string, number>;
  otaErrors: Record<string, number>;
  errors: Record<string, number>;
  heartbeats: number;
  /** Terminals that are not online, by agent state and last error (diagnostics). */
  notOnline: Record<string, number>;
}

const job = JSON.parse(process.env.BENCH_ROLLOUT_SIM ?? 'null') as SimJob | null;
if (!job) throw new Error('bench/rollout/sim.ts is started by bench/rollout/run.ts');

const fleet = await startFleet({
  server: job.server,
  enrollToken: job.enrollToken,
  terminals: job.terminals,
  range: job.range,
  models: job.models,
  heartbeatS: job.heartbeatS,
  publicKey: job.publicKey,
  firmware: job.firmware,
  stateDir: null,
  seed: job.seed,
  rampPerSecond: job.rampPerSecond,
  enrollConcurrency: 64,
  installMs: job.installMs,
  bootMs: job.bootMs,
});

function report(): SimReport {
  const s = fleet.stats();
  let upgraded = 0;
  const notOnline: Record<string, number> = {};
  for (const a of fleet.agents) {
    if (a.firmware === job!.target) upgraded++;
    if (a.state === 'online') continue;
    const key = `${a.state}${a.lastOta ? ` ota=${a.lastOta.state}` : ''}${a.lastError ? `: ${a.lastError.message.slice(0, 80)}` : ''}`;
    notOnline[key] = (notOnline[key] ?? 0) + 1;
  }
  return {
    type: 'stats',
    terminals: s.terminals,
    online: s.online,
    byState: s.byState as Record<string, number>,
    upgraded,
    updates: s.updates,
    otaErrors: s.otaErrors,
    errors: s.errorsByCode,
    heartbeats: s.heartbeats,
    notOnline,
  };
}

const send = () => {
  if (process.connected) process.send?.(report());
};
const timer = setInterval(send, 1_000);
send();

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  clearInterval(timer);
  // Terminals close their links cleanly; a stuck stop still ends within 10 s.
  setTimeout(() => process.exit(0), 10_000).unref();
  await fleet.stop().catch(() => undefined);
  process.exit(0);
}
process.on('message', (m: { type?: string }) => {
  if (m?.type === 'stop') void stop();
});
process.on('disconnect', () => void stop());
process.on('SIGTERM', () => void stop());
// Ctrl-C reaches the whole process group; the parent decides when the simulator stops.
process.on('SIGINT', () => undefined);
