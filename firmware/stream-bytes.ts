// Reading an exact number of bytes from a Node stream without consuming more:
// whatever arrives beyond `n` is unshifted back, so the caller can hand the
// same stream on (to a hashing pipeline) positioned right after the header.
import type { Readable } from 'node:stream';

/** Resolves with `n` bytes, or fewer if the stream ends first. */
export function readUpTo(stream: Readable, n: number): Promise<Buffer> {
  if (n === 0) return Promise.resolve(Buffer.alloc(0));
  if (stream.readableEnded) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let have = 0;
    const cleanup = () => {
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('error', onError);
    };
    const finish = () => {
      cleanup();
      const all = Buffer.concat(parts);
      if (all.length > n) stream.unshift(all.subarray(n));
      resolve(all.subarray(0, n));
    };
    function onReadable() {
      let chunk: Buffer | string | null;
      while (have < n && (chunk = stream.read()) !== null) {
        const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        parts.push(buf);
        have += buf.length;
      }
      if (have >= n) finish();
    }
    const onEnd = () => finish();
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    stream.on('readable', onReadable);
    stream.on('end', onEnd);
    stream.on('error', onError);
  });
}
