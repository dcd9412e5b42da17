import { describe, expect, it } from 'vitest';
import { ifRangeHolds, noneMatchHits, parseRange, planDownload } from './byte-range.ts';

describe('parseRange', () => {
  const size = 1000;
  it.each([
    [undefined, null],
    ['bytes=0-99', { start: 0, end: 99 }],
    ['bytes=500-', { start: 500, end: 999 }],
    ['bytes=990-5000', { start: 990, end: 999 }],
    ['bytes=-10', { start: 990, end: 999 }],
    ['bytes=-5000', { start: 0, end: 999 }],
    ['BYTES = 1 - 2', { start: 1, end: 2 }],
    ['bytes=1000-', 'unsatisfiable'],
    ['bytes=1000-1001', 'unsatisfiable'],
    ['bytes=-0', 'unsatisfiable'],
    ['bytes=5-1', null],
    ['bytes=0-1,5-6', null],
    ['items=0-1', null],
    ['bytes=-', null],
    ['bytes=a-b', null],
  ] as const)('%s', (header, expected) => {
    expect(parseRange(header, size)).toEqual(expected);
  });

  it('finds nothing to serve in an empty payload', () => {
    expect(parseRange('bytes=0-', 0)).toBe('unsatisfiable');
    expect(parseRange('bytes=-1', 0)).toBe('unsatisfiable');
  });
});

describe('conditional headers', () => {
  const etag = '"abc"';
  it('If-None-Match: weak comparison, lists and *', () => {
    expect(noneMatchHits('"abc"', etag)).toBe(true);
    expect(noneMatchHits('W/"abc"', etag)).toBe(true);
    expect(noneMatchHits('"x", "abc"', etag)).toBe(true);
    expect(noneMatchHits('*', etag)).toBe(true);
    expect(noneMatchHits('"x"', etag)).toBe(false);
    expect(noneMatchHits(undefined, etag)).toBe(false);
  });
  it('If-Range: strong match only; a date never matches', () => {
    expect(ifRangeHolds(undefined, etag)).toBe(true);
    expect(ifRangeHolds('"abc"', etag)).toBe(true);
    expect(ifRangeHolds('W/"abc"', etag)).toBe(false);
    expect(ifRangeHolds('Wed, 21 Oct 2015 07:28:00 GMT', etag)).toBe(false);
  });
});

describe('planDownload', () => {
  const etag = '"e"';
  it('serves whole, partial, not modified or unsatisfiable', () => {
    expect(planDownload({}, 10, etag)).toEqual({ status: 200, start: 0, end: 9, length: 10 });
    expect(planDownload({ range: 'bytes=2-' }, 10, etag)).toEqual({ status: 206, start: 2, end: 9, length: 8 });
    expect(planDownload({ range: 'bytes=2-', ifRange: '"old"' }, 10, etag)).toEqual({
      status: 200,
      start: 0,
      end: 9,
      length: 10,
    });
    expect(planDownload({ range: 'bytes=2-', ifRange: etag }, 10, etag).status).toBe(206);
    expect(planDownload({ range: 'bytes=10-' }, 10, etag)).toEqual({ status: 416 });
    expect(planDownload({ range: 'bytes=10-', ifRange: '"old"' }, 10, etag).status).toBe(200);
    expect(planDownload({ ifNoneMatch: etag, range: 'bytes=0-1' }, 10, etag)).toEqual({ status: 304 });
    expect(planDownload({}, 0, etag)).toEqual({ status: 200, start: 0, end: -1, length: 0 });
  });
});
