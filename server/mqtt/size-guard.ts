// The socket as aedes sees it.
//
// Reads: aedes buffers a whole PUBLISH before anyone can look at it, so each
// MQTT fixed header is read here as bytes arrive and the connection is cut as
// soon as a packet announces a Remaining Length above the cap: an oversized
// packet never occupies more than one socket read of memory (MQTT-2.2.3).
//
// Writes: mqtt-packet writes one packet as several small buffers inside
// cork()/uncork(). They leave here in one writev, so a 4-byte PUBACK is one
// syscall and one TCP segment (a stream.Duplex.from() wrapper wrote each piece
// on its own: three syscalls and three segments per PUBACK).
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';

export type ScanVerdict =
  | { ok: true }
  | { ok: false; reason: 'oversize'; announced: number }
  | { ok: false; reason: 'malformed' };

/** Follows MQTT packet boundaries across chunks and judges each fixed header. */
export class PacketSizeScanner {
  #skip = 0; // bytes of the current packet body still to pass
  #header: number[] = []; // fixed-header bytes seen so far of the next packet

  constructor(private readonly maxBytes: number) {}

  scan(chunk: Buffer): ScanVerdict {
    let i = 0;
    while (i < chunk.length) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.length - i);
        this.#skip -= n;
        i += n;
        continue;
      }
      this.#header.push(chunk[i++]);
      const length = this.#remainingLength();
      if (length === 'malformed') return { ok: false, reason: 'malformed' };
      if (length === null) continue;
      this.#header = [];
      if (length > this.maxBytes) return { ok: false, reason: 'oversize', announced: length };
      this.#skip = length;
    }
    return { ok: true };
  }

  /** Decodes the variable-length Remaining Length; null while incomplete. */
  #remainingLength(): number | null | 'malformed' {
    const h = this.#header;
    if (h.length < 2) return null;
    let value = 0;
    let multiplier = 1;
    for (let k = 1; k < h.length; k++) {
      value += (h[k] & 0x7f) * multiplier;
      if ((h[k] & 0x80) === 0) return value;
      multiplier *= 128;
      if (k === 4) return 'malformed';
    }
    return null;
  }
}

type WriteTarget = Pick<Socket, 'write' | 'cork' | 'uncork' | 'end' | 'destroy' | 'pause' | 'resume' | 'on'>;

export class GuardedConnection extends Duplex {
  readonly #socket: WriteTarget;

  constructor(socket: WriteTarget, maxBytes: number, onRefused: (verdict: Exclude<ScanVerdict, { ok: true }>) => void) {
    super();
    this.#socket = socket;
    const scanner = new PacketSizeScanner(maxBytes);
    socket.on('data', (chunk: Buffer) => {
      const verdict = scanner.scan(chunk);
      if (!verdict.ok) {
        onRefused(verdict);
        this.destroy(
          new Error(
            verdict.reason === 'oversize'
              ? `MQTT packet of ${verdict.announced} bytes exceeds the ${maxBytes} byte limit`
              : 'malformed MQTT remaining length',
          ),
        );
        return;
      }
      if (!this.push(chunk)) socket.pause();
    });
    socket.on('end', () => this.push(null));
    socket.on('error', (err: Error) => this.destroy(err));
    socket.on('close', () => this.destroy());
  }

  override _read(): void {
    this.#socket.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.#socket.write(chunk, done);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, done: (err?: Error | null) => void): void {
    const s = this.#socket;
    s.cork();
    for (let i = 0; i < chunks.length - 1; i++) s.write(chunks[i].chunk);
    s.write(chunks[chunks.length - 1].chunk, done);
    s.uncork();
  }

  override _final(done: (err?: Error | null) => void): void {
    this.#socket.end(() => done());
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.#socket.destroy();
    done(err);
  }
}
