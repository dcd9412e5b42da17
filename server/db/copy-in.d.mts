import type pg from 'pg';

export function copyIn(
  client: pg.PoolClient | pg.Client,
  text: string,
  data: string | Buffer,
): Promise<{ command: 'COPY'; rowCount: number; rows: never[] }>;
