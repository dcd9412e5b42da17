// Artifact download over plain HTTP with resume: after a cut connection the
// next request asks for `Range: bytes=N-` and the hash continues where it
// stopped, so nothing is kept in memory but the running sha256.
import { createHash, type Hash } from 'node:crypto';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Clock } from './clock.ts';

export type DownloadErrorCode = 'download_failed' | 'size_mismatch';

export class DownloadError extends Error {
  constructor(
    readonly code: DownloadErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface DownloadOptions {
  url: string;
  size: number;
  clock: Clock;
  maxAttempts?: number;
  retryDelayMs?: number;
  idleTimeoutMs?: number;
  /** Flip a byte of the first chunk: the download-corrupt profile. */
  corrupt?: boolean;
  /** Cut the connection once after this many bytes: the flaky-network profile. */
  cutAfterBytes?: number;
  onProgress?: (bytes: number) => void;
}

export interface DownloadResult {
  bytes: number;
  sha256: string;
  attempts: number;
  /** How many times a later request resumed with Range. */
  resumes: number;
}

interface Progress {
  bytes: number;
  hash: Hash;
  resumes: number;
  corrupted: boolean;
  cut: boolean;
}

export async function download(opts: DownloadOptions): Promise<DownloadResult> {
  const maxAttempts = opts.maxAttempts ?? 6;
  const p: Progress = { bytes: 0, hash: createHash('sha256'), resumes: 0, corrupted: false, cut: false };
  let lastError = '';
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    try {
      const done = await attemptOnce(opts, p);
      if (done) return { bytes: p.bytes, sha256: p.hash.digest('hex'), attempts: attempt, resumes: p.resumes };
    } catch (err) {
      if (err instanceof DownloadError) throw err;
      lastError = (err as Error).message;
    }
    if (attempt < maxAttempts) await sleep(opts.clock, (opts.retryDelayMs ?? 1_000) * attempt);
  }
  throw new DownloadError('download_failed', `gave up after ${maxAttempts} attempts: ${lastError || 'connection cut'}`);
}

/** One request; true when the artifact is complete, false when it was cut and may resume. */
async function attemptOnce(opts: DownloadOptions, p: Progress): Promise<boolean> {
  const resumeFrom = p.bytes;
  const res = await get(
    opts.url,
    resumeFrom > 0 ? { range: `bytes=${resumeFrom}-` } : {},
    opts.idleTimeoutMs ?? 30_000,
  );
  if (resumeFrom > 0 && res.statusCode === 416 && resumeFrom === opts.size) {
    res.resume();
    return true;
  }
  if (res.statusCode === 206) {
    if (!String(res.headers['content-range'] ?? '').startsWith(`bytes ${resumeFrom}-`)) {
      res.resume();
      throw new DownloadError(
        'download_failed',
        `server answered range ${String(res.headers['content-range'])} for bytes=${resumeFrom}-`,
      );
    }
    p.resumes++;
  } else if (res.statusCode === 200) {
    // The server ignored Range and sends everything again: start over.
    if (resumeFrom > 0) Object.assign(p, { bytes: 0, hash: createHash('sha256') });
  } else {
    res.resume();
    const retryable = res.statusCode === 429 || (res.statusCode ?? 0) >= 500;
    if (retryable) throw new Error(`HTTP ${res.statusCode}`);
    throw new DownloadError('download_failed', `HTTP ${res.statusCode} from artifact URL`);
  }
  await consume(res, opts, p);
  if (p.bytes !== opts.size)
    throw new DownloadError('size_mismatch', `received ${p.bytes} bytes, manifest says ${opts.size}`);
  return true;
}

async function consume(res: IncomingMessage, opts: DownloadOptions, p: Progress): Promise<void> {
  for await (const raw of res as AsyncIterable<Buffer>) {
    let chunk = raw;
    if (opts.corrupt && !p.corrupted && chunk.length > 0) {
      chunk = Buffer.from(chunk);
      chunk[0] ^= 0xff;
      p.corrupted = true;
    }
    p.hash.update(chunk);
    p.bytes += chunk.length;
    if (p.bytes > opts.size) {
      res.destroy();
      throw new DownloadError('size_mismatch', `received more than the ${opts.size} bytes the manifest says`);
    }
    opts.onProgress?.(p.bytes);
    if (opts.cutAfterBytes !== undefined && !p.cut && p.bytes >= opts.cutAfterBytes && p.bytes < opts.size) {
      p.cut = true;
      res.destroy(new Error('simulated network cut'));
    }
  }
}

function get(url: string, headers: Record<string, string>, idleTimeoutMs: number): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const lib = url.startsWith('https:') ? https : http;
    const req = lib.get(url, { headers }, resolve);
    req.setTimeout(idleTimeoutMs, () => req.destroy(new Error(`no data for ${idleTimeoutMs} ms`)));
    req.on('error', reject);
  });
}

export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(resolve, ms));
}
