// The PostgreSQL connections, in a worker thread (see pg-worker-pool.ts for
// why). Plain JavaScript: a worker thread loads its file without the
// TypeScript loader the server itself may run under.
//
// Messages in: {id, op: 'connect'} → a client id; {id, op: 'query', client,
// sql, params} → {command, rowCount, rows}; {id, op: 'release', client,
// broken}; {id, op: 'end'}. Every answer is {id, ok, value} or {id, ok: false,
// error} with the driver error's fields (code, constraint, detail…).
import { parentPort, workerData } from 'node:worker_threads';
import pg from 'pg';

// The same type parsing as server/db/index.ts.
pg.types.setTypeParser(20, (v) => Number(v));
pg.types.setTypeParser(1082, (v) => v);

const pool = new pg.Pool({ connectionString: workerData.url, max: workerData.max });
// An idle connection that breaks is dropped by the pool; the next query opens another.
pool.on('error', () => undefined);

const clients = new Map();
let nextClient = 1;

/** Buffers arrive as plain Uint8Arrays after the thread hop; the driver sends only Buffers as bytea. */
const asBuffers = (v) => (v instanceof Uint8Array && !Buffer.isBuffer(v) ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : Array.isArray(v) ? v.map(asBuffers) : v);

const ERROR_FIELDS = ['code', 'detail', 'hint', 'constraint', 'table', 'column', 'schema', 'dataType', 'severity', 'routine', 'where', 'position'];

async function handle(m) {
  switch (m.op) {
    case 'connect': {
      const client = await pool.connect();
      const id = nextClient++;
      clients.set(id, client);
      return id;
    }
    case 'query': {
      const client = clients.get(m.client);
      if (!client) throw new Error('database connection already released');
      const r = await client.query(m.sql, m.params.map(asBuffers));
      return { command: r.command, rowCount: r.rowCount, rows: r.rows };
    }
    case 'release': {
      const client = clients.get(m.client);
      clients.delete(m.client);
      client?.release(m.broken ? new Error('connection released after an error') : undefined);
      return undefined;
    }
    case 'end':
      await pool.end();
      return undefined;
    default:
      throw new Error(`unknown operation ${m.op}`);
  }
}

parentPort.on('message', (m) => {
  handle(m).then(
    (value) => parentPort.postMessage({ id: m.id, ok: true, value }),
    (err) => {
      const error = { message: err?.message ?? String(err), name: err?.name };
      for (const f of ERROR_FIELDS) if (err?.[f] !== undefined) error[f] = err[f];
      parentPort.postMessage({ id: m.id, ok: false, error });
    },
  );
});
