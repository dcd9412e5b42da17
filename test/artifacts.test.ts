import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair, signManifest, type GeneratedKeyPair } from '../firmware/keys.ts';
import { encodePackageHeader, readPackageHeader } from '../firmware/package.ts';
import { buildSampleRelease, type SampleRelease } from '../firmware/samples.ts';
import { verifyManifest } from '../protocol/artifact.ts';
import { ManualClock } from '../server/lib/clock.ts';
import { randomChars } from '../server/lib/ids.ts';
import { enrollDevice, eventually, startTestApp, type EnrolledDevice, type TestApp } from './helpers/app.ts';
import { dbKind } from './helpers/db.ts';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe(`artifacts (${dbKind()})`, () => {
  let t: TestApp;
  let clock: ManualClock;
  let dir: string;
  let keys: GeneratedKeyPair;
  let operator: string;
  let viewer: string;
  let t2: EnrolledDevice;
  let t1: EnrolledDevice;
  // Each run uses its own app name, so runs over one shared database do not collide.
  const app = `app:t${randomChars(8)}`;

  async function release(
    version: string,
    opts: { sizeBytes?: number; models?: string[]; component?: string; key?: string } = {},
  ): Promise<SampleRelease> {
    return buildSampleRelease({
      dir,
      component: opts.component ?? app,
      version,
      models: opts.models ?? ['T2', 'T3'],
      sizeBytes: opts.sizeBytes ?? 256 * 1024,
      key: opts.key ?? keys.privateKeyPath,
      notes: `release ${version}`,
    });
  }

  async function upload(bytes: Uint8Array, token = operator, base = t) {
    const res = await fetch(`${base.app.baseUrl}/api/v1/artifacts`, {
      method: 'POST',
      body: bytes,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
    });
    return { status: res.status, body: (await res.json()) as any };
  }

  /** A package whose header is edited after signing (or re-signed with `resign`), payload kept or replaced. */
  async function crafted(
    r: SampleRelease,
    edit: { manifest?: Record<string, unknown>; signature?: string | null; resign?: boolean; payload?: Buffer },
  ) {
    const { rawManifest, signature, payload } = await readPackageHeader(await readFile(r.out));
    const manifest = { ...(rawManifest as Record<string, unknown>), ...edit.manifest };
    const sig = edit.resign
      ? signManifest(manifest, await readFile(keys.privateKeyPath, 'utf8'))
      : edit.signature === undefined
        ? signature
        : edit.signature;
    const header = encodePackageHeader({ manifest, signature: sig as string });
    return Buffer.concat([header, edit.payload ?? payload]);
  }

  const download = (id: string, headers: Record<string, string> = {}, d: EnrolledDevice = t2, method = 'GET') =>
    fetch(`${t.app.baseUrl}/api/v1/artifacts/${id}/download`, {
      method,
      headers: { authorization: `Bearer ${d.deviceId}:${d.password}`, ...headers },
    });

  async function storedFiles(): Promise<string[]> {
    const root = join(t.app.config.dataDir, 'artifacts');
    return [
      ...(await readdir(root)).filter((f) => f !== '.tmp'),
      ...(await readdir(join(root, '.tmp'))).map((f) => `.tmp/${f}`),
    ];
  }

  beforeAll(async () => {
    clock = new ManualClock(Date.now());
    t = await startTestApp({ clock });
    dir = await mkdtemp(join(tmpdir(), 'posfleet-art-'));
    keys = await generateKeyPair(join(dir, 'keys'));
    operator = (await t.api('POST', '/api/v1/api-keys', { name: 'o', role: 'operator' })).body.token;
    viewer = (await t.api('POST', '/api/v1/api-keys', { name: 'v', role: 'viewer' })).body.token;
    const added = await t.api('POST', '/api/v1/signing-keys', { name: 'release team', publicKey: keys.publicKeyPem });
    expect(added.status).toBe(201);
    expect(added.body.id).toBe(keys.keyId);
    t2 = await enrollDevice(t, { model: 'T2' });
    t1 = await enrollDevice(t, { model: 'T1' });
  });
  afterAll(async () => {
    await t.stop();
    await rm(dir, { recursive: true, force: true });
  });

  describe('signing keys', () => {
    it('are managed by admins only, listed, refused twice, and checked as ed25519 PEM', async () => {
      const other = await generateKeyPair(join(dir, `k-${randomChars(6)}`));
      expect(
        (await t.api('POST', '/api/v1/signing-keys', { name: 'x', publicKey: other.publicKeyPem }, operator)).status,
      ).toBe(403);
      expect((await t.api('GET', '/api/v1/signing-keys', undefined, viewer)).status).toBe(403);
      const again = await t.api('POST', '/api/v1/signing-keys', { name: 'dup', publicKey: keys.publicKeyPem });
      expect(again.status).toBe(409);
      expect(again.body.error.code).toBe('signing_key_exists');
      const junk = await t.api('POST', '/api/v1/signing-keys', { name: 'junk', publicKey: 'not a key' });
      expect(junk.status).toBe(400);
      expect(junk.body.error.code).toBe('invalid_public_key');
      const priv = await t.api('POST', '/api/v1/signing-keys', {
        name: 'oops',
        publicKey: await readFile(other.privateKeyPath, 'utf8'),
      });
      expect(priv.body.error.code).toBe('invalid_public_key');
      const created = await t.api('POST', '/api/v1/signing-keys', { name: 'other', publicKey: other.publicKeyPem });
      expect(created.status).toBe(201);
      const list = await t.api('GET', '/api/v1/signing-keys?limit=500');
      expect(list.body.items.map((k: { id: string }) => k.id)).toEqual(
        expect.arrayContaining([keys.keyId, other.keyId]),
      );
      expect((await t.api('DELETE', `/api/v1/signing-keys/${other.keyId}`)).status).toBe(204);
      expect((await t.api('DELETE', `/api/v1/signing-keys/${other.keyId}`)).status).toBe(404);
    });
  });

  describe('upload', () => {
    it('round trip: keygen, pack, upload, detail, download byte-identical, verify', async () => {
      const r = await release('1.0.0', { sizeBytes: 1024 * 1024 + 17 });
      const res = await upload(await readFile(r.out));
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({
        component: app,
        version: '1.0.0',
        models: ['T2', 'T3'],
        sha256: r.manifest.sha256,
        size: 1024 * 1024 + 17,
      });
      const detail = await t.api('GET', `/api/v1/artifacts/${res.body.id}`, undefined, viewer);
      expect(detail.status).toBe(200);
      expect(detail.body).toMatchObject({ keyId: keys.keyId, notes: 'release 1.0.0', signature: r.signature });
      expect(verifyManifest(detail.body.manifest, detail.body.signature, keys.publicKeyPem)).toBe(true);

      const got = await download(res.body.id);
      expect(got.status).toBe(200);
      expect(got.headers.get('etag')).toBe(`"${r.manifest.sha256}"`);
      expect(got.headers.get('content-length')).toBe(String(r.manifest.size));
      expect(got.headers.get('accept-ranges')).toBe('bytes');
      const bytes = Buffer.from(await got.arrayBuffer());
      expect(bytes.equals(await readFile(r.payloadPath))).toBe(true);
      expect(sha256(bytes)).toBe(detail.body.manifest.sha256);

      const basic = await fetch(`${t.app.baseUrl}/api/v1/artifacts/${res.body.id}/download`, {
        headers: { authorization: `Basic ${Buffer.from(`${t2.deviceId}:${t2.password}`).toString('base64')}` },
      });
      expect(basic.status).toBe(200);
      expect(sha256(Buffer.from(await basic.arrayBuffer()))).toBe(r.manifest.sha256);
    });

    it('refuses a viewer (403)', async () => {
      const r = await release('1.0.1');
      const res = await upload(await readFile(r.out), viewer);
      expect(res.status).toBe(403);
    });

    it('refuses an existing (component, version) with 409', async () => {
      const r = await release('1.1.0');
      expect((await upload(await readFile(r.out))).status).toBe(201);
      const again = await upload(await readFile(r.out));
      expect(again.status).toBe(409);
      expect(again.body.error.code).toBe('artifact_exists');
    });

    it('refuses each broken package with its code, leaving no file and no row', async () => {
      const r = await release('3.0.0');
      const good = await readFile(r.out);
      const other = await generateKeyPair(join(dir, `k-${randomChars(6)}`));
      const foreign = await release('3.0.1', { key: other.privateKeyPath });
      const { payload } = await readPackageHeader(good);
      const flipped = Buffer.from(payload);
      flipped[100] ^= 0xff;
      const before = await storedFiles();
      const cases: Array<[string, Buffer, number, string]> = [
        ['bad magic', Buffer.concat([Buffer.from('NOTAPKG!'), good.subarray(8)]), 400, 'bad_magic'],
        ['cut in the header', good.subarray(0, 40), 400, 'truncated'],
        ['no signature', await crafted(r, { signature: '' }), 400, 'header_invalid'],
        ['bad signature', await crafted(r, { manifest: { notes: 'changed after signing' } }), 422, 'bad_signature'],
        ['unknown key', await readFile(foreign.out), 422, 'unknown_key'],
        ['sha256 mismatch', await crafted(r, { payload: flipped }), 422, 'sha256_mismatch'],
        ['payload too long', Buffer.concat([good, Buffer.from('extra')]), 422, 'size_mismatch'],
        ['payload too short', good.subarray(0, good.length - 10), 422, 'truncated'],
        ['invalid semver', await crafted(r, { manifest: { version: '3.0' }, resign: true }), 400, 'manifest_invalid'],
        [
          'bad component',
          await crafted(r, { manifest: { component: 'kernel' }, resign: true }),
          400,
          'manifest_invalid',
        ],
        [
          'bad model',
          await crafted(r, { manifest: { models: ['T2', 'bad model!'] }, resign: true }),
          400,
          'manifest_invalid',
        ],
        [
          'expired',
          await crafted(r, { manifest: { expiresAt: new Date(clock.nowMs() - 60_000).toISOString() }, resign: true }),
          422,
          'expired',
        ],
      ];
      for (const [name, bytes, status, code] of cases) {
        const res = await upload(bytes);
        expect({ name, status: res.status, code: res.body.error?.code }).toEqual({ name, status, code });
        expect(res.body.error.message).toBeTruthy();
      }
      const invalid = await upload(await crafted(r, { manifest: { version: 'v3' }, resign: true }));
      expect(invalid.body.error.details.problems[0]).toMatchObject({ code: 'manifest_invalid', field: 'version' });
      expect(await storedFiles()).toEqual(before);
      const list = await t.api('GET', `/api/v1/artifacts?component=${encodeURIComponent(app)}&version=>=3.0.0`);
      expect(list.body.items).toEqual([]);
    });

    it('leaves no file and no row when the uploader goes away mid-payload', async () => {
      const r = await release('3.5.0', { sizeBytes: 1024 * 1024 });
      const bytes = await readFile(r.out);
      const before = await storedFiles();
      await new Promise<void>((resolve) => {
        const req = request(`${t.app.baseUrl}/api/v1/artifacts`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${operator}`,
            'content-type': 'application/octet-stream',
            'content-length': String(bytes.length),
          },
        });
        req.on('error', () => resolve());
        req.on('response', (res) => {
          res.resume();
          resolve();
        });
        req.write(bytes.subarray(0, 600 * 1024), () => setTimeout(() => req.destroy(), 100));
      });
      await eventually(async () => JSON.stringify(await storedFiles()) === JSON.stringify(before));
      const list = await t.api('GET', `/api/v1/artifacts?component=${encodeURIComponent(app)}&version=3.5.0`);
      expect(list.body.items).toEqual([]);
    });

    it('refuses a payload over ARTIFACT_MAX_BYTES with 413, judged from the header', async () => {
      // Same admin token: bootstrapping another one would retire the first app's key in the shared database.
      const small = await startTestApp({ config: { artifactMaxBytes: 100 * 1024 }, adminToken: t.adminToken });
      try {
        const tok = (await small.api('POST', '/api/v1/api-keys', { name: 'o', role: 'operator' })).body.token;
        const other = await generateKeyPair(join(dir, `k-${randomChars(6)}`));
        await small.api('POST', '/api/v1/signing-keys', { name: 'k', publicKey: other.publicKeyPem });
        const r = await release('4.0.0', { key: other.privateKeyPath, sizeBytes: 300 * 1024 });
        const res = await upload(await readFile(r.out), tok, small);
        expect(res.status).toBe(413);
        expect(res.body.error.code).toBe('payload_too_large');
        const fits = await release('4.0.1', { key: other.privateKeyPath, sizeBytes: 64 * 1024 });
        expect((await upload(await readFile(fits.out), tok, small)).status).toBe(201);
      } finally {
        await small.stop();
      }
    });
  });

  describe('catalogue', () => {
    it('filters by component, version range and model, pages, and deletes unless in use', async () => {
      const comp = `app:c${randomChars(8)}`;
      const ids: Record<string, string> = {};
      for (const [v, models] of [
        ['1.0.0', ['T1']],
        ['1.5.0', ['T2']],
        ['2.0.0-rc.1', ['T2', 'T3']],
        ['2.0.0', ['T3']],
      ] as const) {
        const r = await release(v, { component: comp, models: [...models], sizeBytes: 1024 });
        ids[v] = (await upload(await readFile(r.out))).body.id;
        clock.advance(1); // ids are time-ordered: newest first
      }
      const q = (s: string) =>
        t.api('GET', `/api/v1/artifacts?component=${encodeURIComponent(comp)}${s}`, undefined, viewer);
      expect((await q('')).body.items.map((a: { version: string }) => a.version)).toEqual([
        '2.0.0',
        '2.0.0-rc.1',
        '1.5.0',
        '1.0.0',
      ]);
      expect(
        (await q(`&version=${encodeURIComponent('>=1.5.0 <2.0.0')}`)).body.items.map(
          (a: { version: string }) => a.version,
        ),
      ).toEqual(['2.0.0-rc.1', '1.5.0']);
      expect((await q('&model=T2')).body.items.map((a: { version: string }) => a.version)).toEqual([
        '2.0.0-rc.1',
        '1.5.0',
      ]);
      const p1 = await q('&limit=3');
      expect(p1.body.items).toHaveLength(3);
      const p2 = await q(`&limit=3&cursor=${p1.body.nextCursor}`);
      expect(p2.body.items.map((a: { version: string }) => a.version)).toEqual(['1.0.0']);
      expect(p2.body.nextCursor).toBeNull();
      expect((await q('&version=banana')).status).toBe(400);
      expect((await t.api('GET', '/api/v1/artifacts/art_nope')).status).toBe(404);

      t.app.artifacts.artifacts.setInUseCheck(async (id) => id === ids['1.0.0']);
      try {
        const busy = await t.api('DELETE', `/api/v1/artifacts/${ids['1.0.0']}`, undefined, operator);
        expect(busy.status).toBe(409);
        expect(busy.body.error.code).toBe('artifact_in_use');
      } finally {
        t.app.artifacts.artifacts.setInUseCheck(async () => false);
      }
      expect((await t.api('DELETE', `/api/v1/artifacts/${ids['1.0.0']}`, undefined, viewer)).status).toBe(403);
      // Downloaded once (its row is now held by the download path), then deleted: no longer served.
      const url = t.app.artifacts.signedDownloadUrl(ids['1.0.0'], null, 60);
      const before = await fetch(url);
      await before.arrayBuffer();
      expect(before.status).toBe(200);
      expect((await t.api('DELETE', `/api/v1/artifacts/${ids['1.0.0']}`, undefined, operator)).status).toBe(204);
      expect((await t.api('GET', `/api/v1/artifacts/${ids['1.0.0']}`)).status).toBe(404);
      expect((await fetch(url)).status).toBe(404);
      expect(await storedFiles()).not.toContain(ids['1.0.0']);
      expect((await t.api('DELETE', `/api/v1/artifacts/${ids['1.0.0']}`, undefined, operator)).status).toBe(404);
    });
  });

  describe('download', () => {
    let r: SampleRelease;
    let id: string;
    let payload: Buffer;

    beforeAll(async () => {
      r = await release('5.0.0', { sizeBytes: 2 * 1024 * 1024 - 3 });
      id = (await upload(await readFile(r.out))).body.id;
      payload = await readFile(r.payloadPath);
    });

    it('resumes an interrupted download with Range and If-Range to a byte-identical file', async () => {
      const first = await download(id);
      const reader = first.body!.getReader();
      const parts: Buffer[] = [];
      let have = 0;
      while (have < 300 * 1024) {
        const { value } = await reader.read();
        parts.push(Buffer.from(value!));
        have += value!.length;
      }
      await reader.cancel(); // the link drops
      const rest = await download(id, { range: `bytes=${have}-`, 'if-range': `"${r.manifest.sha256}"` });
      expect(rest.status).toBe(206);
      expect(rest.headers.get('content-range')).toBe(`bytes ${have}-${payload.length - 1}/${payload.length}`);
      expect(rest.headers.get('content-length')).toBe(String(payload.length - have));
      const whole = Buffer.concat([...parts, Buffer.from(await rest.arrayBuffer())]);
      expect(whole.equals(payload)).toBe(true);

      const middle = await download(id, { range: 'bytes=10-19' });
      expect(Buffer.from(await middle.arrayBuffer()).equals(payload.subarray(10, 20))).toBe(true);
      const suffix = await download(id, { range: 'bytes=-5' });
      expect(suffix.status).toBe(206);
      expect(Buffer.from(await suffix.arrayBuffer()).equals(payload.subarray(payload.length - 5))).toBe(true);
    });

    it('answers HEAD with the headers only', async () => {
      const res = await download(id, {}, t2, 'HEAD');
      expect(res.status).toBe(200);
      expect(res.headers.get('content-length')).toBe(String(payload.length));
      expect(res.headers.get('etag')).toBe(`"${r.manifest.sha256}"`);
      expect(res.headers.get('accept-ranges')).toBe('bytes');
      expect((await res.arrayBuffer()).byteLength).toBe(0);
      const part = await download(id, { range: 'bytes=0-99' }, t2, 'HEAD');
      expect(part.status).toBe(206);
      expect(part.headers.get('content-length')).toBe('100');
    });

    it('answers 416 outside the payload, 200 when If-Range does not match, 304 on If-None-Match', async () => {
      const out = await download(id, { range: `bytes=${payload.length}-` });
      expect(out.status).toBe(416);
      expect(out.headers.get('content-range')).toBe(`bytes */${payload.length}`);
      await out.arrayBuffer();
      const stale = await download(id, { range: 'bytes=100-', 'if-range': '"0000"' });
      expect(stale.status).toBe(200);
      expect(Buffer.from(await stale.arrayBuffer()).equals(payload)).toBe(true);
      const same = await download(id, { 'if-none-match': `"${r.manifest.sha256}"` });
      expect(same.status).toBe(304);
      const many = await download(id, { range: 'bytes=0-1,5-6' });
      expect(many.status).toBe(200);
      await many.arrayBuffer();
    });

    it('refuses a terminal of another model (403), no or bad credentials (401)', async () => {
      const foreign = await download(id, {}, t1);
      expect(foreign.status).toBe(403);
      expect(((await foreign.json()) as any).error.code).toBe('not_eligible');
      const none = await fetch(`${t.app.baseUrl}/api/v1/artifacts/${id}/download`);
      expect(none.status).toBe(401);
      const wrong = await download(id, {}, { ...t2, password: 'pfd_wrong' });
      expect(wrong.status).toBe(401);
      const apiKey = await fetch(`${t.app.baseUrl}/api/v1/artifacts/${id}/download`, {
        headers: { authorization: `Bearer ${t.adminToken}` },
      });
      expect(apiKey.status).toBe(401);
      expect((await download('art_nope')).status).toBe(404);
    });

    it('serves a signed URL until it expires, and refuses it when tampered with', async () => {
      const url = t.app.artifacts.signedDownloadUrl(id, t2.deviceId, 600);
      expect(new URL(url).pathname).toBe(`/api/v1/artifacts/${id}/download`);
      const local = (u: string) => {
        const x = new URL(u);
        x.host = new URL(t.app.baseUrl).host;
        return x.toString();
      };
      const ok = await fetch(local(url));
      expect(ok.status).toBe(200);
      expect(sha256(Buffer.from(await ok.arrayBuffer()))).toBe(r.manifest.sha256);
      const ranged = await fetch(local(url), { headers: { range: 'bytes=5-' } });
      expect(ranged.status).toBe(206);
      await ranged.arrayBuffer();

      const u = new URL(local(url));
      const tamper = async (edit: (p: URLSearchParams) => void) => {
        const x = new URL(u);
        edit(x.searchParams);
        const res = await fetch(x);
        return { status: res.status, code: ((await res.json()) as any).error.code };
      };
      expect(await tamper((p) => p.set('exp', String(Number(p.get('exp')) + 3600)))).toEqual({
        status: 403,
        code: 'invalid_url_signature',
      });
      expect(await tamper((p) => p.set('device', t1.deviceId))).toEqual({ status: 403, code: 'invalid_url_signature' });
      expect(await tamper((p) => p.delete('device'))).toEqual({ status: 403, code: 'invalid_url_signature' });
      expect(
        await tamper((p) =>
          p.set(
            'sig',
            p.get('sig')!.replace(/^./, (ch) => (ch === 'A' ? 'B' : 'A')),
          ),
        ),
      ).toEqual({ status: 403, code: 'invalid_url_signature' });
      const elsewhere = new URL(u);
      elsewhere.pathname = elsewhere.pathname.replace(
        id,
        (await t.api('GET', `/api/v1/artifacts?component=${encodeURIComponent(app)}&limit=500`)).body.items.find(
          (a: { id: string }) => a.id !== id,
        ).id,
      );
      expect((await fetch(elsewhere)).status).toBe(403);

      clock.advance(601_000);
      try {
        const late = await fetch(local(url));
        expect(late.status).toBe(403);
        expect(((await late.json()) as any).error.code).toBe('url_expired');
      } finally {
        clock.advance(-601_000);
      }
    });

    it('answers 503 payload_missing when the file is gone from storage', async () => {
      const lost = await release('5.9.0', { sizeBytes: 1024 });
      const lostId = (await upload(await readFile(lost.out))).body.id;
      await rm(join(t.app.config.dataDir, 'artifacts', lostId));
      const res = await download(lostId);
      expect(res.status).toBe(503);
      expect(((await res.json()) as any).error.code).toBe('payload_missing');
    });

    it('counts downloads and bytes in /metrics', async () => {
      const text = (await t.api('GET', '/metrics', undefined, null)).body as string;
      expect(text).toMatch(/posfleet_artifact_downloads_total\{result="full"\} [1-9]/);
      expect(text).toMatch(/posfleet_artifact_downloads_total\{result="partial"\} [1-9]/);
      expect(text).toMatch(/posfleet_artifact_bytes_served_total [1-9]/);
      expect(text).toMatch(/posfleet_artifact_uploads_total\{result="stored"\} [1-9]/);
    });
  });
});
