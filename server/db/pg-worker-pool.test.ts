// The worker-thread pool's failure paths, with no database needed: a refused
// connection keeps the driver's error code (at the first statement, which takes the connection); a stopped pool refuses at once
// instead of leaving callers waiting.
import { describe, expect, it } from 'vitest';
import { createWorkerPool } from './pg-worker-pool.ts';

describe('PostgreSQL pool in a worker thread', () => {
  it('passes the driver error through with its code when the server cannot be reached', async () => {
    const pool = createWorkerPool({ connectionString: 'postgres://nobody@127.0.0.1:1/none', max: 2 });
    const conn = await pool.connect(); // a handle: the first statement takes the connection
    const err = await conn.query('select 1').catch((e: unknown) => e as Error & { code?: string });
    expect(err).toBeInstanceOf(Error);
    expect((err as { code?: string }).code).toBe('ECONNREFUSED');
    await pool.end();
  });

  it('refuses every call once stopped', async () => {
    const pool = createWorkerPool({ connectionString: 'postgres://nobody@127.0.0.1:1/none', max: 1 });
    await pool.end();
    await expect(pool.connect()).rejects.toThrow(/database worker stopped/);
  });
});
