// Writes a download answer: headers from planDownload, then the payload bytes
// streamed from the store as the Response body.
import type { ServerResponse } from 'node:http';
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { Context } from 'hono';
import type { HttpEnv } from '../http/types.ts';
import { DomainError } from '../lib/errors.ts';
import type { Metrics } from '../lib/metrics.ts';
import type { ArtifactStore } from './artifact-store.ts';
import type { ArtifactRow } from './artifacts.tables.ts';
import { planDownload } from './byte-range.ts';
import { pumpFile, sendBuffer } from './file-pump.ts';
import type { PayloadCache } from './payload-cache.ts';

export interface ServeDeps {
  store: ArtifactStore;
  metrics: Metrics;
  /** Small payloads served from memory (see payload-cache.ts). */
  payloads?: PayloadCache;
}

function baseHeaders(c: Context<HttpEnv>, _a: ArtifactRow, etag: string): Record<string, string> {
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
  const plan = planDownload(
    { range: c.req.header('range'), ifRange: c.req.header('if-range'), ifNoneMatch: c.req.header('if-none-match') },
    a.size,
    etag,
  );
  const headers = baseHeaders(c, a, etag);

  if (plan.status === 304) {
    metrics.artifactDownloads.inc({ result: 'not_modified' });
    return new Response(null, { status: 304, headers });
  }
  if (plan.status === 416) {
    metrics.artifactDownloads.inc({ result: 'unsatisfiable' });
    const body = errorBody(
      'range_not_satisfiable',
      `the payload is ${a.size} bytes; the requested range is outside it`,
    );
    return new Response(head ? null : body, {
      status: 416,
      headers: { ...headers, 'content-range': `bytes */${a.size}`, 'content-type': 'application/json' },
    });
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

  const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
  const node = outgoing && typeof outgoing.writeHead === 'function' ? outgoing : undefined;
  const path = deps.store.localPath?.(a.storage_key);
  const missing = (err: unknown): never => {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    c.get('log').error({ artifactId: a.id, storageKey: a.storage_key }, 'artifact payload missing from the store');
    throw new DomainError('unavailable', 'payload_missing', `the payload of artifact ${a.id} is missing from storage`);
  };
  const bytes = (n: number) => metrics.artifactBytesServed.inc(n);

  const held = node && path ? deps.payloads?.get(a.id, path, a.size) : null;
  if (node && held) {
    // Read (or found) before the headers go out, so a missing file is a clean 503.
    const payload = await held.catch(missing);
    metrics.artifactDownloads.inc({ result });
    const send = () => sendBuffer(payload, plan.start, plan.end, node).then(bytes);
    return new Response(
      bodyWrittenBy(node, send, () => undefined),
      { status: plan.status, headers },
    );
  }

  if (node && path) {
    // Opened before the headers go out, so a missing file is a clean 503.
    const file = await open(path, 'r').catch(missing);
    metrics.artifactDownloads.inc({ result });
    const pump = () =>
      pumpFile(file, plan.start, plan.end, node)
        .then(bytes)
        .finally(() => file.close());
    return new Response(
      bodyWrittenBy(node, pump, () => undefined),
      { status: plan.status, headers },
    );
  }

  const stream = await deps.store.open(a.storage_key, { start: plan.start, end: plan.end }).catch(missing);
  metrics.artifactDownloads.inc({ result });
  stream.once('close', () => bytes((stream as Readable & { bytesRead?: number }).bytesRead ?? 0));
  if (!node)
    return new Response(Readable.toWeb(stream) as ReadableStream<Uint8Array>, { status: plan.status, headers });
  const pipe = () =>
    new Promise<void>((resolve, reject) => {
      stream.once('error', reject);
      stream.once('end', resolve);
      stream.pipe(node, { end: false });
    });
  return new Response(
    bodyWrittenBy(node, pipe, () => stream.destroy()),
    { status: plan.status, headers },
  );
}

/**
 * A Response body whose bytes `write` puts on the Node response directly.
 * @hono/node-server writes the status line and headers, then reads the body;
 * on that first read `write` runs, and the body closes when it is done so the
 * server ends the response. Passing every chunk through a Web stream instead
 * costs several times the CPU per byte (bench/download).
 */
function bodyWrittenBy(
  out: ServerResponse,
  write: () => Promise<unknown>,
  cancel: () => void,
): ReadableStream<Uint8Array> {
  let started = false;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (started) return;
        started = true;
        // The server may read once before it writes the headers; bytes must not overtake them.
        for (let i = 0; !out.headersSent && i < 1000; i++) await new Promise((r) => setImmediate(r));
        try {
          if (!out.headersSent) throw new Error('response headers were never written');
          await write();
          controller.close();
        } catch (err) {
          cancel();
          controller.error(err);
        }
      },
      cancel,
    },
    { highWaterMark: 0 },
  );
}
