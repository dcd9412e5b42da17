// The PostgreSQL connections, in a worker thread (see pg-worker-pool.ts for
// why). Plain JavaScript: a worker thread loads its file without the
// TypeScript loader the server itself may run under.
//
// Messages in: {id, op: 'query', client?, sql, params} → {command, rowCount,
// rows}, on the connection `client` or, without one, on a connection taken
// from the pool for the caller (its id comes back as the answer's `client`);
// COPY … FROM STDIN with its data as the one parameter (see COPY_IN);
// {op: 'release', releases: [{client, broken}]}, not answered (any message may
// carry `releases`, handled before it); {id, op: 'end'}. Every answer
// is {id, ok, value, client} or {id, ok: false, error, client} with the driver
// error's fields (code, constraint, detail…).
import { parentPort, workerData } from 'node:worker_threads';
import pg from 'pg';
import { copyIn } from './copy-in.mjs';

// The same type parsing as server/db/index.ts.
pg.types.setTypeParser(20, (v) => Number(v));
pg.types.setTypeParser(1082, (v) => v);

const pool = new pg.Pool({ connectionString: workerData.url, max: workerData.max });
// An idle connection that breaks is dropped by the pool; the next query opens another.
pool.on('error', () => undefined);

// A statement whose text starts with "-- prepare: NAME" is parsed and planned
// once per connection and from then on only bound and executed: for the big
// statements run again and again with new parameters (the heartbeat batch),
// where planning costs as much as writing a hundred rows. Its text must never
// change under the same name.
const PREPARE = /^-- prepare: ([a-z0-9_-]+)\n/;

// "COPY table (columns) FROM STDIN" takes its rows, in COPY's text format, as
// its one parameter (server/db/copy.ts), fed through copy-in.mjs.
const COPY_IN = /^COPY [^;]+ FROM STDIN$/;

const clients = new Map();
let nextClient = 1;

/** Buffers arrive as plain Uint8Arrays after the thread hop; the driver sends only Buffers as bytea. */
const asBuffers = (v) =>
  v instanceof Uint8Array && !Buffer.isBuffer(v)
    ? Buffer.from(v.buffer, v.byteOffset, v.byteLength)
    : Array.isArray(v)
      ? v.map(asBuffers)
      : v;

const ERROR_FIELDS = [
  'code',
  'detail',
  'hint',
  'constraint',
  'table',
  'column',
  'schema',
  'dataType',
  'severity',
  'routine',
  'where',
  'position',
];

/** Runs one message; returns [value, the connection now held for the caller]. */
async function handle(m) {
  switch (m.op) {
    case 'query': {
      let id = m.client;
      if (id === undefined) {
        const c = await pool.connect();
        id = nextClient++;
        clients.set(id, c);
      }
      const client = clients.get(id);
      if (!client) throw new Error('database connection already released');
      try {
        if (COPY_IN.test(m.sql) && m.params.length === 1) return [await copyIn(client, m.sql, m.params[0]), id];
        const values = m.params.map(asBuffers);
        const prepared = PREPARE.exec(m.sql);
        const r = await client.query(prepared ? { name: prepared[1], text: m.sql, values } : m.sql, values);
        return [{ command: r.command, rowCount: r.rowCount, rows: r.rows }, id];
      } catch (err) {
        throw Object.assign(err, { heldClient: id });
      }
    }
    case 'end':
      await pool.end();
      return [undefined, undefined];
    default:
      throw new Error(`unknown operation ${m.op}`);
  }
}

function release({ client: id, broken }) {
  const client = clients.get(id);
  clients.delete(id);
  client?.release(broken ? new Error('connection released after an error') : undefined);
}

parentPort.on('message', (m) => {
  // Releases ride on the next message, or come alone.
  if (m.releases) for (const r of m.releases) release(r);
  if (m.op === 'release') return;
  handle(m).then(
    ([value, client]) => parentPort.postMessage({ id: m.id, ok: true, value, client }),
    (err) => {
      const error = { message: err?.message ?? String(err), name: err?.name };
      for (const f of ERROR_FIELDS) if (err?.[f] !== undefined) error[f] = err[f];
      parentPort.postMessage({ id: m.id, ok: false, error, client: err?.heldClient });
    },
  );
});
