// HTTP range and conditional request rules for downloads (RFC 9110 §13, §14),
// as pure functions over header values so every case has a unit test.

export type DownloadPlan =
  | { status: 200; start: 0; end: number; length: number }
  | { status: 206; start: number; end: number; length: number }
  | { status: 304 }
  | { status: 416 };

type Span = { start: number; end: number } | 'unsatisfiable' | null;

/**
 * One `bytes=` range against a representation of `size` bytes. null means
 * "serve the whole thing": no header, another unit, bad syntax, or several
 * ranges (RFC 9110 §14.2 lets a server ignore Range; multipart is not worth it
 * for firmware downloads, which resume with a single open-ended range).
 */
export function parseRange(header: string | undefined, size: number): Span {
  if (!header) return null;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m) return null;
  const [, first, last] = m;
  if (first === '' && last === '') return null;
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Number(last);
  if (start >= size) return 'unsatisfiable';
  if (end < start) return null;
  return { start, end: Math.min(end, size - 1) };
}

function entityTags(header: string): string[] {
  return header
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
}

/** If-None-Match uses the weak comparison: W/"x" matches "x". */
export function noneMatchHits(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return entityTags(header).some((t) => t === '*' || t.replace(/^W\//, '') === etag);
}

/** If-Range needs a strong match; a date (we send no Last-Modified) never matches. */
export function ifRangeHolds(header: string | undefined, etag: string): boolean {
  if (header === undefined) return true;
  return header.trim() === etag;
}

export interface ConditionalHeaders {
  range?: string;
  ifRange?: string;
  ifNoneMatch?: string;
}

/** What to answer a GET/HEAD for a payload of `size` bytes tagged `etag`. */
export function planDownload(h: ConditionalHeaders, size: number, etag: string): DownloadPlan {
  if (noneMatchHits(h.ifNoneMatch, etag)) return { status: 304 };
  const span = ifRangeHolds(h.ifRange, etag) ? parseRange(h.range, size) : null;
  if (span === 'unsatisfiable') return { status: 416 };
  if (span === null) return { status: 200, start: 0, end: size - 1, length: size };
  return { status: 206, start: span.start, end: span.end, length: span.end - span.start + 1 };
}
