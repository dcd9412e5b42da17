// Small payloads held in memory while they are wanted. A rollout sends one
// artifact to thousands of terminals within seconds: read once, every download
// writes a slice of the same Buffer (the sockets share it; nothing is copied
// or allocated per download), where reading the file per download cost a
// sixth of the server's time and a buffer each (bench/rollout, --server-prof).
// Artifacts are immutable; a deleted one is forgotten at once.
import { readFile } from 'node:fs/promises';

export interface PayloadCacheOptions {
  /** Payloads larger than this are streamed from the file, never held. */
  maxEntryBytes: number;
  /** All payloads held together, least recently used dropped first. */
  maxBytes: number;
}

export function createPayloadCache(opts: PayloadCacheOptions) {
  const entries = new Map<string, { size: number; payload: Promise<Buffer> }>();
  let held = 0;

  function drop(id: string): void {
    const e = entries.get(id);
    if (!e) return;
    entries.delete(id);
    held -= e.size;
  }

  /** The payload of artifact `id` (stored at `path`, `size` bytes), or null when it is too large to hold. */
  function get(id: string, path: string, size: number): Promise<Buffer> | null {
    if (size > opts.maxEntryBytes) return null;
    const hit = entries.get(id);
    if (hit) {
      entries.delete(id); // most recently used last
      entries.set(id, hit);
      return hit.payload;
    }
    const payload = readFile(path).then((buf) => {
      if (buf.length !== size)
        throw Object.assign(new Error(`payload of ${id} is ${buf.length} bytes, not ${size}`), { code: 'EBADSIZE' });
      return buf;
    });
    payload.catch(() => {
      if (entries.get(id)?.payload === payload) drop(id);
    });
    entries.set(id, { size, payload });
    held += size;
    for (const oldest of entries.keys()) {
      if (held <= opts.maxBytes || oldest === id) break;
      drop(oldest);
    }
    return payload;
  }

  return {
    get,
    forget: drop,
    get heldBytes() {
      return held;
    },
  };
}

export type PayloadCache = ReturnType<typeof createPayloadCache>;
