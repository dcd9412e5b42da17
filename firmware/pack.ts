// Turning a payload and release facts into a signed package. One function serves
// the CLI, the sample releases, tests and benchmarks, so they all make the same
// kind of package.
import { createHash, type KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { COMPONENT_PATTERN, type Manifest } from '../protocol/artifact.ts';
import { FirmwareError, PackageError } from './errors.ts';
import { keyIdOf, publicKeyPemOf, signManifest } from './keys.ts';
import { parseManifest, writePackage } from './package.ts';

export interface ReleaseFacts {
  component: string;
  version: string;
  models: string[];
  /** Ranges on other components, e.g. {"firmware": ">=2.1.0"}. */
  requires?: Record<string, string>;
  notes?: string;
  /** ISO 8601; after it terminals and the server refuse the release. */
  expiresAt?: string;
  /** Defaults to now; fixed in tests to make packages byte-identical. */
  createdAt?: Date;
}

export interface PackOptions extends ReleaseFacts {
  /** Path of the payload file (streamed; never held in memory). */
  payload: string;
  privateKey: string | KeyObject;
  out: string;
}

export interface PackResult {
  manifest: Manifest;
  signature: string;
  out: string;
  bytes: number;
}

/** size and sha256 (hex) of a file, streamed. */
export async function hashFile(path: string): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      size += chunk.length;
      done();
    },
  });
  try {
    await pipeline(createReadStream(path), sink);
  } catch (err) {
    throw new FirmwareError(
      'payload_unreadable',
      `cannot read payload ${path}: ${(err as NodeJS.ErrnoException).code ?? err}`,
    );
  }
  return { size, sha256: hash.digest('hex') };
}

/** Builds, validates and signs the manifest; throws PackageError (manifest_invalid) naming each bad field. */
export function buildManifest(facts: ReleaseFacts, payload: { size: number; sha256: string }, keyId: string): Manifest {
  const candidate = {
    v: 1,
    component: facts.component,
    version: facts.version,
    models: [...new Set(facts.models)],
    requires: facts.requires ?? {},
    size: payload.size,
    sha256: payload.sha256,
    createdAt: (facts.createdAt ?? new Date()).toISOString(),
    expiresAt: facts.expiresAt,
    notes: facts.notes,
    keyId,
  };
  const parsed = parseManifest(candidate);
  if (!parsed.ok) throw new PackageError(parsed.problems);
  if (parsed.manifest.requires[parsed.manifest.component] !== undefined) {
    throw new PackageError([
      {
        code: 'manifest_invalid',
        field: 'requires',
        message: `a release cannot require its own component ${parsed.manifest.component}`,
      },
    ]);
  }
  return parsed.manifest;
}

/** Hashes the payload, signs the manifest and writes the package. */
export async function packRelease(opts: PackOptions): Promise<PackResult> {
  const digest = await hashFile(opts.payload);
  const manifest = buildManifest(opts, digest, keyIdOf(opts.privateKey));
  // Sign the parsed manifest: it is exactly what goes into the header.
  const signature = signManifest(manifest, opts.privateKey);
  const { bytes } = await writePackage({
    manifest,
    signature,
    publicKey: publicKeyPemOf(opts.privateKey),
    payload: opts.payload,
    out: opts.out,
  });
  return { manifest, signature, out: opts.out, bytes };
}

/**
 * Parses requirement flags: "app:payment>=5.0.0", "firmware >=2.1.0 <3.0.0", or
 * several joined by commas. The component ends where the range's first operator
 * or space begins. Range syntax is checked by the manifest schema.
 */
export function parseRequires(specs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const spec of specs.flatMap((s) => s.split(','))) {
    const text = spec.trim();
    if (text === '') continue;
    const m = /^([^\s<>=~^]+)\s*(.*)$/.exec(text);
    const component = m?.[1] ?? '';
    const range = m?.[2]?.trim() ?? '';
    if (!COMPONENT_PATTERN.test(component)) {
      throw new FirmwareError('bad_requires', `--requires "${text}": component must be "firmware" or "app:<name>"`);
    }
    if (range === '')
      throw new FirmwareError('bad_requires', `--requires "${text}": missing version range, e.g. ${component}>=2.1.0`);
    if (out[component] !== undefined) throw new FirmwareError('bad_requires', `--requires names ${component} twice`);
    out[component] = range;
  }
  return out;
}
