// Writes a download answer: headers from planDownload, then the payload bytes
// streamed from the store as the Response body.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Context } from 'hono';
import type { HttpEnv } from '../http/types.ts';
import { DomainError } from '../lib/errors.ts';
import type { Metrics } from '../lib/metrics.ts';
import type { ArtifactStore } from './artifact-store.ts';
import type { ArtifactRow } from './artifacts.tables.ts';
import { planDownload } from './byte-range.ts';

export interface ServeDeps {
  store: ArtifactStore;
  metrics: Metrics;
}

function baseHeaders(c: Context<HttpEnv>, a: ArtifactRow, etag: string): Record<string, string> {
  return {
    etag,
    'accept-ranges': 'bytes',
    'cache-control': 'private, no-transform',
    'x-request-id': c.get('requestId'),
  };
}

function errorBody(code: string, message: string): string {
  return JSON.stringify({ error: { code, message } });
}

export async function serveDownload(c: Context<HttpEnv>, a: ArtifactRow, deps: ServeDeps): Promise<Response> {
  const { metrics } = deps;
  const etag = `"${a.sha256}"`;
  const head = c.req.method === 'HEAD';
  const plan = planDownload({ range: c.req.header('range'), ifRange: c.req.header('if-range'), ifNoneMatch: c.req.header('if-none-match') }, a.size, etag);
  const headers = baseHeaders(c, a, etag);

  if (plan.status === 304) {
    metrics.artifactDownloads.inc({ result: 'not_modified' });
    return new Response(null, { status: 304, headers });
  }
  if (plan.status === 416) {
    metrics.artifactDownloads.inc({ result: 'unsatisfiable' });
    const body = errorBody('range_not_satisfiable', `the payload is ${a.size} bytes; the requested range is outside it`);
    return new Response(head ? null : body, { status: 416, headers: { ...headers, 'content-range': `bytes */${a.size}`, 'content-type': 'application/json' } });
  }

  headers['content-type'] = 'application/octet-stream';
  headers['content-disposition'] = `attachment; filename="${a.component.replace(':', '-')}-${a.version}.bin"`;
  headers['content-length'] = String(plan.length);
  if (plan.status === 206) headers['content-range'] = `bytes ${plan.start}-${plan.end}/${a.size}`;
  const result = plan.status === 206 ? 'partial' : 'full';
  if (head || plan.length === 0) {
    metrics.artifactDownloads.inc({ result: head ? 'head' : result });
    return new Response(null, { status: plan.status, headers });
  }

  let stream: Readable;
  try {
    stream = await deps.store.open(a.storage_key, { start: plan.start, end: plan.end });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    c.get('log').error({ artifactId: a.id, storageKey: a.storage_key }, 'artifact payload missing from the store');
    throw new DomainError('unavailable', 'payload_missing', `the payload of artifact ${a.id} is missing from storage`);
  }
  metrics.artifactDownloads.inc({ result });
  const counted = () => metrics.artifactBytesServed.inc((stream as Readable & { bytesRead?: number }).bytesRead ?? 0);

  stream.once('close', counted);
  return new Response(Readable.toWeb(stream) as ReadableStream, { status: plan.status, headers });
}
