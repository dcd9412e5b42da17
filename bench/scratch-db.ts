// A bench's own PostgreSQL database on the server DATABASE_URL points at:
// made fresh before a run and dropped after, so runs never share rows.
import pg from 'pg';

export interface ScratchDb {
  /** The scratch database's connection string. */
  url: string;
  /** Drops the database if it is there and creates it empty. */
  fresh(): Promise<void>;
  drop(): Promise<void>;
}

export function scratchDb(serverUrl: string, name: string): ScratchDb {
  const url = Object.assign(new URL(serverUrl), { pathname: `/${name}` }).toString();
  async function admin(statement: string): Promise<void> {
    const c = new pg.Client({ connectionString: serverUrl });
    await c.connect();
    try {
      await c.query(statement);
    } finally {
      await c.end().catch(() => undefined);
    }
  }
  const drop = () => admin(`drop database if exists ${name} with (force)`);
  return {
    url,
    drop,
    fresh: async () => {
      await drop();
      await admin(`create database ${name}`);
    },
  };
}
