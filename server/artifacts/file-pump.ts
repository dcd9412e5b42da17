// Copies a span of a local file to an HTTP response with two reusable buffers:
// one is read while the other is being written. fs.createReadStream allocates
// a fresh buffer per chunk, and at hundreds of MB/s the garbage collector
// spends as much time as the copy itself (bench/download, --cpu-prof).
import type { ServerResponse } from 'node:http';
import type { FileHandle } from 'node:fs/promises';

const CHUNK = 1024 * 1024;

/** Writes bytes [start, end] of the open file to `out`; resolves with the bytes handed to the socket. */
export async function pumpFile(file: FileHandle, start: number, end: number, out: ServerResponse): Promise<number> {
  const buffers = [Buffer.allocUnsafeSlow(CHUNK), Buffer.allocUnsafeSlow(CHUNK)];
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
    const { bytesRead } = await file.read(buffers[i], 0, Math.min(CHUNK, end - pos + 1), pos);
    if (bytesRead === 0) throw new Error(`file ends at ${pos}, before byte ${end}`);
    pos += bytesRead;
    inFlight[i] = written(buffers[i].subarray(0, bytesRead));
    i ^= 1;
  }
  await Promise.race([Promise.all(inFlight), closed]);
  if (failure) throw failure;
  if (pos <= end) throw new Error('client went away');
  return sent;
}
