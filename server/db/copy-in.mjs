// COPY … FROM STDIN through node-postgres without an extra package: a minimal
// "submittable" query (the copy-in sub-protocol pg-copy-streams speaks). Plain
// JavaScript: the database worker thread (pg-worker.mjs) loads it without the
// TypeScript loader; the ingest bench's baseline subscriber uses it too.

class CopyIn {
  constructor(text, data, done) {
    this.text = text;
    this.data = data;
    this.done = done;
  }
  submit(connection) {
    connection.query(this.text);
  }
  handleCopyInResponse(connection) {
    connection.sendCopyFromChunk(this.data);
    connection.endCopyFrom();
  }
  handleCommandComplete(msg) {
    this.command = msg.text;
  }
  // The driver drops the query on an error: no ReadyForQuery reaches it after one.
  handleError(err) {
    this.done(err);
  }
  handleReadyForQuery() {
    this.done(undefined, this.command);
  }
}

/**
 * Runs `text` ("COPY table (columns) FROM STDIN") on a node-postgres client with
 * `data` (COPY text format) as its rows; resolves like a query ({command, rowCount, rows}).
 */
export function copyIn(client, text, data) {
  return new Promise((resolve, reject) => {
    client.query(
      new CopyIn(text, Buffer.isBuffer(data) ? data : Buffer.from(data), (err, command) => {
        if (err) return reject(err);
        // "COPY 123"
        resolve({ command: 'COPY', rowCount: Number(String(command).split(' ')[1] ?? 0), rows: [] });
      }),
    );
  });
}
