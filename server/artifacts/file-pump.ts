// Copies a span of a local file to an HTTP response with two reusable buffers:
// one is read while the other is being written. fs.createReadStream allocates
// a fresh buffer per chunk, and at hundreds of MB/s the garbage collector
// spends as much time as the copy itself (bench/download, --cpu-prof).
import type { ServerResponse } from 'node:http';
import type { FileHandle } from 'node:fs/promises';

const MAX_CHUNK = 1024 * 1024;
const MIN_CHUNK = 64 * 1024;
/**
 * Bytes all downloads together may hold in buffers. A rollout starts thousands
 * of downloads at once: at 1 MiB each the server held gigabytes and spent its
 * time collecting garbage (bench/rollout); with many at once each gets a
 * smaller chunk, with few (bench/download) each gets the full megabyte.
 */
const BUDGET = 256 * 1024 * 1024;
let active = 0;

/** The chunk for a new download: its share of the budget, a power of two from 64 KiB to 1 MiB. */
function chunkSize(): number {
  let size = MAX_CHUNK;
  while (size > MIN_CHUNK && size * 2 * (active + 1) > BUDGET) size /= 2;
  return size;
}

// Buffers of finished downloads, kept by size for the next ones (at most POOL_BYTES in all).
const POOL_BYTES = 64 * 1024 * 1024;
const pools = new Map<number, Buffer[]>();
let pooled = 0;
function take(size: number): Buffer {
  const buf = pools.get(size)?.pop();
  if (!buf) return Buffer.allocUnsafeSlow(size);
  pooled -= size;
  return buf;
}
function giveBack(bufs: Buffer[]): void {
  for (const b of bufs) {
    const chunkSized = b.length >= MIN_CHUNK && (b.length & (b.length - 1)) === 0;
    if (!chunkSized || pooled + b.length > POOL_BYTES) continue;
    const list = pools.get(b.length) ?? pools.set(b.length, []).get(b.length)!;
    list.push(b);
    pooled += b.length;
  }
}

/**
 * Downloads sending bytes at once; the others wait their turn (headers sent),
 * first come first served. A rollout's thousands of simultaneous downloads
 * then finish a few hundred at a time — those terminals install and reboot
 * while the rest download — instead of all finishing together at the end.
 * No one waits longer than MAX_WAIT_MS, so a client's idle timeout never fires.
 */
const SLOTS = 256;
const MAX_WAIT_MS = 10_000;
let sending = 0;
const queue = new Set<() => void>();

function turn(): Promise<void> {
  if (sending < SLOTS) {
    sending++;
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const go = () => {
      queue.delete(go);
      clearTimeout(timer);
      sending++;
      resolve();
    };
    const timer = setTimeout(go, MAX_WAIT_MS);
    queue.add(go);
  });
}

function done(): void {
  sending--;
  const next = queue.values().next();
  if (!next.done && sending < SLOTS) next.value();
}

/**
 * Bytes all downloads together hand to sockets between two looks at the other
 * sockets. A write to a loopback or LAN socket copies its bytes in the kernel
 * there and then; when a rollout starts hundreds of downloads together, writing
 * each whole payload at once held the event loop for seconds (bench/rollout:
 * 2.7 s in one turn), and every MQTT session waited: heartbeats that confirm
 * updates, CONNACKs of rebooted terminals. Past the budget the next write
 * waits for the next turn of the event loop.
 */
export const TURN_BYTES = 32 * 1024 * 1024;
const WRITE_CHUNK = 1024 * 1024;
let turnLeft = TURN_BYTES;
const waitingRoom: Array<() => void> = [];
let _refill: NodeJS.Immediate | undefined;

function room(): Promise<void> | undefined {
  if (turnLeft > 0 && waitingRoom.length === 0) {
    turnLeft -= WRITE_CHUNK;
    return undefined;
  }
  return new Promise((resolve) => {
    waitingRoom.push(resolve);
    _refill ??= setImmediate(nextTurn);
  });
}

function nextTurn(): void {
  _refill = undefined;
  turnLeft = TURN_BYTES;
  while (turnLeft > 0 && waitingRoom.length > 0) {
    turnLeft -= WRITE_CHUNK;
    waitingRoom.shift()!();
  }
  if (waitingRoom.length > 0) _refill = setImmediate(nextTurn);
}

/**
 * Writes bytes [start, end] of a payload held in memory to `out`, in its turn
 * like a file, WRITE_CHUNK at a time within the per-turn budget; resolves with
 * the bytes handed to the socket. The socket keeps references to slices of the
 * shared buffer until it has sent them: nothing is copied.
 */
export async function sendBuffer(payload: Buffer, start: number, end: number, out: ServerResponse): Promise<number> {
  await turn();
  try {
    const closed = new Promise<false>((resolve) => out.once('close', () => resolve(false)));
    let failure: Error | null = null;
    let last: Promise<boolean> = Promise.resolve(true);
    for (let pos = start; pos <= end && !failure; pos += WRITE_CHUNK) {
      const wait = room();
      if (wait) await wait;
      if (out.destroyed) throw new Error('client went away');
      const slice = payload.subarray(pos, Math.min(end + 1, pos + WRITE_CHUNK));
      last = new Promise<boolean>((resolve) =>
        out.write(slice, (err) => {
          if (err) failure ??= err;
          resolve(!err);
        }),
      );
      // Backpressure: a socket that does not take this slice now holds up only its own download.
      if (
        out.writableNeedDrain &&
        !(await Promise.race([new Promise<true>((r) => out.once('drain', () => r(true))), closed]))
      ) {
        throw new Error('client went away');
      }
    }
    const finished = await Promise.race([last, closed]);
    if (!finished || failure) throw failure ?? new Error('client went away');
    return end - start + 1;
  } finally {
    done();
  }
}

/** Writes bytes [start, end] of the open file to `out`; resolves with the bytes handed to the socket. */
export async function pumpFile(file: FileHandle, start: number, end: number, out: ServerResponse): Promise<number> {
  await turn();
  active++;
  try {
    return await pump(file, start, end, out, chunkSize());
  } finally {
    active--;
    done();
  }
}

async function pump(file: FileHandle, start: number, end: number, out: ServerResponse, chunk: number): Promise<number> {
  // A span shorter than the chunk is read into buffers of its own size (not pooled); otherwise two chunks, taken as needed.
  const size = Math.min(chunk, end - start + 1);
  const buffers: Buffer[] = [];
  const inFlight: Array<Promise<void> | null> = [null, null];
  let failure: Error | null = null;
  let sent = 0;
  const closed = new Promise<void>((resolve) => out.once('close', resolve));
  const written = (buf: Buffer) =>
    new Promise<void>((resolve) => {
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
