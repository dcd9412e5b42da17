// Webhook secrets: generated here (Standard Webhooks `whsec_` + base64 of 32
// random bytes), shown once, kept sealed with AES-256-GCM under a server key
// because the server needs them again to sign. The key comes from
// HOOKS_SECRET_KEY or DATA_DIR/hooks.key (created mode 0600 on first use);
// several instances on one database must share HOOKS_SECRET_KEY.
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hooksKeyBytes } from '../config.ts';

const PREFIX = 'whsec_';

export function newWebhookSecret(): string {
  return PREFIX + randomBytes(32).toString('base64');
}

/** Standard Webhooks: base64 HMAC-SHA256 of `id.timestamp.body`, keyed by the secret's decoded bytes. */
export function signPayload(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret, 'base64');
  return createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64');
}

/** The `webhook-signature` header: one `v1,<sig>` per secret, space-separated. */
export function signatureHeader(secrets: string[], id: string, timestamp: number, body: string): string {
  return secrets.map((s) => `v1,${signPayload(s, id, timestamp, body)}`).join(' ');
}

async function loadOrCreateKeyFile(dataDir: string): Promise<Buffer> {
  const path = join(dataDir, 'hooks.key');
  try {
    const existing = hooksKeyBytes(await readFile(path, 'utf8'));
    if (!existing) throw new Error(`${path} does not hold a 32-byte base64 key`);
    return existing;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const key = randomBytes(32);
  try {
    await writeFile(path, `${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
    return key;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return loadOrCreateKeyFile(dataDir); // another process won the race
    throw err;
  }
}

/** Seals and opens webhook secrets; `aad` binds a sealed value to its subscription id. */
export function createSecretBox(opts: { keySetting?: string; dataDir: string }) {
  let key: Promise<Buffer> | undefined;
  const getKey = () =>
    (key ??= opts.keySetting ? Promise.resolve(hooksKeyBytes(opts.keySetting)!) : loadOrCreateKeyFile(opts.dataDir));

  async function seal(plain: string, aad: string): Promise<string> {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', await getKey(), iv).setAAD(Buffer.from(aad));
    const ct = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return ['v1', iv.toString('base64'), cipher.getAuthTag().toString('base64'), ct.toString('base64')].join('.');
  }

  async function open(sealed: string, aad: string): Promise<string> {
    const [v, iv, tag, ct] = sealed.split('.');
    if (v !== 'v1' || !iv || !tag || ct === undefined) throw new Error('sealed secret has an unknown format');
    const decipher = createDecipheriv('aes-256-gcm', await getKey(), Buffer.from(iv, 'base64')).setAAD(
      Buffer.from(aad),
    );
    decipher.setAuthTag(Buffer.from(tag, 'base64'));
    try {
      return Buffer.concat([decipher.update(Buffer.from(ct, 'base64')), decipher.final()]).toString('utf8');
    } catch {
      throw new Error(
        'cannot open the webhook secret: the hooks key (HOOKS_SECRET_KEY or DATA_DIR/hooks.key) differs from the one that sealed it',
      );
    }
  }

  return { seal, open };
}

export type SecretBox = ReturnType<typeof createSecretBox>;
