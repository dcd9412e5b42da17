// Where artifact payloads live. The service only sees this small interface, so
// an object store (S3 and the like) can replace the local disk later.
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, open } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';

/** A payload written to a temporary place: invisible under its key until commit(). */
export interface PendingPut {
  size: number;
  commit(): Promise<void>;
  /** Removes the temporary file; safe to call more than once, and after a failed commit. */
  discard(): Promise<void>;
}

export interface ByteSpan {
  start: number;
  /** Inclusive, as in HTTP ranges. */
  end: number;
}

export interface ArtifactStore {
  /**
   * Lets `write` fill a temporary sink, then hands back a PendingPut. When
   * `write` fails the temporary file is removed and the error rethrown, so a
   * failed upload leaves nothing behind.
   */
  put(key: string, write: (sink: Writable) => Promise<void>): Promise<PendingPut>;
  /** Opens the payload (or a span of it); rejects with code `ENOENT` when it is missing. */
  open(key: string, span?: ByteSpan): Promise<Readable>;
  stat(key: string): Promise<{ size: number } | null>;
  delete(key: string): Promise<void>;
  /** Path of the payload file when the store is this machine's disk: downloads then use a faster copy loop. */
  localPath?(key: string): string;
}

const KEY = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;
/** Bigger reads than Node's 64 KiB default: fewer syscalls and event-loop turns per download. */
const READ_CHUNK = 1024 * 1024;
const openFd = promisify(open);

/** Payloads as plain files under `root` (DATA_DIR/artifacts); temporary files in `root/.tmp`. */
export function createLocalStore(root: string): ArtifactStore {
  const tmpDir = join(root, '.tmp');
  mkdirSync(tmpDir, { recursive: true });

  function pathOf(key: string): string {
    if (!KEY.test(key)) throw new Error(`invalid storage key ${JSON.stringify(key)}`);
    return join(root, key);
  }

  async function put(key: string, write: (sink: Writable) => Promise<void>): Promise<PendingPut> {
    const final = pathOf(key);
    const tmp = join(tmpDir, `${key}.${randomBytes(6).toString('hex')}`);
    const discard = () => rm(tmp, { force: true });
    let size: number;
    try {
      const sink = createWriteStream(tmp, { flags: 'wx' });
      await write(sink);
      size = sink.bytesWritten;
    } catch (err) {
      await discard();
      throw err;
    }
    return { size, commit: () => rename(tmp, final), discard };
  }

  async function openPayload(key: string, span?: ByteSpan): Promise<Readable> {
    // Opening first turns a missing file into a rejected promise, not a stream error mid-response.
    const fd = await openFd(pathOf(key), 'r');
    return createReadStream('', {
      fd,
      autoClose: true,
      highWaterMark: READ_CHUNK,
      ...(span && { start: span.start, end: span.end }),
    });
  }

  async function statPayload(key: string) {
    try {
      const s = await stat(pathOf(key));
      return { size: s.size };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  return {
    put,
    open: openPayload,
    stat: statPayload,
    delete: (key) => rm(pathOf(key), { force: true }),
    localPath: pathOf,
  };
}
