// Artifact downloads: who may fetch (a terminal with its own credentials, or
// the holder of a signed URL), and what to answer (Range, If-Range,
// If-None-Match, HEAD). Serving the bytes is in download-response.ts.
import type { Devices } from '../devices/devices.service.ts';
import type { Clock } from '../lib/clock.ts';
import { DomainError, notFound } from '../lib/errors.ts';
import type { ArtifactsRepo } from './artifacts.repo.ts';
import type { ArtifactRow } from './artifacts.tables.ts';
import type { SignedUrlParams, UrlSigner } from './url-signing.ts';

export interface DownloadCredentials {
  authorization?: string;
  signed?: Partial<SignedUrlParams>;
}

const refused = (code: string, message: string) => new DomainError('forbidden', code, message);
const unauthorized = (message: string) => new DomainError('unauthorized', 'unauthorized', message);

/** `Bearer <deviceId>:<token>` or `Basic base64(<deviceId>:<token>)`. */
export function deviceCredentials(header: string | undefined): { deviceId: string; token: Buffer } | null {
  if (!header) return null;
  const m = /^(Bearer|Basic)\s+(\S+)\s*$/i.exec(header);
  if (!m) return null;
  const pair = m[1].toLowerCase() === 'basic' ? Buffer.from(m[2], 'base64').toString('utf8') : m[2];
  const colon = pair.indexOf(':');
  if (colon <= 0 || colon === pair.length - 1) return null;
  return { deviceId: pair.slice(0, colon), token: Buffer.from(pair.slice(colon + 1), 'utf8') };
}

/** How long a download trusts an artifact row it read (rows never change; a delete elsewhere is seen this late). */
const ROW_TTL_MS = 5_000;
const ROWS_MAX = 256;

export function createDownloads(deps: {
  repo: ArtifactsRepo;
  devices: Devices;
  signer: UrlSigner;
  clock: Clock;
  publicUrl: () => string;
}) {
  const { repo, devices, signer } = deps;
  // A rollout sends thousands of terminals to the same artifact within seconds:
  // its row is read once per few seconds, not once per download. Stored
  // artifacts are immutable; this process forgets a row it deletes at once.
  const rows = new Map<string, { row: ArtifactRow; at: number }>();

  async function artifactRow(id: string): Promise<ArtifactRow | undefined> {
    const hit = rows.get(id);
    if (hit && Date.now() - hit.at < ROW_TTL_MS) return hit.row;
    const row = await repo.get(id);
    if (rows.size >= ROWS_MAX) rows.clear();
    if (row) rows.set(id, { row, at: Date.now() });
    else rows.delete(id);
    return row;
  }

  async function viaSignedUrl(artifactId: string, p: Partial<SignedUrlParams>): Promise<void> {
    if (p.exp === undefined || !p.sig) throw refused('invalid_url_signature', 'a signed URL needs both exp and sig');
    const verdict = signer.verify(artifactId, { exp: p.exp, sig: p.sig, ...(p.device && { device: p.device }) });
    if (verdict === 'bad_signature')
      throw refused('invalid_url_signature', 'the download URL was altered or is not from this server');
    if (verdict === 'expired') throw refused('url_expired', 'the download URL has expired; ask for the update again');
  }

  async function viaDevice(artifact: ArtifactRow, header: string | undefined): Promise<string> {
    const creds = deviceCredentials(header);
    if (!creds)
      throw unauthorized(
        'a terminal downloads with its own credentials (Authorization: Bearer <deviceId>:<token>, or Basic) or a signed URL',
      );
    const verdict = await devices.authenticateDevice(creds.deviceId, creds.token);
    if (verdict === 'bad_credentials') throw unauthorized('unknown device or wrong token');
    if (verdict !== 'ok')
      throw refused('device_not_authorized', `device ${creds.deviceId} may not download (not active)`);
    const device = await devices.require(creds.deviceId);
    if (!artifact.models.includes(device.model)) {
      throw refused(
        'not_eligible',
        `artifact ${artifact.id} is for ${artifact.models.join(', ')}; device ${device.id} is a ${device.model}`,
      );
    }
    return device.id;
  }

  /**
   * The artifact, once the caller may have it. The row is read first so an
   * unknown id is a 404 for everyone; credentials are judged after.
   */
  async function authorize(
    artifactId: string,
    creds: DownloadCredentials,
  ): Promise<{ artifact: ArtifactRow; deviceId: string | null }> {
    const artifact = await artifactRow(artifactId);
    if (!artifact) throw notFound('artifact', artifactId);
    if (creds.signed?.sig !== undefined || creds.signed?.exp !== undefined) {
      await viaSignedUrl(artifactId, creds.signed);
      return { artifact, deviceId: creds.signed.device ?? null };
    }
    return { artifact, deviceId: await viaDevice(artifact, creds.authorization) };
  }

  /** Absolute URL a terminal can fetch the artifact with for `ttlS` seconds (rollouts put it in update commands). */
  function signedDownloadUrl(artifactId: string, deviceId: string | null, ttlS: number): string {
    const p = signer.sign(artifactId, deviceId, ttlS);
    const q = new URLSearchParams({ ...(p.device && { device: p.device }), exp: String(p.exp), sig: p.sig });
    return `${deps.publicUrl()}/api/v1/artifacts/${encodeURIComponent(artifactId)}/download?${q}`;
  }

  return { authorize, signedDownloadUrl, forget: (artifactId: string) => void rows.delete(artifactId) };
}

export type Downloads = ReturnType<typeof createDownloads>;
