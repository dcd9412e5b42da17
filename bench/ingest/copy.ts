// COPY FROM STDIN through node-postgres without an extra package: a minimal
// "submittable" query (the protocol pg-copy-streams speaks).
import type pg from 'pg';

interface Connection { query(text: string): void; sendCopyFromChunk(b: Buffer): void; endCopyFrom(): void }

class CopyFrom {
  #err: Error | undefined;
  constructor(private readonly text: string, private readonly data: Buffer, private readonly done: (err?: Error) => void) {}
  submit(connection: Connection): void { connection.query(this.text); }
  handleCopyInResponse(connection: Connection): void {
    connection.sendCopyFromChunk(this.data);
    connection.endCopyFrom();
  }
  handleCommandComplete(): void {}
  handleError(err: Error): void { this.#err = err; }
  handleReadyForQuery(): void { this.done(this.#err); }
}

/** Copies tab-separated text rows into `table (columns)`. */
export function copyRows(client: pg.PoolClient | pg.Client, table: string, columns: string[], rows: string[]): Promise<void> {
  const text = `COPY ${table} (${columns.join(', ')}) FROM STDIN`;
  return new Promise((resolve, reject) => {
    client.query(new CopyFrom(text, Buffer.from(rows.join('\n') + '\n'), (err) => (err ? reject(err) : resolve())) as never);
  });
}
