// Copies a span of a local file to an HTTP response with two reusable buffers:
// one is read while the other is being written. fs.createReadStream allocates
// a fresh buffer per chunk, and at hundreds of MB/s the garbage collector
// spends as much time as the copy itself (bench/download, --cpu-prof).
import type { ServerResponse } from 'node:http';
import type { FileHandle } from 'node:fs/promises';

const CHUNK = 1024 * 1024;

// Buffers of finished downloads, kept for the next ones: a rollout starts
// thousands of downloads within seconds, and fresh 1 MiB buffers for each were
// a good share of the server's garbage collection (bench/rollout, --server-prof).
const POOL_MAX = 64;
const pool: Buffer[] = [];
const take = (size: number) => (size === CHUNK && pool.pop()) || Buffer.allocUnsafeSlow(size);
const giveBack = (bufs: Buffer[]) => { for (const b of bufs) if (b.length === CHUNK && pool.length < POOL_MAX) pool.push(b); };

/** Writes bytes [start, end] of the open file to `out`; resolves with the bytes handed to the socket. */
export async function pumpFile(file: FileHandle, start: number, end: number, out: ServerResponse): Promise<number> {
  // A span that fits one chunk needs one buffer of its size; a longer one two of CHUNK, taken as needed.
  const size = Math.min(CHUNK, end - start + 1);
  const buffers: Buffer[] = [];
  const inFlight: Array<Promise<void> | null> = [null, null];
  let failure: Error | null = null;
  let sent = 0;
  const closed = new Promise<void>((resolve) => out.once('close', resolve));
  const written = (buf: Buffer) => new Promise<void>((resolve) => {
    out.write(buf, (err) => {
      if (err) failure ??= err;
      else sent += buf.length;
      resolve();
    });
  });
  let pos = start;
  let i = 0;
  while (pos <= end && !failure && !out.destroyed) {
    // A buffer is reused only once the socket took its previous contents; that is also the backpressure.
    if (inFlight[i]) await Promise.race([inFlight[i], closed]);
    if (out.destroyed) break;
    buffers[i] ??= take(size);
    const { bytesRead } = await file.read(buffers[i], 0, Math.min(size, end - pos + 1), pos);
    if (bytesRead === 0) throw new Error(`file ends at ${pos}, before byte ${end}`);
    pos += bytesRead;
    inFlight[i] = written(buffers[i].subarray(0, bytesRead));
    i ^= 1;
  }
  // Back to the pool only once every write finished with them (not when the client left mid-write).
  const done = await Promise.race([Promise.all(inFlight).then(() => true), closed.then(() => false)]);
  if (done) giveBack(buffers);
  if (failure) throw failure;
  if (pos <= end) throw new Error('client went away');
  return sent;
}
