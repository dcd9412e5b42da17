// `npm run demo`: start posfleet on its embedded defaults, enrol 200 simulated
// terminals over several merchants and timezones, publish a signed sample
// firmware and roll it out to them in waves, and print where to look.
// Ctrl-C stops the fleet first, then the server.
//
// Settings (environment): PORT, MQTT_PORT, HOST, DATA_DIR as for the server
// (they are passed on to it), DEMO_TERMINALS (200), DEMO_WAVES ("10,50,100"),
// DEMO_SOAK_MINUTES (1), DEMO_ROLLOUT=0 to skip the release and rollout.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import {
  activeDemoRollout,
  DemoApi,
  DEMO_TAG,
  ensureCohort,
  ensurePublisherKey,
  getRollout,
  isFinal,
  progressLine,
  publishFirmware,
  startRollout,
  targetVersion,
  trustKey,
  type PublisherKey,
  type RolloutView,
} from './demo-rollout.ts';
import { startFleet, type FleetHandle } from './fleet.ts';
import { statusLine, summaryText } from './stats.ts';

const PORT = Number(process.env.PORT || 8080);
const MQTT_PORT = Number(process.env.MQTT_PORT || 1883);
const HOST = process.env.HOST || '0.0.0.0';
const DATA_DIR = process.env.DATA_DIR || './data';
const BASE = `http://127.0.0.1:${PORT}`;
const SHOWN_BASE = `http://localhost:${PORT}`;
const TERMINALS = Number(process.env.DEMO_TERMINALS || 200);
const WAVES = (process.env.DEMO_WAVES || '10,50,100').split(',').map(Number);
const SOAK_MINUTES = Number(process.env.DEMO_SOAK_MINUTES || 1);
const ROLLOUT = !['0', 'false', 'no'].includes(process.env.DEMO_ROLLOUT ?? '');
const PROGRESS_MS = 5_000;

let stopping = false;
let server: ChildProcess | undefined;
let fleet: FleetHandle | undefined;
const timers: NodeJS.Timeout[] = [];
const t0 = Date.now();
const elapsed = () => {
  const s = Math.round((Date.now() - t0) / 1000);
  return `[${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}]`;
};

/** Why a port cannot be ours, or null. Something answering on loopback counts too:
 *  a broker bound to 127.0.0.1 would take the terminals' connections. */
async function portProblem(port: number): Promise<string | null> {
  if (port === 0) return null;
  const answering = await new Promise<boolean>((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.setTimeout(1_000);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
  });
  if (answering) return `something already listens on 127.0.0.1:${port}`;
  const err = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
    const srv = createServer();
    srv.once('error', resolve);
    srv.listen(port, HOST, () => srv.close(() => resolve(null)));
  });
  return err ? `cannot listen on ${HOST}:${port} (${err.code ?? err.message})` : null;
}

async function checkPorts(): Promise<void> {
  const mqtt = await portProblem(MQTT_PORT);
  if (mqtt) {
    throw new Error(
      `MQTT port ${MQTT_PORT} is taken: ${mqtt}. Another MQTT broker (Mosquitto?) may be running; ` +
        `pick a free port: MQTT_PORT=${MQTT_PORT === 1884 ? 1885 : 1884} npm run demo`,
    );
  }
  const http = await portProblem(PORT);
  if (http)
    throw new Error(
      `HTTP port ${PORT} is taken: ${http}. Pick a free port: PORT=${PORT === 8081 ? 8082 : 8081} npm run demo`,
    );
}

function startServer(): ChildProcess {
  // Its own process group: Ctrl-C reaches the demo alone, which stops the terminals before the server.
  const env = { ...process.env, PORT: String(PORT), MQTT_PORT: String(MQTT_PORT), DATA_DIR };
  const child = spawn('npx', ['tsx', 'server/cli.ts', 'serve'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env,
    detached: true,
  });
  process.on('exit', () => {
    if (child.exitCode === null && child.pid) process.kill(-child.pid, 'SIGTERM');
  });
  // Server logs are JSON lines; only the first few go to the screen to keep the demo readable.
  let shown = 0;
  child.stdout?.on('data', (chunk: Buffer) => {
    if (shown++ < 5) process.stdout.write(chunk);
  });
  child.on('exit', (code) => {
    if (!stopping) {
      console.error(`posfleet exited with code ${code} (its messages are above)`);
      process.exit(1);
    }
  });
  return child;
}

async function waitReady(timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${BASE}/readyz`)).status === 200) return;
    } catch {
      /* not listening yet */
    }
    await sleep(250);
  }
  throw new Error(`posfleet did not become ready on ${BASE}/readyz within ${timeoutMs / 1000} s`);
}

async function adminToken(): Promise<{ token: string; where: string; shell: string }> {
  if (process.env.POSFLEET_ADMIN_TOKEN) {
    return {
      token: process.env.POSFLEET_ADMIN_TOKEN,
      where: 'the POSFLEET_ADMIN_TOKEN environment variable',
      shell: 'TOKEN=$POSFLEET_ADMIN_TOKEN',
    };
  }
  const file = join(DATA_DIR, 'admin-token');
  for (let i = 0; i < 40; i++) {
    try {
      return { token: (await readFile(file, 'utf8')).trim(), where: file, shell: `TOKEN=$(cat ${file})` };
    } catch {
      await sleep(250);
    }
  }
  throw new Error(`no admin token: set POSFLEET_ADMIN_TOKEN or let posfleet write ${file}`);
}

function guide(o: { where: string; shell: string; rollout?: RolloutView; key?: PublisherKey }): string {
  const api = `${SHOWN_BASE}/api/v1`;
  const c = 'curl -s -H "Authorization: Bearer $TOKEN"';
  return `
posfleet demo is running: ${TERMINALS} simulated terminals over several merchants and timezones.

  API docs        ${SHOWN_BASE}/docs   (OpenAPI: ${SHOWN_BASE}/openapi.json)
  metrics         ${SHOWN_BASE}/metrics
  admin token     ${o.where}
  MQTT            mqtt://localhost:${MQTT_PORT}
  data            ${DATA_DIR}  (terminal identities in ${join(DATA_DIR, 'agent-sim')})${
    o.key
      ? `
  publisher key   ${o.key.dir}  (key id ${o.key.keyId})`
      : ''
  }

  ${o.shell}
  ${c} '${api}/devices?limit=5'
  ${c} '${api}/alerts?limit=5'
  ${c} ${api}/reports/fleet${
    o.rollout
      ? `
  ${c} ${api}/rollouts/${o.rollout.id}
  ${c} '${api}/rollouts/${o.rollout.id}/devices?limit=5'`
      : ''
  }
  ${c} -X POST -H 'content-type: application/json' \\
       -d '{"type":"diagnostics","params":{}}' ${api}/devices/<deviceId>/commands

Ctrl-C stops the terminals and the server.
`;
}

/** Key, artifact, cohort and rollout; null when a previous step says the server cannot do it. */
async function release(api: DemoApi, key: PublisherKey, f: FleetHandle): Promise<RolloutView | null> {
  const left = await activeDemoRollout(api);
  if (left) {
    console.log(
      `${elapsed()} a demo rollout from an earlier run is still ${left.state}: ${left.name} (${left.id}); following it`,
    );
    return left;
  }
  const version = targetVersion(f.agents.map((a) => a.firmware));
  const artifact = await publishFirmware(api, key, join(DATA_DIR, 'demo-firmware'), version);
  console.log(
    `${elapsed()} firmware ${version} for T1,T2,T3 (${Math.round(artifact.size / 1024)} KiB) signed by ${key.keyId}: ` +
      `${artifact.uploaded ? 'uploaded as' : 'already uploaded as'} ${artifact.id}`,
  );
  if (artifact.keyId !== key.keyId) {
    console.warn(
      `${elapsed()} warning: artifact ${artifact.id} was signed by key ${artifact.keyId}, not by ${key.keyId} in ${key.dir}; ` +
        'terminals will refuse it (bad_signature). Start over with a fresh DATA_DIR.',
    );
  }
  const cohort = await ensureCohort(api);
  console.log(
    `${elapsed()} cohort ${cohort.id} (every terminal tagged ${DEMO_TAG})${cohort.created ? '' : ', from an earlier run'}`,
  );
  const r = await startRollout(api, artifact, cohort.id, { waves: WAVES, soakMinutes: SOAK_MINUTES });
  console.log(
    `${elapsed()} rollout ${r.id} started: firmware ${version} to ${r.total} terminals in waves ${WAVES.join('/')} %, ` +
      `soak ${SOAK_MINUTES} min per terminal; the engine moves it every 10 s`,
  );
  return r;
}

/** Prints the rollout's state and counts every few seconds (when they change) until it ends. */
async function follow(api: DemoApi, first: RolloutView): Promise<RolloutView> {
  let r = first;
  let last = '';
  let lastAt = 0;
  for (;;) {
    const line = progressLine(r);
    if (line !== last || Date.now() - lastAt >= 30_000) {
      console.log(`${elapsed()} ${line}`);
      if (r.state === 'paused' && !last.startsWith('rollout paused')) {
        console.log(
          `${elapsed()} see ${SHOWN_BASE}/api/v1/rollouts/${r.id}/devices; resume with POST .../rollouts/${r.id}/resume or cancel with POST .../cancel`,
        );
      }
      last = line;
      lastAt = Date.now();
    }
    if (isFinal(r.state) || stopping) return r;
    await sleep(PROGRESS_MS);
    if (stopping) return r;
    try {
      r = await getRollout(api, r.id);
    } catch (err) {
      if (!stopping) console.warn(`${elapsed()} could not read the rollout: ${(err as Error).message}`);
    }
  }
}

async function stop(code = 0): Promise<void> {
  if (stopping) process.exit(130);
  stopping = true;
  for (const t of timers) clearInterval(t);
  if (fleet) {
    console.log('stopping the terminals…');
    console.log(summaryText(await fleet.stop()));
  }
  if (server?.pid && server.exitCode === null) {
    console.log('stopping posfleet…');
    const exited = new Promise((r) => server!.once('exit', r));
    process.kill(-server.pid, 'SIGTERM');
    const serverCode = await exited;
    console.log(`posfleet stopped${serverCode ? ` (exit code ${serverCode})` : ''}.`);
  }
  process.exit(code);
}

async function main(): Promise<void> {
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
  await checkPorts();
  console.log(`starting posfleet (HTTP ${PORT}, MQTT ${MQTT_PORT}, data in ${DATA_DIR})…`);
  server = startServer();
  await waitReady();
  const { token, where, shell } = await adminToken();
  const api = new DemoApi(BASE, token);

  // The publisher key comes first: terminals check update signatures against it.
  let key: PublisherKey | undefined;
  if (ROLLOUT) {
    try {
      key = await ensurePublisherKey(join(DATA_DIR, 'demo-keys'));
      const trusted = await trustKey(api, key);
      console.log(
        `${elapsed()} publisher key ${key.keyId} ${key.created ? 'generated' : 'reused'} in ${key.dir}; ${trusted} by posfleet`,
      );
    } catch (err) {
      console.warn(`${elapsed()} no release in this demo: ${(err as Error).message}`);
      key = undefined;
    }
  }

  fleet = await startFleet({
    server: BASE,
    adminToken: token,
    terminals: TERMINALS,
    merchants: 8,
    seed: 7,
    speed: 60,
    profiles: 'failing-printer@0.05,degrading-battery@0.05,flaky-network@0.05,reader-wear@0.05,tamper@0.01',
    stateDir: join(DATA_DIR, 'agent-sim'),
    rampPerSecond: 100,
    publicKey: key?.publicKeyPem ?? null,
  });
  await fleet.started;
  const want = Math.ceil(TERMINALS * 0.95);
  await fleet
    .waitForOnline(want, 90_000)
    .catch(() => console.warn(`${elapsed()} fewer than ${want} terminals online after 90 s; going on`));
  console.log(`${elapsed()} ${statusLine(fleet.stats(), 0).replace('hb/s 0.0 | ', '')}`);
  if (stopping) return;
  const f = fleet;
  timers.push(
    setInterval(() => console.log(`${elapsed()} ${statusLine(f.stats(), 0).replace('hb/s 0.0 | ', '')}`), 30_000),
  );

  let rollout: RolloutView | null = null;
  if (key) {
    try {
      rollout = await release(api, key, fleet);
    } catch (err) {
      console.warn(`${elapsed()} no rollout in this demo: ${(err as Error).message}`);
    }
  }
  console.log(guide({ where, shell, rollout: rollout ?? undefined, key }));
  if (!rollout || stopping) return;

  const end = await follow(api, rollout);
  if (stopping) return;
  const onTarget = fleet.agents.filter((a) => a.firmware === end.version).length;
  if (end.state === 'completed') {
    console.log(
      `${elapsed()} rollout completed: ${end.counts.succeeded ?? 0} succeeded, ${(end.counts.failed ?? 0) + (end.counts.timed_out ?? 0)} failed; ` +
        `${onTarget}/${TERMINALS} terminals run firmware ${end.version}.`,
    );
  } else {
    console.log(`${elapsed()} rollout ended ${end.state}${end.reason ? `: ${end.reason}` : ''}.`);
  }
  console.log('The fleet keeps running; Ctrl-C stops the terminals and the server.');
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

main().catch((err: Error) => {
  console.error(`demo: ${err.message}`);
  // Stop what was started (terminals, then the server) before leaving.
  void stop(1);
});
