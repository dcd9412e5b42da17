import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runFirmwareCommand } from './cli.ts';
import { makeFixture, type Fixture } from './test-helpers.ts';

let fx: Fixture;
beforeEach(async () => {
  fx = await makeFixture(5_000);
});
afterEach(() => fx.cleanup());

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runFirmwareCommand(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

function packArgs(dir: string, ...extra: string[]): string[] {
  return [
    'pack',
    '--component',
    'firmware',
    '--version',
    '2.5.0',
    '--models',
    'T2,T3',
    '--payload',
    join(dir, 'firmware-2.4.0.bin'),
    '--key',
    join(dir, 'k', 'publisher.key'),
    '--out',
    join(dir, 'out.pkg'),
    ...extra,
  ];
}

describe('firmware CLI', () => {
  it('keygen → pack → verify round trip', async () => {
    const keygen = await run('keygen', '--out', join(fx.dir, 'k'));
    expect(keygen.code).toBe(0);
    expect(keygen.out).toMatch(/key id [0-9a-f]{16}/);
    expect((await stat(join(fx.dir, 'k', 'publisher.key'))).mode & 0o777).toBe(0o600);

    const pack = await run(
      ...packArgs(
        fx.dir,
        '--requires',
        'app:payment>=5.0.0',
        '--requires',
        'app:pin ^1.2.0,app:emv>=3',
        '--notes',
        'fixes',
      ),
    );
    expect(pack).toMatchObject({ code: 0, err: '' });
    expect(pack.out).toContain('requires  app:payment >=5.0.0');

    const verify = await run('verify', join(fx.dir, 'out.pkg'), '--pub', join(fx.dir, 'k', 'publisher.pub'));
    expect(verify.code).toBe(0);
    expect(verify.out).toMatch(/^OK .*out\.pkg/);
    expect(verify.out).toContain('version   2.5.0');
    expect(verify.out).toContain('requires  app:emv >=3');
  });

  it('verify prints each problem and exits 1', async () => {
    const bytes = await readFile(fx.release.out);
    bytes[bytes.length - 1] ^= 0xff;
    await writeFile(fx.release.out, bytes);
    const wrongKey = await run('keygen', '--out', join(fx.dir, 'other'));
    expect(wrongKey.code).toBe(0);
    const tampered = await run('verify', fx.release.out, '--pub', fx.keys.publicKeyPath);
    expect(tampered.code).toBe(1);
    expect(tampered.err).toMatch(/^FAIL .*\n {2}sha256_mismatch: payload sha256 is [0-9a-f]{64}, manifest says/);
    const other = await run('verify', fx.release.out, '--pub', join(fx.dir, 'other', 'publisher.pub'));
    expect(other.err).toContain('key_id_mismatch: signed by key');
    expect(other.err).toContain('sha256_mismatch');
  });

  it('explains bad pack flags with exit code 2', async () => {
    await run('keygen', '--out', join(fx.dir, 'k'));
    const semver = await run(...packArgs(fx.dir).map((a) => (a === '2.5.0' ? '2.5' : a)));
    expect(semver.code).toBe(2);
    expect(semver.err).toContain('--version "2.5": must be a semantic version such as 2.4.0');
    const range = await run(...packArgs(fx.dir, '--requires', 'firmware>=two'));
    expect(range.err).toContain('--requires (requires.firmware): must be a semver range');
    const comp = await run(...packArgs(fx.dir, '--requires', 'bootloader>=1.0.0'));
    expect(comp.err).toContain('component must be "firmware" or "app:<name>"');
    const self = await run(...packArgs(fx.dir, '--requires', 'firmware>=1.0.0'));
    expect(self.err).toContain('cannot require its own component');
    const past = await run(...packArgs(fx.dir, '--expires', '2001-01-01T00:00:00Z'));
    expect(past.err).toContain('--expires 2001-01-01T00:00:00Z is in the past');
    const missing = await run('pack', '--component', 'firmware');
    expect(missing).toMatchObject({ code: 2 });
    expect(missing.err).toContain('--version is required');
    const unknown = await run(...packArgs(fx.dir, '--colour', 'blue'));
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain("Unknown option '--colour'");
    await expect(stat(join(fx.dir, 'out.pkg'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('reports missing files and existing keys with exit code 1', async () => {
    expect((await run('keygen', '--out', join(fx.dir, 'keys'))).err).toContain('already exists; pass --force');
    const noKey = await run(...packArgs(fx.dir));
    expect(noKey.code).toBe(1);
    expect(noKey.err).toMatch(/cannot read private key .*publisher\.key: ENOENT/);
    const noPkg = await run('verify', join(fx.dir, 'nope.pkg'), '--pub', fx.keys.publicKeyPath);
    expect(noPkg.code).toBe(1);
    expect(noPkg.err).toMatch(/cannot read .*nope\.pkg: ENOENT/);
  });

  it('answers help, no command and unknown commands', async () => {
    expect((await run('--help')).code).toBe(0);
    expect((await run()).code).toBe(2);
    const bogus = await run('sign');
    expect(bogus).toMatchObject({ code: 2 });
    expect(bogus.err).toContain('unknown command "sign"');
  });
});
