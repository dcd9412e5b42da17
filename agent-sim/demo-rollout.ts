// The release half of `npm run demo`: a publisher key the server trusts, a
// small signed sample firmware uploaded as an artifact, a cohort of the demo
// fleet and a rollout in waves. Everything goes through the public HTTP API
// with the admin token; the key and the package are made with the firmware/
// tooling a publisher would use. Re-running the demo on the same DATA_DIR
// reuses what exists (409s are expected) and follows a rollout left running.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import semver from 'semver';
import { generateKeyPair, keyIdOf, loadPublicKeyPem, PRIVATE_KEY_FILE, PUBLIC_KEY_FILE } from '../firmware/keys.ts';
import { buildSampleRelease } from '../firmware/samples.ts';

/** What the demo's enrolment tokens tag every terminal with (agent-sim/setup.ts). */
export const DEMO_TAG = 'agent-sim';
export const DEMO_COHORT = 'demo fleet (agent-sim)';
const ROLLOUT_PREFIX = 'demo firmware';
const MODELS = ['T1', 'T2', 'T3'];

export interface ApiAnswer {
  status: number;
  /** The JSON answer, read field by field (the demo only prints and passes ids on). */
  // biome-ignore lint/suspicious/noExplicitAny: JSON of many shapes, read field by field
  body: any;
}

export class DemoApi {
  constructor(
    readonly base: string,
    private readonly token: string,
  ) {}

  async call(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<ApiAnswer> {
    const raw = body instanceof Uint8Array;
    const res = await fetch(`${this.base}/api/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body === undefined ? {} : { 'content-type': raw ? 'application/octet-stream' : contentType }),
      },
      body: body === undefined ? undefined : raw ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = text;
    }
    return { status: res.status, body: json };
  }

  /** The answer if its status is one of `ok`, otherwise an error naming the API's code and message. */
  async expect(method: string, path: string, body: unknown, ok: number[]): Promise<ApiAnswer> {
    const a = await this.call(method, path, body);
    if (!ok.includes(a.status)) throw new Error(`${method} ${path}: ${a.status} ${describeError(a)}`);
    return a;
  }
}

export function describeError(a: ApiAnswer): string {
  const e = (a.body as { error?: { code?: string; message?: string } } | undefined)?.error;
  return e ? `${e.code}: ${e.message}` : (JSON.stringify(a.body)?.slice(0, 300) ?? '');
}

export interface PublisherKey {
  dir: string;
  privateKeyPath: string;
  publicKeyPem: string;
  keyId: string;
  created: boolean;
}

/** DIR/publisher.key and .pub: created on the first run, reused afterwards. */
export async function ensurePublisherKey(dir: string): Promise<PublisherKey> {
  const privateKeyPath = join(dir, PRIVATE_KEY_FILE);
  const created = !existsSync(privateKeyPath);
  if (created) await generateKeyPair(dir);
  const publicKeyPem = await loadPublicKeyPem(
    existsSync(join(dir, PUBLIC_KEY_FILE)) ? join(dir, PUBLIC_KEY_FILE) : privateKeyPath,
  );
  return { dir, privateKeyPath, publicKeyPem, keyId: keyIdOf(publicKeyPem), created };
}

/** POST /signing-keys; 409 means this key is trusted already. */
export async function trustKey(api: DemoApi, key: PublisherKey): Promise<'trusted' | 'already trusted'> {
  const a = await api.expect(
    'POST',
    '/signing-keys',
    { name: `posfleet demo publisher ${key.keyId}`, publicKey: key.publicKeyPem },
    [201, 409],
  );
  return a.status === 201 ? 'trusted' : 'already trusted';
}

/**
 * The version the rollout installs: 1.1.0 on a fresh fleet; on a fleet that
 * took an earlier demo rollout (identities are kept in DATA_DIR), the next
 * minor above the newest firmware it runs, so a re-run still has work to do.
 */
export function targetVersion(fleetFirmware: Iterable<string>): string {
  let newest = '1.0.0';
  for (const v of fleetFirmware) if (semver.valid(v) && semver.gt(v, newest)) newest = v;
  return semver.lt(newest, '1.1.0') ? '1.1.0' : semver.inc(newest, 'minor')!;
}

export interface DemoArtifact {
  id: string;
  version: string;
  size: number;
  keyId: string;
  uploaded: boolean;
}

/** Builds firmware VERSION for T1,T2,T3 (~256 KiB), signs it and uploads it; an existing one is looked up. */
export async function publishFirmware(
  api: DemoApi,
  key: PublisherKey,
  dir: string,
  version: string,
): Promise<DemoArtifact> {
  const release = await buildSampleRelease({
    component: 'firmware',
    version,
    models: MODELS,
    sizeBytes: 256 * 1024,
    dir,
    key: key.privateKeyPath,
    notes: `posfleet demo firmware ${version}`,
  });
  const up = await api.expect('POST', '/artifacts', new Uint8Array(await readFile(release.out)), [201, 409]);
  if (up.status === 201) return { id: up.body.id, version, size: up.body.size, keyId: up.body.keyId, uploaded: true };
  if (up.body?.error?.code !== 'artifact_exists') throw new Error(`POST /artifacts: 409 ${describeError(up)}`);
  const found = await api.expect(
    'GET',
    `/artifacts?component=firmware&version=${encodeURIComponent(version)}`,
    undefined,
    [200],
  );
  const a = (found.body.items as Array<{ id: string; version: string; size: number; keyId: string }>).find(
    (x) => x.version === version,
  );
  if (!a) throw new Error(`POST /artifacts said firmware ${version} exists, but GET /artifacts does not list it`);
  return { id: a.id, version, size: a.size, keyId: a.keyId, uploaded: false };
}

/** A dynamic cohort of every terminal the demo enrolled (by its enrolment tag); reused by name. */
export async function ensureCohort(api: DemoApi): Promise<{ id: string; created: boolean }> {
  const a = await api.expect('POST', '/cohorts', { name: DEMO_COHORT, filter: { tags: [DEMO_TAG] } }, [201, 409]);
  if (a.status === 201) return { id: a.body.id, created: true };
  const id = a.body?.error?.details?.cohortId as string | undefined;
  if (!id) throw new Error(`POST /cohorts: 409 ${describeError(a)}`);
  return { id, created: false };
}

export interface RolloutView {
  id: string;
  name: string;
  state: string;
  version: string;
  currentWave: number;
  reason: string | null;
  total: number;
  counts: Record<string, number>;
  waves: Array<{ index: number; percent: number; state: string; size: number; counts: Record<string, number> }>;
}

const ACTIVE = ['draft', 'scheduled', 'running', 'paused'];
export const isFinal = (state: string) => !ACTIVE.includes(state);

/** A demo rollout a previous, interrupted run left active (the server carries on with it). */
export async function activeDemoRollout(api: DemoApi): Promise<RolloutView | null> {
  const a = await api.expect('GET', '/rollouts?limit=50', undefined, [200]);
  const r = (a.body.items as RolloutView[]).find((x) => x.name.startsWith(ROLLOUT_PREFIX) && ACTIVE.includes(x.state));
  return r ?? null;
}

export interface RolloutSettings {
  waves: number[];
  soakMinutes: number;
}

/** POST /rollouts: waves as given, no window (it runs now), the engine's other defaults. */
export async function startRollout(
  api: DemoApi,
  artifact: DemoArtifact,
  cohortId: string,
  s: RolloutSettings,
): Promise<RolloutView> {
  const body = {
    name: `${ROLLOUT_PREFIX} ${artifact.version} (${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC)`,
    artifactId: artifact.id,
    cohortId,
    waves: s.waves.map((percent) => ({ percent })),
    soakMinutes: s.soakMinutes,
    window: null,
  };
  const a = await api.call('POST', '/rollouts', body);
  if (a.status !== 201) {
    const details = a.body?.error?.details ? ` ${JSON.stringify(a.body.error.details)}` : '';
    throw new Error(`POST /rollouts: ${a.status} ${describeError(a)}${details}`);
  }
  return a.body as RolloutView;
}

export async function getRollout(api: DemoApi, id: string): Promise<RolloutView> {
  return (await api.expect('GET', `/rollouts/${id}`, undefined, [200])).body as RolloutView;
}

const ORDER = [
  'succeeded',
  'verifying',
  'rebooting',
  'installing',
  'downloading',
  'accepted',
  'sent',
  'deferred',
  'queued',
  'waiting_window',
  'pending',
  'failed',
  'timed_out',
  'skipped',
  'cancelled',
];

/** "running · wave 2/3 (50%) · succeeded 21, verifying 12, downloading 3, pending 100 · of 200" */
export function progressLine(r: RolloutView): string {
  const counts =
    Object.entries(r.counts)
      .filter(([, n]) => n > 0)
      .sort(([a], [b]) => (ORDER.indexOf(a) + 1 || 99) - (ORDER.indexOf(b) + 1 || 99))
      .map(([k, n]) => `${k} ${n}`)
      .join(', ') || 'no devices yet';
  const wave = r.waves[r.currentWave];
  const waveText = wave ? `wave ${r.currentWave + 1}/${r.waves.length} (${wave.percent}%)` : '';
  return [`rollout ${r.state}`, waveText, counts, `of ${r.total}`, r.reason ? `(${r.reason})` : '']
    .filter(Boolean)
    .join(' · ');
}
