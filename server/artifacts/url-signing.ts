// Short-lived signed download URLs: what `update` commands carry, so a terminal
// can fetch its artifact without presenting its token to a CDN or proxy.
// sig = HMAC-SHA256(secret, "<artifactId>.<exp>[.<deviceId>]"), base64url.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../lib/clock.ts';

export const URL_SIGNING_KEY_FILE = 'url-signing.key';

/**
 * The secret from URL_SIGNING_SECRET, else DATA_DIR/url-signing.key, created
 * (mode 0600) on first start. Instances that share a database must share it too.
 */
export function loadUrlSigningSecret(opts: { secret: string | undefined; dataDir: string }): Buffer {
  if (opts.secret) return Buffer.from(opts.secret, 'utf8');
  const file = join(opts.dataDir, URL_SIGNING_KEY_FILE);
  try {
    writeFileSync(file, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const text = readFileSync(file, 'utf8').trim();
  if (text.length < 32) throw new Error(`${file} holds too short a secret; delete it to have a new one made`);
  return Buffer.from(text, 'utf8');
}

export interface SignedUrlParams {
  exp: number;
  sig: string;
  device?: string;
}

export type SignedUrlVerdict = 'ok' | 'expired' | 'bad_signature';

export function createUrlSigner(deps: { secret: Buffer; clock: Clock }) {
  function mac(artifactId: string, exp: number, deviceId?: string): Buffer {
    const message = deviceId ? `${artifactId}.${exp}.${deviceId}` : `${artifactId}.${exp}`;
    return createHmac('sha256', deps.secret).update(message).digest();
  }

  /** Query parameters that let the holder download `artifactId` for `ttlS` seconds. */
  function sign(artifactId: string, deviceId: string | null, ttlS: number): SignedUrlParams {
    const exp = Math.floor(deps.clock.nowMs() / 1000) + Math.max(1, Math.floor(ttlS));
    const sig = mac(artifactId, exp, deviceId ?? undefined).toString('base64url');
    return deviceId ? { exp, sig, device: deviceId } : { exp, sig };
  }

  /** The signature is checked before the expiry so a tampered exp reads as tampered. */
  function verify(artifactId: string, p: SignedUrlParams): SignedUrlVerdict {
    // Compared as text: decoding would let two spellings of the last base64 character pass.
    const expected = Buffer.from(mac(artifactId, p.exp, p.device).toString('base64url'));
    const given = Buffer.from(p.sig);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'bad_signature';
    return p.exp * 1000 < deps.clock.nowMs() ? 'expired' : 'ok';
  }

  return { sign, verify };
}

export type UrlSigner = ReturnType<typeof createUrlSigner>;
