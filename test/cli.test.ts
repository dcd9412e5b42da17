// The operator CLI against a live in-process server: login and contexts, each
// command group, --json shapes, exit codes, upload progress, rollouts watch.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../agent-sim/clock.ts';
import { startFleet, type FleetHandle } from '../agent-sim/fleet.ts';
import type { CliIo } from '../cli/io.ts';
import { allCommands, buildProgram, runCli } from '../cli/main.ts';
import { Ctx } from '../cli/context.ts';
import { EXIT } from '../cli/exit-codes.ts';
import { buildSampleRelease } from '../firmware/samples.ts';
import { ManualClock } from '../server/lib/clock.ts';
import { randomChars } from '../server/lib/ids.ts';
import { connectDevice, enrollDevice, startTestApp, type TestApp } from './helpers/app.ts';
import { dbKind } from './helpers/db.ts';
import { publish, settle } from './helpers/health.ts';
import { drive, rolloutKit, versionBase, type Kit } from './helpers/rollout-kit.ts';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  requests: string[];
}

/** A CLI run in this process with its own streams, environment and a fetch that records each request. */
async function cli(
  argv: string[],
  env: Record<string, string | undefined>,
  opts: { secret?: string; ttyErr?: boolean } = {},
): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const requests: string[] = [];
  const io: CliIo = {
    stdout: { write: (s: string) => (stdout += s), isTTY: false },
    stderr: { write: (s: string) => (stderr += s), isTTY: opts.ttyErr ?? false, columns: 120 },
    env,
    fetch: (input, init) => {
      requests.push(`${init?.method ?? 'GET'} ${String(input)}`);
      return fetch(input, init);
    },
    readSecret: async () => opts.secret ?? '',
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  };
  const code = await runCli(argv, io);
  return { code, stdout, stderr, requests };
}

const json = <T = any>(run: Run): T => {
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as T;
};

describe(`posfleet CLI (${dbKind()})`, () => {
  let t: TestApp;
  let kit: Kit;
  let home: string;
  let env: Record<string, string | undefined>;
  const serverClock = new ManualClock(Date.parse('2026-03-10T12:00:00Z'));
  const simClock = manualClock(Date.parse('2026-03-10T12:00:00Z'));
  const fleets: FleetHandle[] = [];

  beforeAll(async () => {
    t = await startTestApp({ clock: serverClock });
    kit = await rolloutKit(t);
    home = mkdtempSync(join(tmpdir(), 'posfleet-cli-'));
    // Operator commands run as in CI (POSFLEET_URL and POSFLEET_TOKEN); the login test has its own config.
    env = { HOME: home, XDG_CONFIG_HOME: join(home, 'ops'), POSFLEET_URL: t.app.baseUrl, POSFLEET_TOKEN: t.adminToken };
  }, 120_000);
  afterAll(async () => {
    for (const f of fleets) await f.stop();
    await t?.stop();
  });

  it('prints help for every command and subcommand, and does nothing else', async () => {
    const paths = allCommands(buildProgram(new Ctx({} as CliIo))).map((c) => c.path);
    expect(paths.length).toBeGreaterThan(40);
    const before = readdirSync(home, { recursive: true }).sort();
    const cwdBefore = readdirSync(process.cwd()).sort();
    for (const path of [[], ...paths]) {
      const run = await cli([...path, '--help'], env);
      expect(run.code, path.join(' ')).toBe(0);
      expect(run.stdout, path.join(' ')).toContain('Usage: posfleet');
      expect(run.requests, path.join(' ')).toEqual([]);
    }
    expect(readdirSync(home, { recursive: true }).sort()).toEqual(before);
    expect(readdirSync(process.cwd()).sort()).toEqual(cwdBefore);
    expect((await cli(['--version'], env)).stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('the real binary: --help of serve, migrate, restore and firmware pack starts nothing and writes no file', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'posfleet-cli-cwd-'));
    const bin = join(import.meta.dirname, '..', 'bin', 'posfleet.js');
    for (const args of [
      ['serve', '--help'],
      ['migrate', '--help'],
      ['restore', '--help'],
      ['firmware', 'pack', '--help'],
    ]) {
      const run = await new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(process.execPath, [bin, ...args], { cwd, env: { PATH: process.env.PATH, PORT: '1' } });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.on('exit', (code) => resolve({ code, out }));
      });
      expect(run.code, args.join(' ')).toBe(0);
      expect(run.out, args.join(' ')).toContain('Usage: posfleet');
    }
    expect(readdirSync(cwd)).toEqual([]);
  }, 120_000);

  it('logs in with POSFLEET_TOKEN, keeps contexts in a 0600 file, never prints the key', async () => {
    const url = t.app.baseUrl;
    const env = { HOME: home, XDG_CONFIG_HOME: join(home, 'config') };
    expect((await cli(['devices', 'list'], env)).code).toBe(EXIT.auth);
    const bad = await cli(['login', '--url', url], { ...env, POSFLEET_TOKEN: 'pfk_wrong-key-0000000000' });
    expect(bad.code).toBe(EXIT.auth);

    const login = await cli(['login', '--url', url], { ...env, POSFLEET_TOKEN: t.adminToken });
    expect(login.code, login.stderr).toBe(0);
    const file = join(home, 'config', 'posfleet', 'config.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(login.stdout + login.stderr).not.toContain(t.adminToken);

    // A second context with a viewer key, typed at the prompt.
    const viewer = await t.api('POST', '/api/v1/api-keys', { name: 'cli viewer', role: 'viewer' });
    const second = await cli(['login', '--url', url, '--name', 'ro'], env, { secret: viewer.body.token });
    expect(second.code, second.stderr).toBe(0);
    const contexts = json<{ current: string; contexts: { name: string; url: string }[] }>(
      await cli(['context', 'list', '--json'], env),
    );
    expect(contexts.current).toBe('ro');
    expect(contexts.contexts.map((c) => c.name).sort()).toEqual(['default', 'ro']);
    expect(JSON.stringify(contexts)).not.toContain(viewer.body.token);
    // The viewer may read but not create keys: exit 3; --context picks the admin one.
    expect((await cli(['keys', 'create', '--name', 'x', '--role', 'viewer'], env)).code).toBe(EXIT.auth);
    expect((await cli(['keys', 'list', '--context', 'default', '--json'], env)).code).toBe(0);
    expect((await cli(['context', 'use', 'default'], env)).code).toBe(0);
    expect(readFileSync(file, 'utf8')).toContain('"current": "default"');
  });

  it('devices list|show|command, with --json shapes and exit codes', async () => {
    const d = await enrollDevice(t, { model: 'T2' });
    const list = json<{ items: { id: string }[]; nextCursor: string | null }>(
      await cli(['devices', 'list', '--serial', d.serial, '--json'], env),
    );
    expect(list.items.map((x) => x.id)).toEqual([d.deviceId]);
    expect(list).toHaveProperty('nextCursor', null);
    const table = await cli(['devices', 'list', '--serial', d.serial], env);
    expect(table.stdout).toMatch(/^ID\s+SERIAL\s+MODEL\s+STATUS/);
    expect(table.stdout).toContain(d.serial);
    expect(table.stdout).not.toContain('\x1b['); // no colour off a terminal

    const shown = json(await cli(['devices', 'show', d.deviceId, '--json'], env));
    expect(shown).toMatchObject({ id: d.deviceId, serial: d.serial, health: { presence: expect.any(String) } });
    expect((await cli(['devices', 'show', 'dev_nope'], env)).code).toBe(EXIT.notFound);

    const cmd = json(await cli(['devices', 'command', d.deviceId, 'ping', '--ttl', '10m', '--json'], env));
    expect(cmd).toMatchObject({ id: expect.any(String), type: 'ping', state: expect.any(String) });
    const wrong = await cli(['devices', 'command', d.deviceId, 'explode'], env);
    expect(wrong.code).toBe(EXIT.failed);
    expect(wrong.stderr).toContain('400');
    expect((await cli(['devices', 'frobnicate'], env)).code).toBe(EXIT.usage);
  });

  it('alerts list|ack|resolve and tickets list|show|update', async () => {
    const d = await enrollDevice(t);
    const client = await connectDevice(t.app, d);
    await publish(client, `fleet/${d.deviceId}/heartbeat`, {
      v: 1,
      seq: 1,
      bootId: 'b1',
      ts: serverClock.nowMs(),
      firmware: '1.0.0',
      apps: {},
      security: { tamper: true },
    });
    await settle(t);
    client.end(true);
    const alerts = json<{ items: { id: string; ruleId: string; state: string }[] }>(
      await cli(['alerts', 'list', '--device', d.deviceId, '--json'], env),
    );
    const alert = alerts.items.find((a) => a.ruleId === 'rule_tamper')!;
    expect(alert.state).toBe('open');
    expect(json(await cli(['alerts', 'ack', alert.id, '--json'], env))).toMatchObject({ state: 'acknowledged' });
    expect((await cli(['alerts', 'resolve', alert.id], env)).stdout).toContain('resolved');

    const tickets = json<{ items: { id: string }[] }>(
      await cli(['tickets', 'list', '--device', d.deviceId, '--json'], env),
    );
    expect(tickets.items).toHaveLength(1);
    const id = tickets.items[0].id;
    expect(json(await cli(['tickets', 'show', id, '--json'], env))).toMatchObject({ id, warranty: expect.any(Object) });
    const updated = json(
      await cli(
        [
          'tickets',
          'update',
          id,
          '--state',
          'scheduled',
          '--assignee',
          'Ana',
          '--scheduled-for',
          '2026-03-11T09:00:00Z',
          '--json',
        ],
        env,
      ),
    );
    expect(updated).toMatchObject({ state: 'scheduled', assignee: 'Ana' });
    expect((await cli(['tickets', 'update', id], env)).code).toBe(EXIT.usage);
    expect((await cli(['tickets', 'show', id], env)).stdout).toMatch(/state:\s+scheduled/);
  });

  it('inspections run|show, hooks list|deliveries, keys create|list|revoke', async () => {
    const run = json<{ id: string; devices: number }>(await cli(['inspections', 'run', '--json'], env));
    const latest = json<{ id: string; results: unknown[] }>(await cli(['inspections', 'show', '--json'], env));
    expect(latest.id).toBe(run.id);
    expect(Array.isArray(latest.results)).toBe(true);

    const hook = await t.api('POST', '/api/v1/hooks', { url: 'http://127.0.0.1:9/hook', events: ['device.enrolled'] });
    expect(hook.status).toBe(201);
    await t.api('POST', `/api/v1/hooks/${hook.body.id}/test`);
    const hooks = json<{ items: { id: string }[] }>(await cli(['hooks', 'list', '--all', '--json'], env));
    expect(hooks.items.map((h) => h.id)).toContain(hook.body.id);
    const deliveries = json<{ items: { eventType: string }[] }>(
      await cli(['hooks', 'deliveries', hook.body.id, '--json'], env),
    );
    expect(deliveries.items.map((x) => x.eventType)).toContain('hook.ping');

    const created = await cli(
      ['keys', 'create', '--name', `ci ${randomChars(4)}`, '--role', 'operator', '--json'],
      env,
    );
    const key = json<{ id: string; token: string }>(created);
    expect(key.token).toMatch(/^pfk_/);
    expect(
      json<{ items: { id: string }[] }>(await cli(['keys', 'list', '--all', '--json'], env)).items.map((k) => k.id),
    ).toContain(key.id);
    expect((await cli(['keys', 'revoke', key.id], env)).code).toBe(0);
    expect((await cli(['keys', 'revoke', key.id], env)).code).toBe(EXIT.notFound);

    // Other tests share this database: no inspection newer than theirs, no endpoint collecting their events.
    await t.api('DELETE', `/api/v1/hooks/${hook.body.id}`);
    await t.app.db.deleteFrom('inspection_reports').where('id', '=', run.id).execute();
  });

  it('uploads an artifact with a progress bar that reaches 100 %, lists and withdraws it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'posfleet-cli-rel-'));
    const rel = await buildSampleRelease({
      dir,
      component: 'firmware',
      version: `9.${versionBase()}.0`,
      models: ['T2'],
      sizeBytes: 3 * 1024 * 1024,
      key: kit.keys.privateKeyPath,
    });
    // On a terminal: cli-progress bars (stderr).
    const up = await cli(['artifacts', 'upload', rel.out, '--json'], env, { ttyErr: true });
    const artifact = json<{ id: string; size: number }>(up);
    expect(up.stderr).toContain('100%');
    expect(up.stderr).toMatch(/MiB\/s|KiB\/s/);
    expect(artifact.size).toBe(3 * 1024 * 1024);
    // In a log: plain lines, the last one at 100 %.
    const rel2 = await buildSampleRelease({
      dir,
      component: 'firmware',
      version: `9.${versionBase()}.1`,
      models: ['T2'],
      sizeBytes: 3 * 1024 * 1024,
      key: kit.keys.privateKeyPath,
    });
    const plain = await cli(['artifacts', 'upload', rel2.out], env);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stderr.trim().split('\n').at(-1)).toMatch(/: 100% 3\.\d+ MiB of 3\.\d+ MiB/);
    expect(plain.stdout).toMatch(/^uploaded firmware 9\.\d+\.1 for T2 as \S+/);
    // The same version again is refused by the server: exit 1 with its reason.
    const again = await cli(['artifacts', 'upload', rel.out], env);
    expect(again.code).toBe(EXIT.failed);
    expect(again.stderr).toContain('409');

    const list = json<{ items: { id: string }[] }>(
      await cli(['artifacts', 'list', '--model', 'T2', '--all', '--json'], env),
    );
    expect(list.items.map((a) => a.id)).toContain(artifact.id);
    expect((await cli(['artifacts', 'withdraw', artifact.id], env)).code).toBe(0);
    expect((await cli(['artifacts', 'withdraw', artifact.id], env)).code).toBe(EXIT.notFound);
    expect((await cli(['artifacts', 'upload', join(dir, 'missing.pkg')], env)).code).toBe(EXIT.usage);
  });

  async function fleetOf(n: number, tag: string, from: string, profiles?: string): Promise<FleetHandle> {
    const m = await t.api('POST', '/api/v1/merchants', { name: `cli ${tag}`, timezone: 'Europe/Berlin' });
    const tok = await t.api('POST', '/api/v1/enrollment-tokens', { merchantId: m.body.id, tags: [tag] });
    const f = await startFleet({
      server: t.app.baseUrl,
      enrollToken: tok.body.token,
      terminals: n,
      seed: versionBase(),
      clock: simClock,
      stateDir: null,
      rampPerSecond: 0,
      publicKey: kit.publicKeyPem,
      firmware: from,
      models: ['T2'],
      profiles,
    });
    fleets.push(f);
    await f.started;
    await f.waitForOnline(n, 60_000);
    return f;
  }

  async function watchWhileDriving(id: string): Promise<Run> {
    const watching = cli(['rollouts', 'watch', id, '--interval', '100ms'], env);
    let finished = false;
    void watching.then(() => (finished = true));
    await drive({
      t: () => t,
      serverClock,
      simClock,
      serverStepMs: 60_000,
      simStepMs: 5_000,
      maxSteps: 300,
      done: async () => finished,
    });
    return watching;
  }

  it('rollouts plan|create, and watch exits 0 when the rollout completes', async () => {
    const n = versionBase();
    const tag = `cli${randomChars(6)}`;
    await fleetOf(4, tag, `1.${n}.0`);
    const target = await kit.release(`2.${n}.0`, ['T2']);
    const cohort = await t.api('POST', '/api/v1/cohorts', { name: `c-${tag}`, filter: { tags: [tag] } });
    const spec = ['--artifact', target.id, '--cohort', cohort.body.id, '--waves', '50,100', '--soak', '0s'];
    const plan = json<Record<string, unknown>>(await cli(['rollouts', 'plan', ...spec, '--json'], env));
    expect(JSON.stringify(plan)).toContain('4');
    const created = json<{ id: string; state: string; waves: unknown[] }>(
      await cli(['rollouts', 'create', ...spec, '--name', 'cli rollout', '--json'], env),
    );
    expect(created.waves).toHaveLength(2);
    const watched = await watchWhileDriving(created.id);
    expect(watched.code, watched.stderr).toBe(0);
    expect(watched.stderr).toMatch(/wave 1 \(50%\)/);
    expect(watched.stderr).toMatch(/wave 2 \(100%\) \S+ 2\/2/);
    expect(watched.stdout).toMatch(/completed: succeeded 4/);
    expect(json(await cli(['rollouts', 'show', created.id, '--json'], env))).toMatchObject({ state: 'completed' });
  }, 180_000);

  it('rollouts watch exits non-zero when the rollout fails, and pause|resume|cancel steer one', async () => {
    const n = versionBase();
    const tag = `clf${randomChars(6)}`;
    await fleetOf(4, tag, `1.${n}.0`, 'install-fail:1');
    const target = await kit.release(`2.${n}.0`, ['T2']);
    const cohort = await t.api('POST', '/api/v1/cohorts', { name: `c-${tag}`, filter: { tags: [tag] } });
    const created = json<{ id: string }>(
      await cli(
        [
          ...['rollouts', 'create', '--artifact', target.id, '--cohort', cohort.body.id, '--soak', '0s'],
          ...[
            '--on-failure',
            'rollback',
            '--failure-threshold',
            '0.2',
            '--min-finished',
            '1',
            '--retries',
            '0',
            '--json',
          ],
        ],
        env,
      ),
    );
    const watched = await watchWhileDriving(created.id);
    expect(watched.code).toBe(EXIT.failed);
    expect(watched.stdout).toMatch(/failed: .*failure threshold/);

    // Steering: a draft started, paused, resumed, then cancelled; watch then exits 1 at once.
    const target2 = await kit.release(`3.${n}.0`, ['T2']);
    const draft = json<{ id: string; state: string }>(
      await cli(
        ['rollouts', 'create', '--artifact', target2.id, '--cohort', cohort.body.id, '--no-start', '--json'],
        env,
      ),
    );
    expect(draft.state).toBe('draft');
    for (const [verb, state] of [
      ['start', 'running'],
      ['pause', 'paused'],
      ['resume', 'running'],
      ['cancel', 'cancelled'],
    ]) {
      const r = json<{ state: string }>(await cli(['rollouts', verb, draft.id, '--json'], env));
      expect(r.state, verb).toBe(state);
    }
    expect((await cli(['rollouts', 'watch', draft.id], env)).code).toBe(EXIT.failed);
  }, 180_000);

  it('says when the server cannot be reached (exit 5), and wait-ready waits for /readyz', async () => {
    const down = await cli(['devices', 'list'], { ...env, POSFLEET_URL: 'http://127.0.0.1:9', POSFLEET_TOKEN: 'x' });
    expect(down.code).toBe(EXIT.unreachable);
    expect(down.stderr).toMatch(/cannot reach http:\/\/127\.0\.0\.1:9/);
    expect((await cli(['wait-ready', '--url', t.app.baseUrl], env)).code).toBe(0);
    const never = await cli(['wait-ready', '--url', 'http://127.0.0.1:9', '--timeout', '500ms'], env);
    expect(never.code).toBe(EXIT.unreachable);
  });

  it('prints bash and zsh completion scripts that the shells accept', async () => {
    for (const shell of ['bash', 'zsh']) {
      const run = await cli(['completion', shell], env);
      expect(run.code).toBe(0);
      expect(run.stdout).toContain('rollouts');
      expect(run.stdout).toContain('watch');
      const dir = mkdtempSync(join(tmpdir(), 'posfleet-comp-'));
      const file = join(dir, `c.${shell}`);
      await import('node:fs/promises').then((fs) => fs.writeFile(file, run.stdout));
      const which = await new Promise<number | null>((r) =>
        spawn('sh', ['-c', `command -v ${shell}`]).on('exit', (code) => r(code)),
      );
      if (which !== 0) continue; // zsh is not installed everywhere; bash always is
      const check = await new Promise<number | null>((r) => spawn(shell, ['-n', file]).on('exit', (code) => r(code)));
      expect(check, shell).toBe(0);
    }
    expect((await cli(['completion', 'fish'], env)).code).toBe(EXIT.usage);
  });
});
