import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { verifyManifest } from '../protocol/artifact.ts';
import { generateKeyPair, keyIdOf, loadPrivateKey, rawPublicKey, signManifest } from './keys.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'posfleet-keys-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('generateKeyPair', () => {
  it('writes a 0600 PKCS8 private key and an SPKI public key', async () => {
    const pair = await generateKeyPair(dir);
    expect((await stat(pair.privateKeyPath)).mode & 0o777).toBe(0o600);
    expect(await readFile(pair.privateKeyPath, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(await readFile(pair.publicKeyPath, 'utf8')).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect(createPublicKey(pair.publicKeyPem).asymmetricKeyType).toBe('ed25519');
  });

  it('refuses to replace an existing private key unless forced', async () => {
    const first = await generateKeyPair(dir);
    await expect(generateKeyPair(dir)).rejects.toMatchObject({ code: 'key_exists' });
    expect(keyIdOf(await readFile(first.publicKeyPath, 'utf8'))).toBe(first.keyId);
    const second = await generateKeyPair(dir, { force: true });
    expect(second.keyId).not.toBe(first.keyId);
    expect((await stat(second.privateKeyPath)).mode & 0o777).toBe(0o600);
  });
});

describe('keyIdOf', () => {
  it('is the first 16 hex of sha256 over the raw 32-byte key, same from either half', async () => {
    const pair = await generateKeyPair(dir);
    const raw = rawPublicKey(pair.publicKeyPem);
    expect(raw).toHaveLength(32);
    expect(pair.keyId).toBe(createHash('sha256').update(raw).digest('hex').slice(0, 16));
    expect(keyIdOf(await readFile(pair.privateKeyPath, 'utf8'))).toBe(pair.keyId);
  });

  it('rejects keys that are not ed25519, and text that is no key', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' });
    expect(() => keyIdOf(ec as string)).toThrow(/key type is ec, expected ed25519/);
    expect(() => keyIdOf('-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n')).toThrow(/not a PEM key/);
  });
});

describe('signManifest', () => {
  it('signs the canonical encoding, whatever the key order', async () => {
    const pair = await generateKeyPair(dir);
    const { key } = await loadPrivateKey(pair.privateKeyPath);
    const signature = signManifest({ b: 1, a: { d: 2, c: 3 } }, key);
    expect(Buffer.from(signature, 'base64')).toHaveLength(64);
    expect(verifyManifest({ a: { c: 3, d: 2 }, b: 1 }, signature, pair.publicKeyPem)).toBe(true);
    expect(verifyManifest({ a: { c: 3, d: 2 }, b: 2 }, signature, pair.publicKeyPem)).toBe(false);
  });
});
