import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson, type Manifest } from '../protocol/index.ts';
import { realClock } from './clock.ts';
import { OtaClient, type OtaDeps, type OtaStatus } from './ota.ts';
import { healthyProfile, type TerminalProfile } from './profiles.ts';
import { streamRng } from './rng.ts';

const payload = randomBytes(256 * 1024);
const sha256 = createHash('sha256').update(payload).digest('hex');
const keys = generateKeyPairSync('ed25519');
const otherKeys = generateKeyPairSync('ed25519');
const publicPem = keys.publicKey.export({ type: 'spki', format: 'pem' }).toString();

/** Serves the payload with Range; the first full download of /cut is cut halfway. */
let server: http.Server;
let base = '';
const rangeRequests: string[] = [];
let cutsLeft = 0;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    if (range) rangeRequests.push(req.headers.range!);
    if (req.url === '/missing') {
      res.writeHead(404).end();
      return;
    }
    const body = req.url === '/short' ? payload.subarray(0, payload.length - 10) : payload;
    const headers: http.OutgoingHttpHeaders = { 'content-length': body.length - start, 'accept-ranges': 'bytes' };
    if (range) headers['content-range'] = `bytes ${start}-${body.length - 1}/${body.length}`;
    res.writeHead(range ? 206 : 200, headers);
    if (req.url === '/cut' && cutsLeft > 0 && !range) {
      cutsLeft--;
      res.write(body.subarray(0, body.length / 2), () => res.destroy());
      return;
    }
    res.end(body.subarray(start));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

function manifest(over: Partial<Manifest> = {}): Manifest {
  return {
    v: 1,
    component: 'firmware',
    version: '2.0.0',
    models: ['T1', 'T2'],
    requires: {},
    size: payload.length,
    sha256,
    createdAt: '2026-01-01T00:00:00.000Z',
    keyId: '0123456789abcdef',
    ...over,
  };
}

function params(m: Manifest, over: Record<string, unknown> = {}, signer = keys.privateKey) {
  const signature = sign(null, Buffer.from(canonicalJson(m)), signer).toString('base64');
  return {
    jobId: `job-${Math.random().toString(36).slice(2)}`,
    component: m.component,
    version: m.version,
    url: `${base}/ok`,
    sha256: m.sha256,
    size: m.size,
    signature,
    manifest: m,
    ...over,
  };
}

function client(
  over: Omit<Partial<OtaDeps>, 'profile'> & { profile?: Partial<TerminalProfile>; firmware?: string } = {},
) {
  const reports: OtaStatus[] = [];
  const installed = { firmware: over.firmware ?? '1.0.0', apps: { payment: '1.0.0' } };
  const ota = new OtaClient({
    clock: realClock(),
    rng: streamRng(1, 'ota'),
    model: 'T2',
    publicKey: keys.publicKey,
    installed: () => installed,
    report: (s) => reports.push(s),
    busy: () => false,
    installAndReboot: async (_c, version) => {
      installed.firmware = version;
    },
    installMs: 5,
    downloadRetryMs: 5,
    ...over,
    profile: { ...healthyProfile(), ...over.profile },
  });
  const settled = async (jobId: string) => {
    for (let i = 0; i < 400 && !['succeeded', 'failed', 'rejected'].includes(ota.lastStatus(jobId)?.state ?? ''); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    return ota.lastStatus(jobId)!;
  };
  return { ota, reports, installed, settled };
}

const soon = () => Date.now() + 60_000;

describe('OTA client', () => {
  it('downloads, resumes with Range after a cut, verifies, installs and reports every state', async () => {
    const { ota, reports, installed, settled } = client();
    cutsLeft = 1;
    rangeRequests.length = 0;
    const p = params(manifest(), { url: `${base}/cut` });
    expect(ota.handle(p, soon())).toMatchObject({ status: 'ok' });
    expect(await settled(p.jobId)).toMatchObject({ state: 'succeeded' });
    expect(rangeRequests).toEqual([`bytes=${payload.length / 2}-`]);
    const states = reports.map((r) => r.state).filter((s, i, a) => s !== a[i - 1]);
    expect(states).toEqual([
      'accepted',
      'downloading',
      'downloaded',
      'verifying',
      'installing',
      'rebooting',
      'succeeded',
    ]);
    expect(installed.firmware).toBe('2.0.0');
  });

  const refusals: Array<[string, () => ReturnType<typeof params>]> = [
    ['bad_signature', () => params(manifest(), {}, otherKeys.privateKey)],
    ['downgrade_refused', () => params(manifest({ version: '0.9.0' }))],
    ['incompatible_model', () => params(manifest({ models: ['T3'] }))],
    ['manifest_mismatch', () => params(manifest(), { version: '3.0.0' })],
    ['requirements_not_met', () => params(manifest({ requires: { 'app:payment': '>=5.0.0' } }))],
    ['bad_manifest', () => params(manifest(), { manifest: { v: 1 } })],
  ];
  it.each(refusals)('rejects before downloading with %s', async (code, make) => {
    const { ota, reports } = client();
    const p = make();
    const reply = ota.handle(p, soon());
    expect(reply).toMatchObject({ status: 'rejected', error: { code } });
    expect(reports).toEqual([
      expect.objectContaining({ jobId: p.jobId, state: 'rejected', error: expect.objectContaining({ code }) }),
    ]);
  });

  it('rejects an expired command with expired_command', () => {
    const { ota } = client();
    expect(ota.handle(params(manifest()), Date.now() - 1)).toMatchObject({
      status: 'rejected',
      error: { code: 'expired_command' },
    });
  });

  it('allows a downgrade when the command says so', async () => {
    const { ota, settled, installed } = client({ firmware: '3.0.0' });
    const p = params(manifest({ version: '2.0.0' }), { allowDowngrade: true });
    expect(ota.handle(p, soon()).status).toBe('ok');
    expect(await settled(p.jobId)).toMatchObject({ state: 'succeeded' });
    expect(installed.firmware).toBe('2.0.0');
  });

  const failures: Array<[string, Partial<Manifest>, Partial<TerminalProfile>, string]> = [
    ['hash_mismatch', { sha256: createHash('sha256').update('other').digest('hex') }, {}, '/ok'],
    ['hash_mismatch', {}, { downloadCorrupt: true }, '/ok'],
    ['size_mismatch', {}, {}, '/short'],
    ['download_failed', {}, {}, '/missing'],
    ['install_failed', {}, { installFailRate: 1 }, '/ok'],
  ];
  it.each(failures)('fails after download with %s', async (code, over, profile, path) => {
    const { ota, settled, installed } = client({ profile });
    const p = params(manifest(over), { url: `${base}${path}` });
    expect(ota.handle(p, soon()).status).toBe('ok');
    expect(await settled(p.jobId)).toMatchObject({ state: 'failed', error: { code } });
    expect(installed.firmware).toBe('1.0.0');
  });

  it('defers while a payment runs, and answers a repeated job the same way', async () => {
    let busy = true;
    const { ota, settled } = client({ busy: () => busy });
    const p = params(manifest());
    expect(ota.handle(p, soon())).toMatchObject({ status: 'busy' });
    expect(ota.lastStatus(p.jobId)?.state).toBe('deferred');
    busy = false;
    expect(ota.handle(p, soon()).status).toBe('ok');
    expect(await settled(p.jobId)).toMatchObject({ state: 'succeeded' });
    expect(ota.handle(p, soon())).toMatchObject({ status: 'ok', result: { state: 'succeeded' } });
  });

  it('checks signatures against a PEM key as the CLI loads it', async () => {
    const { createPublicKey } = await import('node:crypto');
    const { ota } = client({ publicKey: createPublicKey(publicPem) });
    expect(ota.handle(params(manifest(), {}, otherKeys.privateKey), soon())).toMatchObject({
      error: { code: 'bad_signature' },
    });
  });
});
