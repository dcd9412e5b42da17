// Start-up and stop as an operator sees them: the real command line in a child
// process, through the launcher `npm start` and the `posfleet` command use. Problems end with one line naming the cause and a non-zero exit.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dbKind } from './helpers/db.ts';

const LAUNCHER = join(import.meta.dirname, '..', 'bin', 'posfleet.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

// A test that times out must not leave a server running behind it.
const children = new Set<ChildProcess>();
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
});

function cli(
  args: string[],
  env: Record<string, string>,
  onStdout?: (text: string, kill: (sig: NodeJS.Signals) => void) => void,
): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [LAUNCHER, ...args], {
      env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', MQTT_PORT: '0', LOG_LEVEL: 'warn', ...env },
    });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      onStdout?.(stdout, (sig) => child.kill(sig));
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('exit', (code) => {
      children.delete(child);
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const dataDir = () => mkdtempSync(join(tmpdir(), 'posfleet-start-'));
const dbEnv = (): Record<string, string> =>
  process.env.DATABASE_URL ? { DATABASE_URL: process.env.DATABASE_URL } : {};

// Each case starts a real process (tsx, then the embedded database): allow for a slow machine.
describe(`start-up and stop (${dbKind()})`, { timeout: 120_000 }, () => {
  it('refuses a bad setting with one line naming it', async () => {
    const run = await cli(['serve'], { PORT: 'eighty', DATA_DIR: dataDir() });
    expect(run.code).toBe(1);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toContain('PORT');
  });

  it('refuses an unreachable database with one line', async () => {
    const run = await cli(['serve'], { DATA_DIR: dataDir(), DATABASE_URL: 'postgres://nobody@127.0.0.1:1/nothing' });
    expect(run.code).toBe(1);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toContain('cannot reach DATABASE_URL');
  });

  it('refuses a DATA_DIR it cannot write', async () => {
    const file = join(dataDir(), 'a-file');
    writeFileSync(file, 'x');
    const run = await cli(['serve'], { DATA_DIR: join(file, 'sub') });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^posfleet: DATA_DIR .* is not writable/);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('refuses a taken MQTT port with one line naming it', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      const run = await cli(['serve'], { ...dbEnv(), DATA_DIR: dataDir(), MQTT_PORT: String(port) });
      expect(run.code).toBe(1);
      expect(run.stderr.trim()).toBe(`posfleet: MQTT_PORT ${port} is already in use on 127.0.0.1`);
    } finally {
      blocker.close();
    }
  });

  it('starts, becomes ready, writes the admin token 0600, and stops on SIGTERM with exit 0', async () => {
    const dir = dataDir();
    let ready = false;
    let asked = false;
    const run = await cli(['serve'], { ...dbEnv(), DATA_DIR: dir }, (out, kill) => {
      const m = /HTTP on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (!m || asked) return;
      asked = true;
      fetch(`http://127.0.0.1:${m[1]}/readyz`).then(
        (res) => {
          ready = res.status === 200;
          kill('SIGTERM');
        },
        () => kill('SIGTERM'),
      );
    });
    expect(ready).toBe(true);
    expect(run.code).toBe(0);
    if (!process.env.DATABASE_URL) {
      expect(run.stdout).toContain('generated an admin API key');
      expect(statSync(join(dir, 'admin-token')).mode & 0o777).toBe(0o600);
    }
  });

  it('migrates with `posfleet migrate`', async () => {
    const run = await cli(['migrate'], { ...dbEnv(), DATA_DIR: dataDir() });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/migrated 2026-11-25T1200-foundation: Success|database schema is up to date/);
  });
});
