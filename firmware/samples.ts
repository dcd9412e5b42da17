// Sample releases for tests, benchmarks and the demo. Payloads are generated on
// demand (never committed) from a seed, so the same call always yields the same
// bytes: a test can compare a download with a fresh copy, and a 64 MiB bench
// artifact costs no repository space.
import { createCipheriv, createHash, type KeyObject } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { isMainModule } from './is-main.ts';
import { generateKeyPair, loadPrivateKey, PRIVATE_KEY_FILE } from './keys.ts';
import { packRelease, type PackResult, type ReleaseFacts } from './pack.ts';

const CHUNK = 1024 * 1024;

export interface SampleReleaseOptions extends ReleaseFacts {
  dir: string;
  sizeBytes: number;
  /** Private key: a KeyObject, a PEM string, or the path of a publisher.key file. */
  key: string | KeyObject;
  /** Payload seed; defaults to "component@version", so each release has its own bytes. */
  seed?: string;
}

export interface SampleRelease extends PackResult {
  /** The bare payload, kept so tests can compare downloads with it. */
  payloadPath: string;
}

/** AES-256-CTR keystream over zeros: fast, deterministic pseudo-random bytes. */
function* payloadChunks(size: number, seed: string): Generator<Buffer> {
  const key = createHash('sha256').update(`posfleet-sample:${seed}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(CHUNK);
  for (let left = size; left > 0; left -= CHUNK) {
    yield cipher.update(left >= CHUNK ? zeros : zeros.subarray(0, left));
  }
}

/** Writes `size` deterministic pseudo-random bytes derived from `seed` to `path`. */
export async function writeSamplePayload(path: string, size: number, seed: string): Promise<void> {
  await pipeline(Readable.from(payloadChunks(size, seed)), createWriteStream(path));
}

async function resolveKey(key: string | KeyObject): Promise<string | KeyObject> {
  if (typeof key !== 'string' || key.includes('-----BEGIN')) return key;
  return (await loadPrivateKey(key)).key;
}

/** File name stem of a release: "firmware-2.4.0", "app-payment-5.1.0". */
export function releaseStem(component: string, version: string): string {
  return `${component.replace(':', '-')}-${version}`;
}

/** Generates the payload `DIR/<stem>.bin` and packs it into `DIR/<stem>.pkg`. */
export async function buildSampleRelease(opts: SampleReleaseOptions): Promise<SampleRelease> {
  await mkdir(opts.dir, { recursive: true });
  const stem = releaseStem(opts.component, opts.version);
  const payloadPath = join(opts.dir, `${stem}.bin`);
  await writeSamplePayload(payloadPath, opts.sizeBytes, opts.seed ?? `${opts.component}@${opts.version}`);
  const privateKey = await resolveKey(opts.key);
  const result = await packRelease({ ...opts, privateKey, payload: payloadPath, out: join(opts.dir, `${stem}.pkg`) });
  return { ...result, payloadPath };
}

/** The releases the demo and the simulated fleet use (terminals start on firmware 1.0.0). */
export const SAMPLE_SET: ReadonlyArray<Omit<SampleReleaseOptions, 'dir' | 'key'>> = [
  {
    component: 'firmware',
    version: '1.0.0',
    models: ['T1', 'T2', 'T3'],
    sizeBytes: 256 * 1024,
    notes: 'Factory image.',
  },
  {
    component: 'firmware',
    version: '2.4.0',
    models: ['T1', 'T2', 'T3'],
    sizeBytes: 512 * 1024,
    notes: 'Contactless fixes; printer driver update.',
  },
  {
    component: 'firmware',
    version: '2.4.1',
    models: ['T2'],
    sizeBytes: 512 * 1024,
    notes: 'T2 ethernet link flap fix.',
  },
  {
    component: 'app:payment',
    version: '5.1.0',
    models: ['T1', 'T2', 'T3'],
    sizeBytes: 128 * 1024,
    requires: { firmware: '>=2.1.0' },
    notes: 'Needs firmware 2.1 or later.',
  },
];

/**
 * Builds SAMPLE_SET into `dir`, with a publisher key in `dir/keys` (created if
 * missing, reused otherwise so packages stay verifiable across runs).
 */
export async function buildSampleSet(dir: string): Promise<SampleRelease[]> {
  const keyDir = join(dir, 'keys');
  if (!existsSync(join(keyDir, PRIVATE_KEY_FILE))) await generateKeyPair(keyDir);
  const key = join(keyDir, PRIVATE_KEY_FILE);
  const out: SampleRelease[] = [];
  for (const release of SAMPLE_SET) out.push(await buildSampleRelease({ ...release, dir, key }));
  return out;
}

if (isMainModule(import.meta.url)) {
  const dir = process.argv[2] ?? join('firmware', 'samples');
  const releases = await buildSampleSet(dir);
  for (const r of releases) console.log(`${r.out}  ${r.manifest.component} ${r.manifest.version}  ${r.bytes} bytes`);
  console.log(`public key: ${join(dir, 'keys', 'publisher.pub')}`);
}
