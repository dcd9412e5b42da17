// `npm run demo`: start posfleet on its embedded defaults, enrol 200 simulated
// terminals over several merchants and timezones, and print where to look.
// Ctrl-C stops the fleet first, then the server.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startFleet } from './fleet.ts';
import { statusLine, summaryText } from './stats.ts';

const PORT = Number(process.env.PORT ?? 8080);
const DATA_DIR = process.env.DATA_DIR ?? './data';
const BASE = `http://127.0.0.1:${PORT}`;
const TERMINALS = Number(process.env.DEMO_TERMINALS ?? 200);

function startServer(): ChildProcess {
  // Its own process group: Ctrl-C reaches the demo alone, which stops the terminals before the server.
  const child = spawn('npx', ['tsx', 'server/cli.ts', 'serve'], { stdio: ['ignore', 'pipe', 'inherit'], env: process.env, detached: true });
  process.on('exit', () => { if (child.exitCode === null && child.pid) process.kill(-child.pid, 'SIGTERM'); });
  // Server logs are JSON lines; only the first few go to the screen to keep the demo readable.
  let shown = 0;
  child.stdout?.on('data', (chunk: Buffer) => {
    if (shown++ < 5) process.stdout.write(chunk);
  });
  child.on('exit', (code) => {
    if (!stopping) { console.error(`posfleet exited with code ${code}`); process.exit(1); }
  });
  return child;
}

async function waitReady(timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${BASE}/readyz`)).status === 200) return;
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`posfleet did not become ready on ${BASE}/readyz within ${timeoutMs / 1000} s`);
}

async function adminToken(): Promise<{ token: string; where: string }> {
  if (process.env.POSFLEET_ADMIN_TOKEN) return { token: process.env.POSFLEET_ADMIN_TOKEN, where: 'the POSFLEET_ADMIN_TOKEN environment variable' };
  const file = join(DATA_DIR, 'admin-token');
  for (let i = 0; i < 40; i++) {
    try {
      return { token: (await readFile(file, 'utf8')).trim(), where: file };
    } catch { await new Promise((r) => setTimeout(r, 250)); }
  }
  throw new Error(`no admin token: set POSFLEET_ADMIN_TOKEN or let posfleet write ${file}`);
}

function guide(where: string): string {
  const auth = `-H "Authorization: Bearer $(cat ${where.includes('/') ? where : '<token>'})"`;
  return `
posfleet demo is running: ${TERMINALS} simulated terminals over several merchants and timezones.

  API docs        ${BASE}/docs   (OpenAPI: ${BASE}/openapi.json)
  metrics         ${BASE}/metrics
  admin token     ${where}

  curl -s ${auth} ${BASE}/api/v1/devices?limit=5
  curl -s ${auth} ${BASE}/api/v1/merchants
  curl -s ${auth} -X POST -H 'content-type: application/json' \\
       -d '{"type":"diagnostics","params":{}}' ${BASE}/api/v1/devices/<deviceId>/commands

Ctrl-C stops the terminals and the server.
`;
}

let stopping = false;

async function main(): Promise<void> {
  console.log(`starting posfleet (HTTP ${PORT}, MQTT ${process.env.MQTT_PORT ?? 1883}, data in ${DATA_DIR})…`);
  const server = startServer();
  await waitReady();
  const { token, where } = await adminToken();
  const fleet = await startFleet({
    server: BASE, adminToken: token, terminals: TERMINALS, merchants: 8, seed: 7, speed: 60,
    profiles: 'failing-printer@0.05,degrading-battery@0.05,flaky-network@0.05,reader-wear@0.05,tamper@0.01',
    stateDir: join(DATA_DIR, 'agent-sim'), rampPerSecond: 100,
  });
  await fleet.started;
  console.log(guide(where));
  const timer = setInterval(() => console.log(statusLine(fleet.stats(), 0).replace('hb/s 0.0 | ', '')), 15_000);
  const stop = async () => {
    if (stopping) process.exit(130);
    stopping = true;
    clearInterval(timer);
    console.log(summaryText(await fleet.stop()));
    const exited = new Promise((r) => server.once('exit', r));
    if (server.pid) process.kill(-server.pid, 'SIGTERM');
    await exited;
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

main().catch((err: Error) => {
  console.error(`demo: ${err.message}`);
  process.exit(1);
});
