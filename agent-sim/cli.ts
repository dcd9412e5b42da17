// `npm run sim -- --server URL --enroll-token TOKEN --terminals 200 …`; flags in docs/agent-sim.md.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseDuration } from './clock.ts';
import { prepareMerchantTokens, startFleet, type FleetOptions } from './fleet.ts';
import { identitySchema } from './identity.ts';
import { MODEL_NAMES } from './models.ts';
import { PROFILE_NAMES, parseProfiles } from './profiles.ts';
import { statusLine, summaryText, type FleetStats } from './stats.ts';
import { runWorker, spawnWorkers } from './workers.ts';

const HELP = `agent-sim: simulated POS terminals for posfleet

  npm run sim -- --server http://127.0.0.1:8080 --enroll-token TOKEN --terminals 200 [options]

  --server URL            posfleet HTTP base (the MQTT address comes from enrolment)
  --enroll-token TOKEN    enrolment token for every terminal
  --admin-token TOKEN     instead: create merchants in several timezones and their tokens
  --credentials FILE      instead: JSON array of identities, no enrolment
  --terminals N           number of terminals (default 10)
  --merchants N           simulated merchants (default terminals/40, 1..50)
  --models T1,T2,T3       models to draw from (known: ${MODEL_NAMES.join(', ')})
  --heartbeat 30s         factory heartbeat interval; the server's config wins
  --profile LIST          failure profiles, name[:arg][@share], comma-separated or repeated
                          (${PROFILE_NAMES.join(', ')})
  --seed N                same seed, same fleet (default 1)
  --speed X               simulated time runs X times faster for vitals (default 1)
  --state-dir DIR         where identities are kept (default .sim-state)
  --public-key FILE       publisher key (PEM) to check update signatures against
  --firmware V            version terminals start on (default 1.0.0)
  --ramp N                terminals started per second (default 500)
  --duration 10m          stop by itself after this long
  --per-process N         terminals per process before spreading over workers (default 18000)
  --json                  print the final summary as JSON
`;

function options() {
  const { values } = parseArgs({
    options: {
      server: { type: 'string' },
      'enroll-token': { type: 'string' },
      'admin-token': { type: 'string' },
      credentials: { type: 'string' },
      terminals: { type: 'string', default: '10' },
      merchants: { type: 'string' },
      models: { type: 'string' },
      heartbeat: { type: 'string', default: '30s' },
      profile: { type: 'string', multiple: true },
      seed: { type: 'string', default: '1' },
      speed: { type: 'string', default: '1' },
      'state-dir': { type: 'string', default: '.sim-state' },
      'public-key': { type: 'string' },
      firmware: { type: 'string', default: '1.0.0' },
      ramp: { type: 'string', default: '500' },
      duration: { type: 'string' },
      'per-process': { type: 'string', default: '18000' },
      json: { type: 'boolean' },
      worker: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  return values;
}

function toFleetOptions(v: ReturnType<typeof options>): FleetOptions & { publicKey?: string } {
  const num = (name: string, text: string | undefined, min: number): number => {
    const n = Number(text);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min}`);
    return n;
  };
  if (!v['enroll-token'] && !v['admin-token'] && !v.credentials)
    throw new Error('give --enroll-token, --admin-token or --credentials');
  if (!v.server && !v.credentials) throw new Error('--server is required');
  parseProfiles(v.profile);
  return {
    server: v.server,
    enrollToken: v['enroll-token'],
    adminToken: v['admin-token'],
    credentials: v.credentials
      ? identitySchema.array().parse(JSON.parse(readFileSync(v.credentials, 'utf8')))
      : undefined,
    terminals: num('terminals', v.terminals, 1),
    merchants: v.merchants ? num('merchants', v.merchants, 1) : undefined,
    models: v.models
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    heartbeatS: Math.max(5, Math.round(parseDuration(v.heartbeat!) / 1000)),
    profiles: v.profile,
    seed: num('seed', v.seed, 0),
    speed: num('speed', v.speed, 0.001),
    stateDir: v['state-dir'],
    publicKey: v['public-key'] ? readFileSync(v['public-key'], 'utf8') : undefined,
    firmware: v.firmware,
    rampPerSecond: num('ramp', v.ramp, 0),
  };
}

interface Runner {
  stats(): FleetStats;
  stop(): Promise<FleetStats>;
}

async function run(): Promise<void> {
  const v = options();
  if (v.help) {
    process.stdout.write(HELP);
    return;
  }
  if (v.worker) return runWorker();
  const opts = toFleetOptions(v);
  if (!opts.publicKey) process.stderr.write('agent-sim: no --public-key; update signatures will not be checked\n');
  const perProcess = Number(v['per-process']);
  let runner: Runner;
  if (opts.terminals > perProcess) {
    // Merchants and tokens are made once here, so workers share them.
    runner = spawnWorkers(
      { ...opts, merchantTokens: await prepareMerchantTokens(opts), adminToken: undefined },
      perProcess,
    );
  } else {
    const fleet = await startFleet(opts);
    runner = { stats: () => fleet.stats(), stop: () => fleet.stop() };
  }
  const stopStatus = showStatus(runner);
  let stopping = false;
  const finish = async (exitCode = 0) => {
    if (stopping) {
      process.stderr.write('\nagent-sim: forced exit\n');
      process.exit(130);
    }
    stopping = true;
    stopStatus();
    process.stderr.write('\nagent-sim: stopping…\n');
    const summary = await runner.stop();
    process.stdout.write(v.json ? `${JSON.stringify(summary)}\n` : `${summaryText(summary)}\n`);
    process.exit(exitCode);
  };
  // A terminal that failed for good (an enrolment the server refuses, no credentials) is a real
  // failure: say why and exit non-zero, so a container or CI step does not look healthy.
  const failures = setInterval(() => {
    const s = runner.stats();
    const failed = s.byState.failed ?? 0;
    if (failed === 0 || stopping) return;
    clearInterval(failures);
    const why = Object.entries(s.errorsByCode)
      .map(([code, n]) => `${code} ${n}`)
      .join(', ');
    process.stderr.write(`\nagent-sim: ${failed} terminals failed for good (${why})\n`);
    void finish(1);
  }, 1_000);
  failures.unref();
  process.on('SIGINT', () => void finish());
  process.on('SIGTERM', () => void finish());
  if (v.duration) setTimeout(() => void finish(), parseDuration(v.duration));
}

/** One line redrawn in place on a terminal; a plain line every 10 s otherwise (logs, CI). */
function showStatus(runner: Runner): () => void {
  const tty = process.stderr.isTTY;
  let last = { at: Date.now(), heartbeats: 0 };
  const timer = setInterval(
    () => {
      const s = runner.stats();
      const now = Date.now();
      const rate = ((s.heartbeats - last.heartbeats) * 1000) / Math.max(1, now - last.at);
      last = { at: now, heartbeats: s.heartbeats };
      const line = statusLine(s, rate);
      process.stderr.write(
        tty
          ? `\r\x1b[2K${line.slice(0, (process.stderr.columns ?? 200) - 1)}`
          : `${new Date(now).toISOString()} ${line}\n`,
      );
    },
    tty ? 1_000 : 10_000,
  );
  return () => clearInterval(timer);
}

run().catch((err: Error) => {
  process.stderr.write(`agent-sim: ${err.message}\n`);
  process.exit(1);
});
