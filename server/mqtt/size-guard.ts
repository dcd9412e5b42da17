// aedes buffers a whole PUBLISH before anyone can look at it. This guard reads
// each MQTT fixed header as bytes arrive and cuts the connection as soon as a
// packet announces a Remaining Length above the cap, so an oversized packet
// never occupies more than one socket read of memory (MQTT-2.2.3).
import { Transform, type TransformCallback } from 'node:stream';

export class PacketSizeGuard extends Transform {
  #skip = 0; // bytes of the current packet body still to pass through
  #header: number[] = []; // fixed-header bytes seen so far of the next packet

  constructor(private readonly maxBytes: number, private readonly onOversize: (announced: number) => void) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
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
      if (length === 'malformed') return done(new Error('malformed MQTT remaining length'));
      if (length === null) continue;
      this.#header = [];
      if (length > this.maxBytes) {
        this.onOversize(length);
        return done(new Error(`MQTT packet of ${length} bytes exceeds the ${this.maxBytes} byte limit`));
      }
      this.#skip = length;
    }
    done(null, chunk);
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
