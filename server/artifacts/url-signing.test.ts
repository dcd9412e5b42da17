import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../lib/clock.ts';
import { createUrlSigner, loadUrlSigningSecret, URL_SIGNING_KEY_FILE } from './url-signing.ts';

describe('url signing', () => {
  it('creates DATA_DIR/url-signing.key once, mode 0600, and reuses it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'posfleet-url-'));
    const a = loadUrlSigningSecret({ secret: undefined, dataDir: dir });
    const b = loadUrlSigningSecret({ secret: undefined, dataDir: dir });
    expect(a.equals(b)).toBe(true);
    expect(statSync(join(dir, URL_SIGNING_KEY_FILE)).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, URL_SIGNING_KEY_FILE), 'utf8').trim().length).toBeGreaterThanOrEqual(32);
    expect(loadUrlSigningSecret({ secret: 'x'.repeat(40), dataDir: dir }).toString()).toBe('x'.repeat(40));
  });

  it('verifies until expiry and refuses any altered part', () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const signer = createUrlSigner({ secret: Buffer.from('s'.repeat(32)), clock });
    const p = signer.sign('art_1', 'dev_1', 60);
    expect(p.exp).toBe(Date.UTC(2026, 0, 1) / 1000 + 60);
    expect(signer.verify('art_1', p)).toBe('ok');
    expect(signer.verify('art_2', p)).toBe('bad_signature');
    expect(signer.verify('art_1', { ...p, device: 'dev_2' })).toBe('bad_signature');
    expect(signer.verify('art_1', { exp: p.exp, sig: p.sig })).toBe('bad_signature');
    expect(signer.verify('art_1', { ...p, exp: p.exp + 1 })).toBe('bad_signature');
    expect(signer.verify('art_1', { ...p, sig: `${p.sig}x` })).toBe('bad_signature');
    const other = createUrlSigner({ secret: Buffer.from('t'.repeat(32)), clock });
    expect(other.verify('art_1', p)).toBe('bad_signature');
    clock.advance(60_000);
    expect(signer.verify('art_1', p)).toBe('ok');
    clock.advance(1_000);
    expect(signer.verify('art_1', p)).toBe('expired');
    const anyone = signer.sign('art_1', null, 10);
    expect(anyone.device).toBeUndefined();
    expect(signer.verify('art_1', anyone)).toBe('ok');
  });
});
