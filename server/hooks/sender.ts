// One webhook POST over node:http(s): a hard timeout, no redirects followed,
// the SSRF guard on every connection, and a short excerpt of the answer for the log.
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { guardedLookup, isNonPublicAddress } from './ssrf.ts';

export interface SendResult {
  ok: boolean;
  status: number | null;
  latencyMs: number;
  error: string | null;
  response: string | null;
}

const EXCERPT = 2_048;

export function postWebhook(
  rawUrl: string,
  headers: Record<string, string>,
  body: string,
  opts: { timeoutMs: number; allowPrivate: boolean },
): Promise<SendResult> {
  const started = performance.now();
  const done = (r: Omit<SendResult, 'latencyMs' | 'ok'>): SendResult => ({
    ...r,
    ok: r.status !== null && r.status >= 200 && r.status < 300,
    latencyMs: Math.round(performance.now() - started),
  });
  const url = new URL(rawUrl);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  // An IP literal never goes through `lookup`: check it here.
  if (!opts.allowPrivate && isIP(host) && isNonPublicAddress(host)) {
    return Promise.resolve(
      done({ status: null, error: `destination ${host} is not a public address`, response: null }),
    );
  }
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve) => {
    let settled = false;
    const finish = (r: Omit<SendResult, 'latencyMs' | 'ok'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(done(r));
    };
    const req = client.request(
      url,
      {
        method: 'POST',
        lookup: guardedLookup(opts.allowPrivate) as never,
        agent: false,
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          if (size < EXCERPT) chunks.push(c);
          size += c.length;
        });
        res.on('end', () =>
          finish({
            status: res.statusCode ?? null,
            error: null,
            response: Buffer.concat(chunks).toString('utf8').slice(0, EXCERPT),
          }),
        );
        res.on('error', (err) => finish({ status: res.statusCode ?? null, error: err.message, response: null }));
      },
    );
    const timer = setTimeout(() => {
      finish({ status: null, error: `timeout after ${opts.timeoutMs} ms`, response: null });
      req.destroy();
    }, opts.timeoutMs);
    req.on('error', (err) =>
      finish({
        status: null,
        error: err.message || (err as NodeJS.ErrnoException).code || 'request failed',
        response: null,
      }),
    );
    req.end(body);
  });
}
