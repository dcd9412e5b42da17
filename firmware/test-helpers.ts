// Shared set-up for the firmware tests: a temp dir with a key pair and a package.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair, type GeneratedKeyPair } from './keys.ts';
import { encodePackageHeader, readPackageHeader } from './package.ts';
import { buildSampleRelease, type SampleRelease } from './samples.ts';

export interface Fixture {
  dir: string;
  keys: GeneratedKeyPair;
  release: SampleRelease;
  cleanup(): Promise<void>;
}

export async function makeFixture(sizeBytes = 100_000): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'posfleet-fw-'));
  const keys = await generateKeyPair(join(dir, 'keys'));
  const release = await buildSampleRelease({
    dir,
    component: 'firmware',
    version: '2.4.0',
    models: ['T2', 'T3'],
    sizeBytes,
    key: keys.privateKeyPath,
  });
  return { dir, keys, release, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Rewrites a package's header (manifest, signature) keeping its payload bytes. */
export async function rewriteHeader(
  path: string,
  edit: (h: { manifest: Record<string, unknown>; signature: string; publicKey?: string }) => void,
): Promise<void> {
  const bytes = await readFile(path);
  const { rawManifest, signature, publicKey, payload } = await readPackageHeader(bytes);
  const header = { manifest: { ...(rawManifest as Record<string, unknown>) }, signature, publicKey };
  edit(header);
  await writeFile(path, Buffer.concat([encodePackageHeader(header), payload]));
}
