// Start-up and stop as an operator sees them: the real command line in a child
// process, through the launcher `npm start` and the `posfleet` command use. Problems end with one line naming the cause and a non-zero exit.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dbKind, sharedDbUrl } from './helpers/db.ts';

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
      env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', MQTT_PORT: '0', LOG_LEVEL: 'info', ...env },
    });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      onStdout?.(stdout, (sig) => child.kill(sig));
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 150_000);
    child.on('exit', (code) => {
      children.delete(child);
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const dataDir = () => mkdtempSync(join(tmpdir(), 'posfleet-start-'));

/** The HTTP port from the JSON `posfleet ready` line, once it is there. */
function readyPort(out: string): number | undefined {
  const line = out.split('\n').find((l) => l.includes('"posfleet ready"'));
  return line ? (JSON.parse(line) as { http: number }).http : undefined;
}

/**
 * What a second server could have touched: the entries of DATA_DIR and the lock
 * (the first server's pid). The embedded database's own files are left out: the
 * first server keeps writing them.
 */
function snapshot(dir: string): string {
  const lock = existsSync(join(dir, 'posfleet.lock')) ? readFileSync(join(dir, 'posfleet.lock'), 'utf8') : '';
  return `${readdirSync(dir).sort().join(' ')}\nlock: ${lock}`;
}

// On PostgreSQL the servers use this worker's own database, never the machine's.
let pgUrl: string | undefined;
beforeAll(async () => {
  pgUrl = await sharedDbUrl();
});
const dbEnv = (): Record<string, string> => (pgUrl ? { DATABASE_URL: pgUrl } : {});

// Each case starts a real process (tsx, then the embedded database): allow for a slow machine.
describe(`start-up and stop (${dbKind()})`, { timeout: 300_000 }, () => {
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

  it('refuses an unusable DATA_DIR of any kind with one line, without hanging', async () => {
    const file = join(dataDir(), 'a-file');
    writeFileSync(file, 'x');
    // Node's recursive mkdir spins forever under /proc; /sys refuses; a file cannot hold a directory.
    for (const dir of ['/proc/x', '/proc/x/y', '/sys/x', join(file, 'sub'), file]) {
      const run = await cli(['serve'], { ...dbEnv(), DATA_DIR: dir });
      expect(run.code, dir).toBe(1);
      expect(run.stderr, dir).toMatch(/^posfleet: DATA_DIR .* is not (usable|writable)/);
      expect(run.stderr.trim().split('\n'), dir).toHaveLength(1);
    }
  });

  for (const setting of ['MQTT_PORT', 'PORT'] as const) {
    it(`refuses a taken ${setting} with one line, before DATA_DIR is touched`, async () => {
      const blocker = createServer();
      await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
      const port = (blocker.address() as { port: number }).port;
      const dir = join(dataDir(), 'not-yet');
      try {
        const run = await cli(['serve'], { ...dbEnv(), DATA_DIR: dir, [setting]: String(port) });
        expect(run.code).toBe(1);
        expect(run.stderr.trim()).toBe(`posfleet: ${setting} ${port} is already in use on 127.0.0.1`);
        expect(run.stdout).not.toContain('admin');
        expect(existsSync(dir)).toBe(false);
      } finally {
        blocker.close();
      }
    });
  }

  it('refuses a second server on the same DATA_DIR in one line, without touching it', async () => {
    const dir = dataDir();
    let second: Run | undefined;
    let before = '';
    let afterSecond = '';
    const first = await cli(['serve'], { DATA_DIR: dir }, (out, kill) => {
      if (before || !readyPort(out)) return;
      before = snapshot(dir);
      void cli(['serve'], { DATA_DIR: dir }).then((run) => {
        second = run;
        afterSecond = snapshot(dir);
        kill('SIGTERM');
      });
    });
    expect(first.code).toBe(0);
    expect(second?.code).toBe(1);
    expect(second?.stderr.trim()).toMatch(/^posfleet: DATA_DIR .* is in use by another posfleet \(pid \d+\)/);
    expect(second?.stderr.trim().split('\n')).toHaveLength(1);
    expect(afterSecond).toBe(before);
    expect(existsSync(join(dir, 'posfleet.lock'))).toBe(false); // released by the clean stop
  });

  it('logs JSON lines only when stdout is not a terminal, and never the admin key', async () => {
    const dir = dataDir();
    const run = await cli(['serve'], { DATA_DIR: dir, LOG_LEVEL: 'info' }, (out, kill) => {
      if (readyPort(out) && out.includes('generated an admin API key')) kill('SIGTERM');
    });
    expect(run.code).toBe(0);
    const lines = run.stdout.trim().split('\n');
    for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow();
    const token = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
    expect(run.stdout).not.toContain(token);
    expect(lines.map((l) => JSON.parse(l).msg)).toContain('generated an admin API key; read it from the file');
  });

  it('with LOG_FORMAT=pretty prints readable lines and the admin key once, after writing its file', async () => {
    const dir = dataDir();
    let fileWhenShown: boolean | undefined;
    const run = await cli(['serve'], { DATA_DIR: dir, LOG_LEVEL: 'info', LOG_FORMAT: 'pretty' }, (out, kill) => {
      if (fileWhenShown !== undefined || !/pfk_\S+/.test(out)) return;
      fileWhenShown = existsSync(join(dir, 'admin-token'));
      kill('SIGTERM');
    });
    expect(run.code).toBe(0);
    expect(fileWhenShown).toBe(true);
    const token = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
    expect(run.stdout.split(token)).toHaveLength(2); // shown exactly once
    expect(run.stdout).toMatch(/INFO.*posfleet ready/);
    for (const line of run.stdout.trim().split('\n')) expect(line.startsWith('{'), line).toBe(false);
  });

  it('starts, becomes ready, writes the admin token 0600, and stops on SIGTERM with exit 0', async () => {
    const dir = dataDir();
    let ready = false;
    let asked = false;
    const run = await cli(['serve'], { ...dbEnv(), DATA_DIR: dir }, (out, kill) => {
      const port = readyPort(out);
      if (!port || asked) return;
      asked = true;
      fetch(`http://127.0.0.1:${port}/readyz`).then(
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
      expect(run.stdout).toContain('"msg":"stopped"');
      expect(statSync(join(dir, 'admin-token')).mode & 0o777).toBe(0o600);
    }
  });

  it('migrates with `posfleet migrate`', async () => {
    const run = await cli(['migrate'], { ...dbEnv(), DATA_DIR: dataDir() });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/migrated 2026-11-25T1200-foundation: Success|database schema is up to date/);
  });
});

// `npm start` is a chain: npm → (sh exec) launcher → server in its own process group. Whichever
// process a stop signal reaches, the server stops cleanly once and the chain ends.
describe('stop signals through the npm start chain', { timeout: 300_000 }, () => {
  function npmStart(dir: string): Promise<{ child: ChildProcess; out: () => string; serverPid: number }> {
    const child = spawn('npm', ['start', '--silent'], {
      cwd: join(import.meta.dirname, '..'),
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/root',
        HOST: '127.0.0.1',
        PORT: '0',
        MQTT_PORT: '0',
        LOG_LEVEL: 'info',
        DATA_DIR: dir,
      },
      detached: true, // its own process group, as a terminal's foreground job is
    });
    children.add(child);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    return new Promise((resolve, reject) => {
      const timer = setInterval(() => {
        const line = out.split('\n').find((l) => l.includes('"posfleet ready"'));
        if (line) {
          clearInterval(timer);
          const { pid } = JSON.parse(line) as { pid: number };
          if (!Number.isInteger(pid) || pid === child.pid) return reject(new Error(`no server pid in: ${line}`));
          resolve({ child, out: () => out, serverPid: pid });
        }
      }, 50);
      child.once('exit', (code) => {
        clearInterval(timer);
        reject(new Error(`npm start exited with ${code} before ready:\n${out}`));
      });
    });
  }

  const gone = async (pid: number): Promise<boolean> => {
    for (let i = 0; i < 1200; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        return true;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return false;
  };

  const cases: [string, (s: { child: ChildProcess; serverPid: number }) => void][] = [
    ['SIGTERM to npm', (s) => s.child.kill('SIGTERM')],
    ['Ctrl-C to the whole foreground group', (s) => process.kill(-s.child.pid!, 'SIGINT')],
    ['SIGTERM to the server itself', (s) => process.kill(s.serverPid, 'SIGTERM')],
  ];
  for (const [name, send] of cases) {
    it(`stops cleanly on ${name}`, async () => {
      const dir = dataDir();
      const s = await npmStart(dir);
      send(s);
      expect(await gone(s.serverPid)).toBe(true);
      await new Promise<void>((r) => (s.child.exitCode !== null ? r() : s.child.once('exit', () => r())));
      children.delete(s.child);
      expect(s.out()).toContain('"msg":"stopped"');
      expect(s.out().split('"msg":"stopping"')).toHaveLength(2); // one stop, not a second signal's hard exit
      expect(existsSync(join(dir, 'posfleet.lock'))).toBe(false);
    });
  }
});
