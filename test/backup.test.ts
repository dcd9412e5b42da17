// Backup and restore: a backup of a server under load (terminals heartbeating,
// a rollout running) through `posfleet backup`, restored into a fresh DATA_DIR
// and into PostgreSQL; a damaged backup refused; scheduled backups kept to a count.
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import * as tar from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../agent-sim/clock.ts';
import { startFleet, type FleetHandle } from '../agent-sim/fleet.ts';
import type { CliIo } from '../cli/io.ts';
import { runCli } from '../cli/main.ts';
import { startApp, type App } from '../server/app.ts';
import { BackupError, restoreBackup } from '../server/backups/restore.ts';
import { testConfig, type Config } from '../server/config.ts';
import { createDb } from '../server/db/index.ts';
import { migrateToLatest } from '../server/db/migrator.ts';
import { ManualClock } from '../server/lib/clock.ts';
import { randomChars } from '../server/lib/ids.ts';
import type { TestApp } from './helpers/app.ts';
import { dbKind } from './helpers/db.ts';
import { RUN_ID, withDatabase } from './helpers/pg-names.ts';
import { rolloutKit, versionBase, type Kit } from './helpers/rollout-kit.ts';

const PG_URL = process.env.DATABASE_URL;

async function backupWithCli(t: TestApp, out: string): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env: { POSFLEET_URL: t.app.baseUrl, POSFLEET_TOKEN: t.adminToken, HOME: tmpdir() },
    fetch: (input, init) => fetch(input, init),
    readSecret: async () => '',
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  };
  const code = await runCli(['backup', '--out', out], io);
  return { code, stdout, stderr };
}

/** A fresh PostgreSQL database of this run (dropped by the global teardown). */
async function freshPgDatabase(url: string): Promise<string> {
  const name = `posfleet_t${RUN_ID}_restore_${randomChars(6).toLowerCase()}`;
  const admin = new pg.Client({ connectionString: withDatabase(url, 'postgres') });
  await admin.connect();
  await admin.query(`create database "${name}"`).finally(() => admin.end());
  return withDatabase(url, name);
}

/** The test helpers' view of an app started here on a database of its own. */
function asTestApp(app: App, adminToken: string): TestApp {
  const api: TestApp['api'] = async (method, path, body, token = adminToken) => {
    const res = await fetch(`${app.baseUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
  };
  return { app, adminToken, api, stop: () => app.stop() };
}

/** Heartbeat seqs per terminal and boot, in order. */
function bySession(rows: { device_id: string; boot_id: string; seq: number }[]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const r of rows) {
    const key = `${r.device_id}/${r.boot_id}`;
    out.set(key, [...(out.get(key) ?? []), r.seq]);
  }
  return out;
}

const sha = (buf: Buffer) => createHash('sha256').update(buf).digest('hex');

async function download(app: { baseUrl: string }, artifactId: string, device: { id: string; password: string }) {
  const res = await fetch(`${app.baseUrl}/api/v1/artifacts/${artifactId}/download`, {
    headers: { authorization: `Bearer ${device.id}:${device.password}` },
  });
  expect(res.status).toBe(200);
  return sha(Buffer.from(await res.arrayBuffer()));
}

describe(`backup and restore (${dbKind()})`, () => {
  let t: TestApp;
  let kit: Kit;
  let fleet: FleetHandle;
  let artifactId: string;
  let rolloutId: string;
  let hookId: string;
  let ticketId: string;
  let file: string;
  let sourceHeartbeats: Map<string, number[]>;
  const serverClock = new ManualClock(Date.now());
  const simClock = manualClock(Date.now());
  const tag = `bk${randomChars(6)}`;

  let own: Awaited<ReturnType<typeof createDb>>;
  beforeAll(async () => {
    // A database of its own: the shared test database holds artifacts whose files live in other tests' DATA_DIRs.
    own = PG_URL
      ? await createDb({ databaseUrl: await freshPgDatabase(PG_URL) })
      : await createDb({ pgliteDir: 'memory://' });
    await migrateToLatest(own.db);
    const adminToken = `test-admin-${randomChars(24)}`;
    const config = testConfig({ dataDir: mkdtempSync(join(tmpdir(), 'posfleet-bksrc-')), adminToken });
    t = asTestApp(await startApp(config, { db: own, clock: serverClock, schedule: false }), adminToken);
    kit = await rolloutKit(t);
    const n = versionBase();
    const m = await t.api('POST', '/api/v1/merchants', { name: `backup ${tag}`, timezone: 'Europe/Berlin' });
    const tok = await t.api('POST', '/api/v1/enrollment-tokens', { merchantId: m.body.id, tags: [tag] });
    fleet = await startFleet({
      server: t.app.baseUrl,
      enrollToken: tok.body.token,
      terminals: 12,
      seed: n,
      clock: simClock,
      stateDir: null,
      rampPerSecond: 0,
      publicKey: kit.publicKeyPem,
      firmware: `1.${n}.0`,
      models: ['T2'],
    });
    await fleet.started;
    await fleet.waitForOnline(12, 60_000);
    const target = await kit.release(`2.${n}.0`, ['T2']);
    artifactId = target.id;
    const cohort = await t.api('POST', '/api/v1/cohorts', { name: `c-${tag}`, filter: { tags: [tag] } });
    const rollout = await t.api('POST', '/api/v1/rollouts', {
      name: 'during backup',
      artifactId,
      cohortId: cohort.body.id,
      waves: [{ percent: 25 }, { percent: 100 }],
      soakMinutes: 0,
      maxInFlight: 3,
    });
    expect(rollout.status).toBe(201);
    rolloutId = rollout.body.id;
    const hook = await t.api('POST', '/api/v1/hooks', { url: 'http://127.0.0.1:9/h', events: ['rollout.completed'] });
    hookId = hook.body.id;
    const ticket = await t.api('POST', '/api/v1/tickets', {
      deviceId: fleet.agents[0].deviceId,
      kind: 'repair',
      title: 'backup test',
    });
    expect(ticket.status, JSON.stringify(ticket.body)).toBe(201);
    ticketId = ticket.body.id;

    // Load while the backup runs: every terminal heartbeats, the rollout engine ticks.
    let backingUp = true;
    const load = (async () => {
      for (let i = 0; backingUp && i < 2000; i++) {
        fleet.heartbeatNow();
        await t.app.rollouts.engine.tick();
        await simClock.advance(1_000);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    file = join(mkdtempSync(join(tmpdir(), 'posfleet-bk-')), 'fleet.tar.gz');
    const run = await backupWithCli(t, file);
    backingUp = false;
    await load;
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain('backup: 100%');
    // What the source holds now, after the backup point: the restored heartbeats must be a prefix of it.
    await t.app.health.ingest.drain();
    const rows = await t.app.db
      .selectFrom('heartbeats')
      .select(['device_id', 'boot_id', 'seq'])
      .where(
        'device_id',
        'in',
        fleet.agents.map((a) => a.deviceId!),
      )
      .orderBy('device_id')
      .orderBy('boot_id')
      .orderBy('seq')
      .execute();
    sourceHeartbeats = bySession(rows);
  }, 240_000);
  afterAll(async () => {
    await fleet?.stop();
    await t?.stop();
    await own?.close();
  });

  /** Starts a server on restored data and checks everything the backup promised came back. */
  async function checkRestored(config: Readonly<Config>, db?: Awaited<ReturnType<typeof createDb>>) {
    const app = await startApp(config, { schedule: false, db });
    try {
      const api = async (path: string) => {
        const res = await fetch(`${app.baseUrl}/api/v1${path}`, {
          headers: { authorization: `Bearer ${t.adminToken}` },
        });
        expect(res.status, path).toBe(200);
        return res.json() as Promise<any>;
      };
      const devices = await api(`/devices?tag=${tag}&limit=100`);
      expect(devices.items.map((d: { id: string }) => d.id).sort()).toEqual(fleet.agents.map((a) => a.deviceId).sort());
      // Heartbeats up to the backup point: per terminal, a prefix of what the source has now, nothing invented.
      const restored = await app.db
        .selectFrom('heartbeats')
        .select(['device_id', 'boot_id', 'seq'])
        .where(
          'device_id',
          'in',
          fleet.agents.map((a) => a.deviceId!),
        )
        .orderBy('device_id')
        .orderBy('boot_id')
        .orderBy('seq')
        .execute();
      expect(restored.length).toBeGreaterThan(12);
      for (const [session, seqs] of bySession(restored)) {
        const source = sourceHeartbeats.get(session);
        expect(source, session).toBeDefined();
        expect(source!.slice(0, seqs.length), session).toEqual(seqs);
      }
      expect((await api(`/rollouts/${rolloutId}`)).id).toBe(rolloutId);
      expect((await api(`/tickets/${ticketId}`)).title).toBe('backup test');
      expect((await api(`/hooks/${hookId}`)).id).toBe(hookId);
      // The artifact's bytes, served by the restored server to a restored terminal.
      const agent = fleet.agents[0];
      const creds = { id: agent.deviceId!, password: agent.identity!.mqtt.password };
      expect(await download(app, artifactId, creds)).toBe(await download(t.app, artifactId, creds));
      // The keys travelled: signed download URLs of the source verify on the restored server.
      for (const key of ['url-signing.key', 'hooks.key']) {
        const src = join(t.app.config.dataDir, key);
        let source: Buffer | undefined;
        try {
          source = readFileSync(src);
        } catch {
          continue; // this key was never made on the source
        }
        expect(readFileSync(join(config.dataDir, key)).equals(source), key).toBe(true);
      }
    } finally {
      await app.stop();
    }
  }

  it('restores into a fresh DATA_DIR (PGlite), verified, and the restored server serves it all', async () => {
    const dataDir = join(mkdtempSync(join(tmpdir(), 'posfleet-rs-')), 'data');
    const lines: string[] = [];
    const config = testConfig({ dataDir, adminToken: t.adminToken, databaseUrl: undefined });
    const report = await restoreBackup(file, {
      config,
      force: false,
      say: (l) => {
        lines.push(l);
        if (process.env.BK_DEBUG) console.error(new Date().toISOString(), l);
      },
    });
    if (process.env.BK_DEBUG) console.error(new Date().toISOString(), 'restored');
    expect(report.target).toBe('pglite');
    expect(report.rows).toBeGreaterThan(100);
    expect(lines.join('\n')).toMatch(/checksums match[\s\S]*they match the backup/);
    await checkRestored(config);
    // Restoring again into the same, no longer empty, DATA_DIR is refused unless --force.
    await expect(restoreBackup(file, { config, force: false, say: () => undefined })).rejects.toThrow(/is not empty/);
    const again = await restoreBackup(file, { config, force: true, say: () => undefined });
    expect(again.rows).toBe(report.rows);
  }, 300_000);

  if (PG_URL) {
    it('restores into an empty PostgreSQL database, refusing a non-empty one without --force', async () => {
      const databaseUrl = await freshPgDatabase(PG_URL);
      const dataDir = join(mkdtempSync(join(tmpdir(), 'posfleet-rs-')), 'data');
      const config = testConfig({ dataDir, adminToken: t.adminToken, databaseUrl });
      const report = await restoreBackup(file, { config, force: false, say: () => undefined });
      expect(report.target).toBe('postgres');
      await checkRestored(config);
      const second = testConfig({ dataDir: mkdtempSync(join(tmpdir(), 'posfleet-rs-')), databaseUrl });
      await expect(restoreBackup(file, { config: second, force: false, say: () => undefined })).rejects.toThrow(
        /database at DATABASE_URL is not empty/,
      );
    }, 300_000);

    it('moves an embedded (PGlite) server to PostgreSQL', async () => {
      const handle = await createDb({ pgliteDir: 'memory://' });
      await migrateToLatest(handle.db);
      const app = await startApp(
        testConfig({ dataDir: mkdtempSync(join(tmpdir(), 'posfleet-pgl-')), adminToken: t.adminToken }),
        {
          db: handle,
          schedule: false,
        },
      );
      const src = asTestApp(app, t.adminToken);
      const m = await fetch(`${app.baseUrl}/api/v1/merchants`, {
        method: 'POST',
        headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'moving shop', timezone: 'Europe/Paris' }),
      });
      expect(m.status).toBe(201);
      const out = join(mkdtempSync(join(tmpdir(), 'posfleet-bk-')), 'pglite.tar.gz');
      expect((await backupWithCli(src, out)).code).toBe(0);
      await app.stop();
      await handle.close();
      const manifest = await readManifest(out);
      expect(manifest.source).toBe('pglite');
      const databaseUrl = await freshPgDatabase(PG_URL);
      const config = testConfig({ dataDir: mkdtempSync(join(tmpdir(), 'posfleet-rs-')), databaseUrl });
      const report = await restoreBackup(out, { config, force: false, say: () => undefined });
      expect(report.target).toBe('postgres');
      const check = new pg.Client({ connectionString: databaseUrl });
      await check.connect();
      const names = await check.query(`select name from merchants`).finally(() => check.end());
      expect(names.rows.map((r) => r.name)).toEqual(['moving shop']);
    }, 300_000);
  }

  async function readManifest(path: string) {
    const dir = mkdtempSync(join(tmpdir(), 'posfleet-mf-'));
    await tar.extract({ file: path, cwd: dir });
    return JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
  }

  it('refuses a damaged backup with a clear error, and writes nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'posfleet-bad-'));
    const target = () =>
      testConfig({ dataDir: join(mkdtempSync(join(tmpdir(), 'posfleet-rs-')), 'data'), databaseUrl: undefined });
    // Bytes flipped in the compressed stream.
    const bytes = readFileSync(file);
    const flipped = Buffer.from(bytes);
    for (let i = 0; i < 8; i++) flipped[Math.floor(bytes.length / 2) + i] ^= 0xff;
    writeFileSync(join(dir, 'flipped.tar.gz'), flipped);
    // Cut short.
    writeFileSync(join(dir, 'short.tar.gz'), bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    // A well-formed archive whose rows were edited: only the manifest's checksum can tell.
    const unpacked = join(dir, 'unpacked');
    await mkdir(unpacked);
    await tar.extract({ file, cwd: unpacked });
    const devicesFile = join(unpacked, 'db', 'devices.jsonl');
    await writeFile(devicesFile, (await readFile(devicesFile, 'utf8')).replace(/"model": "T2"/, '"model": "T9"'));
    await tar.create({ gzip: true, cwd: unpacked, file: join(dir, 'edited.tar.gz') }, await readdir(unpacked));
    writeFileSync(join(dir, 'not-a-backup.tar.gz'), 'hello');

    const cases: [string, RegExp][] = [
      ['flipped.tar.gz', /is damaged or not a posfleet backup/],
      ['short.tar.gz', /is damaged or not a posfleet backup/],
      ['edited.tar.gz', /is damaged: db\/devices\.jsonl does not match its checksum/],
      ['not-a-backup.tar.gz', /is damaged or not a posfleet backup/],
      ['missing.tar.gz', /does not exist/],
    ];
    for (const [name, message] of cases) {
      const config = target();
      const err = await restoreBackup(join(dir, name), { config, force: false, say: () => undefined }).catch((e) => e);
      expect(err, name).toBeInstanceOf(BackupError);
      expect((err as Error).message, name).toMatch(message);
      expect(() => readdirSync(config.dataDir), name).toThrow(); // DATA_DIR never made
    }
  });

  it('keeps the newest BACKUP_KEEP scheduled backups in BACKUP_DIR', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'posfleet-sched-')), 'backups');
    const made: string[] = [];
    for (let i = 0; i < 3; i++) {
      made.push((await t.app.backups.scheduled(dir, 2)).file);
      serverClock.advance(60_000);
    }
    const left = (await readdir(dir)).sort();
    expect(left).toEqual(made.slice(1).map((f) => f.slice(dir.length + 1)));
  });
});
