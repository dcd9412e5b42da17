// Publisher keys: ed25519, PEM on disk. The private key never leaves the
// publisher's machine; the server and terminals only ever see the public key.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { canonicalJson } from '../protocol/artifact.ts';
import { FirmwareError } from './errors.ts';

export const PRIVATE_KEY_FILE = 'publisher.key';
export const PUBLIC_KEY_FILE = 'publisher.pub';

export interface GeneratedKeyPair {
  privateKeyPath: string;
  publicKeyPath: string;
  publicKeyPem: string;
  keyId: string;
}

/**
 * Writes DIR/publisher.key (PKCS8 PEM, mode 0600) and DIR/publisher.pub (SPKI PEM).
 * Refuses to replace an existing private key unless `force`: losing a signing key
 * by a mistyped command would orphan every release signed with it.
 */
export async function generateKeyPair(dir: string, opts: { force?: boolean } = {}): Promise<GeneratedKeyPair> {
  await mkdir(dir, { recursive: true });
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const privateKeyPath = join(dir, PRIVATE_KEY_FILE);
  const publicKeyPath = join(dir, PUBLIC_KEY_FILE);
  const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  try {
    await writeFile(privateKeyPath, privatePem, { mode: 0o600, flag: opts.force ? 'w' : 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new FirmwareError('key_exists', `${privateKeyPath} already exists; pass --force to replace it`);
    }
    throw err;
  }
  // `mode` applies only when the file is created (and through the umask); make it exact.
  await chmod(privateKeyPath, 0o600);
  await writeFile(publicKeyPath, publicKeyPem);
  return { privateKeyPath, publicKeyPath, publicKeyPem, keyId: keyIdOf(publicKey) };
}

function asEd25519Public(key: string | KeyObject): KeyObject {
  let pub: KeyObject;
  try {
    // createPublicKey also derives the public half from a private key (PEM or object).
    pub = typeof key === 'string' ? createPublicKey(key) : key.type === 'public' ? key : createPublicKey(key);
  } catch (err) {
    throw new FirmwareError('bad_key', `not a PEM key: ${(err as Error).message}`);
  }
  if (pub.asymmetricKeyType !== 'ed25519') {
    throw new FirmwareError('bad_key', `key type is ${pub.asymmetricKeyType}, expected ed25519`);
  }
  return pub;
}

/** The raw 32-byte ed25519 public key (what the key id is computed over). */
export function rawPublicKey(key: string | KeyObject): Buffer {
  const jwk = asEd25519Public(key).export({ format: 'jwk' });
  return Buffer.from(jwk.x as string, 'base64url');
}

/** First 16 hex characters of sha256(raw 32-byte public key). Accepts a public or private key. */
export function keyIdOf(key: string | KeyObject): string {
  return createHash('sha256').update(rawPublicKey(key)).digest('hex').slice(0, 16);
}

/** SPKI PEM of a public key, or of the public half of a private key. */
export function publicKeyPemOf(key: string | KeyObject): string {
  return asEd25519Public(key).export({ type: 'spki', format: 'pem' }) as string;
}

/** ed25519 signature (base64) over the canonical JSON of the manifest. */
export function signManifest(manifest: unknown, privateKey: string | KeyObject): string {
  const key = toPrivateKey(privateKey);
  return sign(null, Buffer.from(canonicalJson(manifest)), key).toString('base64');
}

function toPrivateKey(key: string | KeyObject): KeyObject {
  let priv: KeyObject;
  try {
    priv = typeof key === 'string' ? createPrivateKey(key) : key;
  } catch (err) {
    throw new FirmwareError('bad_key', `not a PEM private key: ${(err as Error).message}`);
  }
  if (priv.type !== 'private' || priv.asymmetricKeyType !== 'ed25519') {
    throw new FirmwareError('bad_key', 'expected an ed25519 private key');
  }
  return priv;
}

async function readKeyFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new FirmwareError(
      'key_not_found',
      `cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? err}`,
    );
  }
}

/** Loads an ed25519 private key; `warning` is set when others can read the file. */
export async function loadPrivateKey(path: string): Promise<{ key: KeyObject; warning?: string }> {
  const pem = await readKeyFile(path, 'private key');
  const key = toPrivateKey(pem);
  const { mode } = await stat(path);
  const warning =
    (mode & 0o077) !== 0
      ? `${path} is readable by others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`
      : undefined;
  return warning ? { key, warning } : { key };
}

/** Loads an ed25519 public key as SPKI PEM (also accepts a private key file, deriving its public half). */
export async function loadPublicKeyPem(path: string): Promise<string> {
  return publicKeyPemOf(await readKeyFile(path, 'public key'));
}
