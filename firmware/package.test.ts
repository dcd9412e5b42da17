import { createReadStream } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { verifyManifest } from '../protocol/artifact.ts';
import { generateKeyPair } from './keys.ts';
import {
  createPayloadVerifier,
  MAX_HEADER_BYTES,
  PACKAGE_MAGIC,
  readPackageHeader,
  verifyPackageFile,
  writePackage,
} from './package.ts';
import { buildSampleRelease } from './samples.ts';
import { makeFixture, rewriteHeader, type Fixture } from './test-helpers.ts';

let fx: Fixture;
beforeEach(async () => {
  fx = await makeFixture();
});
afterEach(() => fx.cleanup());

async function drain(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

const codes = async (path: string, pem = fx.keys.publicKeyPem, now?: Date) =>
  (await verifyPackageFile(path, pem, now ? { now } : {})).map((p) => p.code);

describe('readPackageHeader', () => {
  it('reads the header from a file stream and leaves exactly the payload in it', async () => {
    const header = await readPackageHeader(createReadStream(fx.release.out));
    expect(header.manifest).toEqual(fx.release.manifest);
    expect(verifyManifest(header.rawManifest, header.signature, fx.keys.publicKeyPem)).toBe(true);
    expect(header.headerBytes + header.manifest.size).toBe((await stat(fx.release.out)).size);
    expect((await drain(header.payload)).equals(await readFile(fx.release.payloadPath))).toBe(true);
  });

  it('copes with a stream that trickles in 7-byte chunks, and with web streams and buffers', async () => {
    const bytes = await readFile(fx.release.out);
    const payload = await readFile(fx.release.payloadPath);
    const chunks = Array.from({ length: Math.ceil(bytes.length / 7) }, (_, i) => bytes.subarray(i * 7, i * 7 + 7));
    const trickled = await readPackageHeader(Readable.from(chunks));
    expect((await drain(trickled.payload)).equals(payload)).toBe(true);
    const web = await readPackageHeader(Readable.toWeb(Readable.from([bytes])) as WebReadableStream<Uint8Array>);
    expect((await drain(web.payload)).equals(payload)).toBe(true);
    const fromBuffer = await readPackageHeader(bytes);
    expect(fromBuffer.payload.equals(payload)).toBe(true);
  });

  it('refuses bad magic, truncation, an oversized header and non-JSON without reading on', async () => {
    const bytes = await readFile(fx.release.out);
    await expect(readPackageHeader(Buffer.from('PK\u0003\u0004 a zip file'))).rejects.toMatchObject({
      code: 'bad_magic',
    });
    await expect(readPackageHeader(bytes.subarray(0, 5))).rejects.toMatchObject({ code: 'truncated' });
    await expect(readPackageHeader(bytes.subarray(0, 40))).rejects.toMatchObject({ code: 'truncated' });
    const huge = Buffer.concat([PACKAGE_MAGIC, Buffer.from([0, 2, 0, 0])]);
    await expect(readPackageHeader(huge)).rejects.toMatchObject({ code: 'header_too_large' });
    expect(MAX_HEADER_BYTES).toBeLessThan(0x20000);
    const junk = Buffer.concat([PACKAGE_MAGIC, Buffer.from([0, 0, 0, 3]), Buffer.from('{x}')]);
    await expect(readPackageHeader(junk)).rejects.toMatchObject({ code: 'header_invalid' });
  });

  it('names each invalid manifest field', async () => {
    await rewriteHeader(fx.release.out, (h) => {
      h.manifest.version = '2.4';
      h.manifest.models = [];
      h.manifest.component = 'bootloader';
    });
    const err = await readPackageHeader(await readFile(fx.release.out)).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'manifest_invalid' });
    const fields = (err as { problems: { field: string }[] }).problems.map((p) => p.field).sort();
    expect(fields).toEqual(['component', 'models', 'version']);
  });
});

describe('verifyPackageFile', () => {
  it('finds nothing wrong with a fresh package', async () => {
    expect(await verifyPackageFile(fx.release.out, fx.keys.publicKeyPem)).toEqual([]);
  });

  it('detects a flipped payload byte', async () => {
    const bytes = await readFile(fx.release.out);
    bytes[bytes.length - 1000] ^= 0x01;
    await writeFile(fx.release.out, bytes);
    expect(await codes(fx.release.out)).toEqual(['sha256_mismatch']);
  });

  it('detects a tampered manifest', async () => {
    await rewriteHeader(fx.release.out, (h) => {
      h.manifest.models = ['T1', 'T2', 'T3'];
    });
    expect(await codes(fx.release.out)).toEqual(['bad_signature']);
  });

  it('detects a missing or garbled signature', async () => {
    await rewriteHeader(fx.release.out, (h) => {
      h.signature = Buffer.alloc(64).toString('base64');
    });
    expect(await codes(fx.release.out)).toEqual(['bad_signature']);
    await rewriteHeader(fx.release.out, (h) => {
      h.signature = '';
    });
    expect(await codes(fx.release.out)).toEqual(['header_invalid']);
  });

  it('detects a package signed by another key', async () => {
    const other = await generateKeyPair(join(fx.dir, 'other'));
    const problems = await verifyPackageFile(fx.release.out, other.publicKeyPem);
    expect(problems.map((p) => p.code)).toEqual(['key_id_mismatch']);
    expect(problems[0].message).toContain(other.keyId);
  });

  it('detects truncation in the header and in the payload', async () => {
    const bytes = await readFile(fx.release.out);
    await writeFile(fx.release.out, bytes.subarray(0, 30));
    expect(await codes(fx.release.out)).toEqual(['truncated']);
    await writeFile(fx.release.out, bytes.subarray(0, bytes.length - 1));
    expect(await codes(fx.release.out)).toEqual(['truncated']);
    await writeFile(fx.release.out, Buffer.alloc(0));
    expect(await codes(fx.release.out)).toEqual(['truncated']);
  });

  it('detects extra bytes after the payload', async () => {
    await writeFile(fx.release.out, Buffer.concat([await readFile(fx.release.out), Buffer.from('x')]));
    expect(await codes(fx.release.out)).toEqual(['size_mismatch']);
  });

  it('detects bad magic', async () => {
    const bytes = await readFile(fx.release.out);
    bytes.write('POSFPKG2', 0, 'ascii');
    await writeFile(fx.release.out, bytes);
    expect(await codes(fx.release.out)).toEqual(['bad_magic']);
  });

  it('detects an expired release', async () => {
    const release = await buildSampleRelease({
      dir: fx.dir,
      component: 'app:payment',
      version: '5.1.0',
      models: ['T1'],
      sizeBytes: 10,
      expiresAt: '2030-01-01T00:00:00.000Z',
      key: fx.keys.privateKeyPath,
    });
    expect(await codes(release.out, fx.keys.publicKeyPem, new Date('2029-12-31T00:00:00Z'))).toEqual([]);
    expect(await codes(release.out, fx.keys.publicKeyPem, new Date('2030-01-02T00:00:00Z'))).toEqual(['expired']);
  });

  it('reports schema problems together with the signature check', async () => {
    await rewriteHeader(fx.release.out, (h) => {
      h.manifest.version = 'latest';
    });
    const problems = await verifyPackageFile(fx.release.out, fx.keys.publicKeyPem);
    expect(problems.map((p) => [p.code, p.field])).toEqual([
      ['manifest_invalid', 'version'],
      ['bad_signature', 'signature'],
    ]);
  });
});

describe('writePackage', () => {
  it('refuses a payload that does not match the manifest and leaves no file', async () => {
    const out = join(fx.dir, 'bad.pkg');
    const payload = Buffer.alloc(fx.release.manifest.size, 1);
    await expect(
      writePackage({ manifest: fx.release.manifest, signature: fx.release.signature, payload, out }),
    ).rejects.toMatchObject({ code: 'sha256_mismatch' });
    await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('createPayloadVerifier', () => {
  it('fails as soon as the payload runs past the declared size', async () => {
    const check = createPayloadVerifier({ size: 4, sha256: '0'.repeat(64) });
    const chunks = [Buffer.from('abc'), Buffer.from('def'), Buffer.from('never read')];
    await expect(drain(Readable.from(chunks).pipe(check.stream))).rejects.toMatchObject({ code: 'size_mismatch' });
    expect(check.bytes()).toBe(6);
  });
});
