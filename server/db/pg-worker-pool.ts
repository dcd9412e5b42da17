// A node-postgres pool whose connections live in a worker thread.
//
// The server's event loop is its limit under heartbeat load (bench/ingest):
// encoding every statement's parameters, writing them to PostgreSQL's socket,
// reading and parsing the answers cost about an eighth of it. In a worker
// thread that work runs beside the loop, on another core; the loop only copies
// the SQL text, the parameters and the rows across (structured clone).
// Measured with bench/ingest (same command, runs vary by ±8 %): at twice the
// saturating load 13,800 → 14,400 heartbeats/s persisted, and 0.060–0.070 →
// 0.055–0.063 ms of the server's CPU per heartbeat.
//
// It offers what Kysely's PostgresDialect asks of a pool: connect() giving a
// client with query() and release(), and end(). A transaction keeps its one
// connection in the worker, as with a plain pool. PGlite is not run this way
// (it is one in-process connection already).
//
// Each hop costs the loop a postMessage and a wake-up, and Kysely asks for a
// connection, runs one statement and releases it: so connect() only opens a
// handle, the first statement takes a worker connection on its way (and keeps
// it for the statements that follow, a transaction or a session lock), and the
// release goes one way with no answer, riding on the next statement when one
// follows in the same turn. Two hops a statement instead of six.
import { Worker } from 'node:worker_threads';

interface QueryResult {
  command: string;
  rowCount: number | null;
  rows: Record<string, unknown>[];
}

interface Answer {
  id: number;
  ok: boolean;
  value?: unknown;
  client?: number;
  error?: { message: string } & Record<string, unknown>;
}

/** Rows come back from the thread with Uint8Array where the driver gave Buffer (bytea). */
function asBuffers(row: Record<string, unknown>): Record<string, unknown> {
  for (const k in row) {
    const v = row[k];
    if (v instanceof Uint8Array && !Buffer.isBuffer(v)) row[k] = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  }
  return row;
}

const failure = (a: Answer) => Object.assign(new Error(a.error!.message), a.error);

export function createWorkerPool(opts: { connectionString: string; max: number }) {
  const worker = new Worker(new URL('./pg-worker.mjs', import.meta.url), {
    workerData: { url: opts.connectionString, max: opts.max },
  });
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let seq = 0;
  let stopped: Error | null = null;

  function failAll(err: Error): void {
    stopped ??= err;
    for (const w of waiting.values()) w.reject(stopped);
    waiting.clear();
  }
  worker.on('message', (m: Answer) => {
    const w = waiting.get(m.id);
    if (!w) return;
    waiting.delete(m.id);
    if (waiting.size === 0) worker.unref();
    w.resolve(m);
  });
  worker.on('error', (err) => failAll(new Error(`database worker failed: ${err.message}`)));
  worker.on('exit', (code) => failAll(new Error(`database worker stopped (exit ${code})`)));

  // The thread keeps the process alive only while a statement is on its way,
  // like the sockets of a plain pool: an idle server may still exit.
  worker.unref();
  // Releases wait for the next message to the thread (usually the next statement, issued in
  // the same turn as the release) or the next turn, whichever comes first: one wake-up of the
  // thread fewer per statement.
  let releases: { client: number; broken: boolean }[] = [];
  let releasing: NodeJS.Immediate | undefined;
  function takeReleases(): { client: number; broken: boolean }[] | undefined {
    if (releases.length === 0) return undefined;
    const out = releases;
    releases = [];
    if (releasing) clearImmediate(releasing);
    releasing = undefined;
    return out;
  }
  function release(client: number, broken: boolean): void {
    releases.push({ client, broken });
    releasing ??= setImmediate(() => {
      releasing = undefined;
      const r = takeReleases();
      if (r && !stopped) worker.postMessage({ op: 'release', releases: r });
    });
  }

  function call(msg: Record<string, unknown>): Promise<Answer> {
    if (stopped) return Promise.reject(stopped);
    return new Promise<Answer>((resolve, reject) => {
      const id = ++seq;
      if (waiting.size === 0) worker.ref();
      waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      worker.postMessage({ ...msg, id, releases: takeReleases() });
    });
  }

  return {
    async connect() {
      if (stopped) throw stopped;
      // The worker connection this handle holds, once its first statement took one.
      let client: number | undefined;
      return {
        async query(sql: string, params: readonly unknown[] = []): Promise<QueryResult> {
          const answer = await call({ op: 'query', client, sql, params });
          client = answer.client;
          if (!answer.ok) throw failure(answer);
          const r = answer.value as QueryResult;
          r.rows.forEach(asBuffers);
          return r;
        },
        release(err?: unknown): void {
          if (client === undefined || stopped) return;
          release(client, Boolean(err));
          client = undefined;
        },
      };
    },
    async end(): Promise<void> {
      if (!stopped) {
        const answer = await call({ op: 'end' });
        if (!answer.ok) throw failure(answer);
      }
      await worker.terminate();
    },
  };
}
