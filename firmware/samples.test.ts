import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadPublicKeyPem } from './keys.ts';
import { verifyPackageFile } from './package.ts';
import { buildSampleSet, writeSamplePayload } from './samples.ts';
import { makeFixture, type Fixture } from './test-helpers.ts';

let fx: Fixture;
beforeEach(async () => {
  fx = await makeFixture(3 * 1024 * 1024 + 17);
});
afterEach(() => fx.cleanup());

const sha = async (path: string) =>
  createHash('sha256')
    .update(await readFile(path))
    .digest('hex');

describe('sample releases', () => {
  it('are deterministic per seed and match the manifest', async () => {
    const again = join(fx.dir, 'again.bin');
    await writeSamplePayload(again, fx.release.manifest.size, 'firmware@2.4.0');
    expect(await sha(again)).toBe(fx.release.manifest.sha256);
    await writeSamplePayload(again, 1000, 'other seed');
    expect(await sha(again)).not.toBe(fx.release.manifest.sha256);
    expect(fx.release.manifest.size).toBe(3 * 1024 * 1024 + 17);
  });

  it('build the demo set, each verifiable with the generated key', async () => {
    const dir = join(fx.dir, 'set');
    const releases = await buildSampleSet(dir);
    const pem = await loadPublicKeyPem(join(dir, 'keys', 'publisher.pub'));
    for (const r of releases) expect(await verifyPackageFile(r.out, pem)).toEqual([]);
    expect(releases.map((r) => `${r.manifest.component}@${r.manifest.version}`)).toContain('app:payment@5.1.0');
    // A second run reuses the key, so packages from both runs verify with the same .pub.
    const rerun = await buildSampleSet(dir);
    expect(rerun[0].manifest.keyId).toBe(releases[0].manifest.keyId);
  });
});
