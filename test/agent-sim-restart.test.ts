// agent-sim as docker-compose runs it: restarted with its state volume it
// reconnects as the same terminals and reuses its merchants; restarted without
// it, merchants are still found by name, and serials the server already holds
// are a real failure that ends the process non-zero.
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startTestApp, type TestApp } from './helpers/app.ts';
import { dbKind } from './helpers/db.ts';

const SIM = join(import.meta.dirname, '..', 'agent-sim', 'cli.ts');

/** Runs agent-sim; once `ready` holds (polled), stops it with SIGTERM as `docker compose stop` would. */
function sim(
  args: string[],
  ready?: () => Promise<boolean>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', SIM, ...args], { env: { PATH: process.env.PATH } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    let exited = false;
    child.on('exit', (code) => {
      exited = true;
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    if (ready)
      void (async () => {
        while (!exited && !(await ready())) await new Promise((r) => setTimeout(r, 100));
        if (!exited) child.kill('SIGTERM');
      })();
  });
}

describe(`agent-sim restarts (${dbKind()})`, { timeout: 300_000 }, () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t?.stop());

  it('re-enrols idempotently with its state, and fails non-zero on serials taken without it', async () => {
    const seed = String(100_000 + Math.floor(Math.random() * 1_000_000));
    const state = mkdtempSync(join(tmpdir(), 'posfleet-sim-'));
    const args = ['--server', t.app.baseUrl, '--admin-token', t.adminToken, '--terminals', '3', '--merchants', '2'];
    const online = async () => {
      const res = await t.api('GET', '/api/v1/devices?tag=agent-sim&limit=500');
      const mine = res.body.items.filter((d: { serial: string }) => d.serial.startsWith(`sim${seed}`));
      return mine.length === 3 && mine.every((d: { connected: boolean }) => d.connected);
    };
    const run = (dir: string, ready?: () => Promise<boolean>) =>
      sim([...args, '--seed', seed, '--state-dir', dir, '--json'], ready);
    const merchantCount = async () => (await t.api('GET', '/api/v1/merchants?limit=500')).body.items.length as number;

    const first = await run(state, online);
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout).counters.enrolled, first.stdout).toBe(3);
    const merchants = await merchantCount();

    await eventually(async () => !(await online())); // the first run's sessions are gone
    const second = await run(state, online);
    expect(second.code, second.stderr).toBe(0);
    expect(JSON.parse(second.stdout).counters.enrolled).toBe(0); // the same terminals, from the state dir
    // It was stopped only once all three were connected again: the same three devices, none added.
    const devices = (await t.api('GET', '/api/v1/devices?tag=agent-sim&limit=500')).body.items.filter(
      (d: { serial: string }) => d.serial.startsWith(`sim${seed}`),
    );
    expect(devices).toHaveLength(3);
    expect(await merchantCount()).toBe(merchants); // found by name, not made again

    const lost = await run(mkdtempSync(join(tmpdir(), 'posfleet-sim-')));
    expect(lost.code).toBe(1);
    expect(lost.stderr).toMatch(/3 terminals failed for good \(.*enroll_serial_taken 3/);
    expect(await merchantCount()).toBe(merchants);
  });
});
