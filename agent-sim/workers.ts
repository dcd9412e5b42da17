// Above one process's open-file limit (~19,000) a fleet is spread over child
// processes. Each child runs `startFleet` for a slice of the same seeded plan
// and reports its stats over IPC; the parent adds them up for the status line.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startFleet, type FleetOptions } from './fleet.ts';
import { mergeStats, type FleetStats } from './stats.ts';

export const WORKER_ENV = 'AGENT_SIM_WORKER';
type WorkerOptions = Omit<FleetOptions, 'clock' | 'publicKey'> & { publicKey?: string | null };
type ToParent = { type: 'stats'; stats: FleetStats } | { type: 'summary'; stats: FleetStats };

export interface WorkerPool {
  stats(): FleetStats;
  stop(): Promise<FleetStats>;
}

export function spawnWorkers(opts: WorkerOptions, perProcess: number): WorkerPool {
  const cli = fileURLToPath(new URL('./cli.ts', import.meta.url));
  const latest: FleetStats[] = [];
  const children: ChildProcess[] = [];
  for (let from = 0, i = 0; from < opts.terminals; from += perProcess, i++) {
    const range = { from, to: Math.min(opts.terminals, from + perProcess) };
    const child = fork(cli, ['--worker'], {
      env: { ...process.env, [WORKER_ENV]: JSON.stringify({ ...opts, range }) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child.on('message', (m: ToParent) => {
      latest[i] = m.stats;
    });
    children.push(child);
  }
  return {
    stats: () => mergeStats(latest.filter(Boolean)),
    async stop() {
      await Promise.all(
        children.map(
          (child) =>
            new Promise<void>((resolve) => {
              if (child.exitCode !== null) return resolve();
              child.once('exit', () => resolve());
              child.send({ type: 'stop' });
              // A worker that does not answer within 15 s is ended, so Ctrl-C always returns.
              setTimeout(() => child.kill('SIGKILL'), 15_000).unref();
            }),
        ),
      );
      return mergeStats(latest.filter(Boolean));
    },
  };
}

/** The child side: run a slice, report every second, stop on request or when the parent goes. */
export async function runWorker(): Promise<void> {
  const opts = JSON.parse(process.env[WORKER_ENV] ?? '{}') as WorkerOptions;
  const fleet = await startFleet(opts);
  const send = (msg: ToParent) => {
    if (process.connected) process.send?.(msg);
  };
  const timer = setInterval(() => send({ type: 'stats', stats: fleet.stats() }), 1_000);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    clearInterval(timer);
    const summary = await fleet.stop();
    send({ type: 'summary', stats: summary });
    process.disconnect?.();
    process.exit(0);
  };
  process.on('message', (m: { type?: string }) => {
    if (m?.type === 'stop') void stop();
  });
  process.on('disconnect', () => void stop());
  // The parent handles Ctrl-C for the whole process group; the child waits for its 'stop'.
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => void stop());
}
