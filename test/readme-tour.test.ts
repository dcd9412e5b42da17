// The README's five-minute tour, run as written on a fresh DATA_DIR: its code
// blocks joined into one bash script. Only the ports (8080, 1884) and ./data
// are replaced, so the run never meets another server on this machine.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dbKind } from './helpers/db.ts';

const ROOT = join(import.meta.dirname, '..');

/** The ```sh blocks between "## Five-minute tour" and the next section. */
function tourScript(readme: string): string {
  const start = readme.indexOf('## Five-minute tour');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]).join('\n');
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

describe(`the README tour (${dbKind()})`, () => {
  it('runs as written on a fresh DATA_DIR', async () => {
    const script = tourScript(readFileSync(join(ROOT, 'README.md'), 'utf8'));
    expect(script).toContain('wait-ready');
    const [http, mqtt] = [await freePort(), await freePort()];
    const dataDir = join(mkdtempSync(join(tmpdir(), 'posfleet-tour-')), 'data');
    const body = script
      .replaceAll('localhost:8080', `localhost:${http}`)
      .replaceAll('1884', String(mqtt))
      .replaceAll('data/admin-token', `${dataDir}/admin-token`)
      .replaceAll('/tmp/creds.json', `${dataDir}-creds.json`);
    // The server started in the background is stopped the way an operator would: SIGTERM to npm.
    const full = `set -euo pipefail\nexport DATA_DIR=${dataDir} PORT=${http} LOG_FORMAT=json\ntrap 'kill -TERM %1 2>/dev/null; wait' EXIT\n${body}`;
    const run = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn('bash', ['-c', full], { cwd: ROOT, env: { ...process.env, DATABASE_URL: '' } });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, out });
      });
    });
    expect(run.code, run.out.slice(-3000)).toBe(0);
    // What the tour promises along the way.
    expect(run.out).toContain('is ready');
    expect(run.out).toMatch(/"status":\s*"active"/);
    expect(run.out).toMatch(/"state":\s*"succeeded"/);
    expect(run.out).toMatch(/"action":\s*"command\.created"|"action":\s*"device\.enrolled"/);
    expect(run.out).toContain('"msg":"stopped"');
  }, 300_000);
});
